"""The interview simulator (bench/simulate.py) still runs end to end: one short spoken turn.

Real agent_worker session and interview logic, real Silero VAD and livekit plugins, espeak-ng speech,
the fakes from tests/fakes. No timing is asserted here; timings belong to bench/.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import simulate
from bench.interview_script import SHORT_INTERVIEW


def test_simulator_runs_one_short_turn_and_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "simulate.json"

    exit_code = simulate.main([
        "--script", "short", "--arms", "mockflow", "--profiles", "zero", "--quiet",
        "--tts-seconds-per-char", "0.02", "--json", str(out),
    ])

    assert exit_code == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    (interview,) = document["interviews"]["zero"]["mockflow"]
    (turn,) = interview["turns"]
    assert turn["text"] == SHORT_INTERVIEW[0].text
    assert interview["transcripts_match_script"] is True
    assert interview["greeting_ms"] is not None
    assert turn["stt_final_ms"] is not None and turn["stt_final_ms"] > 0
    assert turn["turn_committed_ms"] is not None and turn["turn_committed_ms"] > 0
    assert turn["llm_request_ms"] is not None
    assert turn["first_audio_ms"] is not None and turn["first_audio_ms"] > turn["turn_committed_ms"]
    assert turn["false_interruption"] is False
    summary = document["summary"]["zero"]["mockflow"]
    assert summary["finished_answers_first_audio_ms"]["n"] == 1
    assert summary["unanswered_turns"] == 0
    assert document["machine"]["nproc"] >= 1
    assert "mockflow" in capsys.readouterr().out
