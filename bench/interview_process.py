"""One simulated interview in its own process, speaking agent_worker's process protocol.

Started by bench/spawn.py and bench/capacity.py through worker_manager.spawn_agent, exactly like an
agent process: it imports what agent_worker imports and loads Silero, prints `{"event": "ready"}`,
then reads a job spec (JSON) from stdin. Instead of joining a LiveKit room it runs the interview
with the simulated candidate (bench/simulate.py) against fake providers that the parent runs, and
prints `{"event": "result", ...}` with its measurements before exiting.

Job spec: {"arm", "profile", "script", "openai_base_url", "deepgram_listen_url", "database_url",
"user_id", "audio_cache_dir", "frame_ms"}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
from pathlib import Path
from typing import Any

from bench.common import ensure_repo_on_path

ensure_repo_on_path()

import agent_worker  # noqa: E402
import store  # noqa: E402
from bench.interview_script import SCRIPTS  # noqa: E402
from bench.simulate import ProviderEndpoints, simulate_interview  # noqa: E402
from bench.voice_io import SpeechSynthesizer  # noqa: E402


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    app_store = store.Store(spec["database_url"])
    try:
        endpoints = ProviderEndpoints(openai_base_url=spec["openai_base_url"],
                                      deepgram_listen_url=spec["deepgram_listen_url"])
        synthesizer = SpeechSynthesizer(cache_dir=Path(spec["audio_cache_dir"]))
        result = await simulate_interview(spec["arm"], spec["profile"], SCRIPTS[spec["script"]], synthesizer,
                                          app_store, int(spec["user_id"]), endpoints, int(spec["frame_ms"]))
        return result.as_dict()
    finally:
        app_store.dispose()


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    agent_worker.load_vad()  # what an agent process loads before it reports ready
    emit("ready")
    spec = json.loads(sys.stdin.buffer.read())
    result = asyncio.run(run_job(spec))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit("result", process_cpu_s=round(usage.ru_utime + usage.ru_stime, 2), **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
