"""A simulated candidate for a whole interview, against the real interviewer logic, with no room.

It runs agent_worker's InterviewController and InterviewerAgent in this process on an AgentSession
whose audio input is a paced microphone (espeak-ng speech, 20 ms frames in real time, silence
between turns) and whose audio output is a real-time playout sink. The providers are the local
fakes from tests/fakes (Deepgram WebSocket, OpenAI chat and speech) with added latencies; the fake
STT transcribes each speech segment with the scripted text, and the fake LLM answers from the
script (bench/interview_script.py).

For every candidate turn it records: the end of speech in the audio, the final transcript, when
the agent committed the turn, the LLM request, the first agent audio frame, and whether the agent
started speaking inside the answer (a false interruption during a thinking pause). Each latency
profile runs every session variant ("arm") in the same run, on the same audio:

  mockflow   agent_worker.build_session, as shipped (turn_taking.py: transcript-aware end of turn)
  fixed-2s   agent_worker's providers with the turn handling shipped before: a fixed 2.0 s wait
  local-eot  agent_worker's providers and delays with livekit-local-inference's audio end-of-turn model
  defaults   a plain AgentSession(stt, llm, tts): livekit-agents' default VAD and turn handling

    .venv/bin/python -m bench.simulate                      # mockflow and defaults, both profiles
    .venv/bin/python -m bench.simulate --arms mockflow,fixed-2s,local-eot,defaults --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ensure_repo_on_path, format_table, machine_cpu_jiffies, machine_info, summarize, write_results

ensure_repo_on_path()

import agent_worker  # noqa: E402
import fsm  # noqa: E402
import store  # noqa: E402
import turn_taking  # noqa: E402
from bench.interview_script import GREETING, SCRIPTS, Answer, answer_for  # noqa: E402
from bench.voice_io import FRAME_MS, PacedMicrophone, PlayoutSink, SpeechSynthesizer, silence  # noqa: E402
from conversation_cache import InterviewSetup, build_context  # noqa: E402
from livekit.agents import AgentSession, inference, llm, utils  # noqa: E402
from tests.fakes import DEFAULT_DEEPGRAM_KEY, DEFAULT_OPENAI_KEY, FakeDeepgram, FakeOpenAI, tool_call_reply  # noqa: E402
from tests.fakes.fake_openai import CHAT_PATH, ScriptedReply  # noqa: E402

# The fake STT finalises a segment after this much silence. It must exceed the longest quiet
# stretch inside espeak's speech of one part (checked at start), else one part becomes two segments.
STT_ENDPOINTING_S = 0.1
STT_SEGMENT_GAP_MARGIN = 0.8
TURN_GAP_S = 0.7  # the candidate starts answering this long after the interviewer stops
REPLY_TIMEOUT_S = 10.0
LISTENING_TIMEOUT_S = 45.0
GREETING_TIMEOUT_S = 30.0
# The timing engine's verifier would speak unscripted stage bridges at the stages' hard limits;
# the simulated interview moves stages with the scripted transition_stage calls instead.
SIMULATION_TIMINGS = agent_worker.Timings(verifier_interval_s=24 * 3600.0)


@dataclass(frozen=True)
class LatencyProfile:
    """Added provider latencies: LLM first token, TTS first byte, STT final after the end of speech."""

    name: str
    llm_first_token_s: float
    tts_first_byte_s: float
    stt_final_s: float


PROFILES = {
    # Providers that answer at once; the STT still needs its endpointing silence to finalise.
    "zero": LatencyProfile("zero", 0.0, 0.0, STT_ENDPOINTING_S),
    "realistic": LatencyProfile("realistic", 0.35, 0.25, 0.15),
}


# --- Session variants ---------------------------------------------------------------------------


def _providers_session(providers: agent_worker.ProviderSettings, language: str, vad: Any,
                       turn_handling: dict[str, Any]) -> AgentSession:
    """agent_worker's providers and session options with another VAD and turn handling."""
    return AgentSession(
        stt=agent_worker.build_stt(providers, language),
        llm=agent_worker.build_llm(providers),
        tts=agent_worker.build_tts(providers),
        vad=vad,
        turn_handling=turn_handling,
        user_away_timeout=agent_worker.SILENCE_CHECK_IN_S,
        conn_options=agent_worker.CONN_OPTIONS,
    )


def mockflow_session(providers: agent_worker.ProviderSettings, language: str) -> AgentSession:
    return agent_worker.build_session(providers, language, agent_worker.load_vad())


# What agent_worker shipped before the transcript-aware end of turn: end the turn a fixed 2.0 s after
# the VAD's end of speech (Silero's default 0.55 s silence), whatever the words.
FIXED_WAIT_VAD_MIN_SILENCE_S = 0.55
FIXED_WAIT_TURN_HANDLING: dict[str, Any] = {
    **agent_worker.TURN_HANDLING_OPTIONS,
    "turn_detection": "vad",
    "endpointing": {"mode": "fixed", "min_delay": 2.0, "max_delay": 4.0},
}


def fixed_wait_session(providers: agent_worker.ProviderSettings, language: str) -> AgentSession:
    return _providers_session(providers, language, inference.VAD(min_silence_duration=FIXED_WAIT_VAD_MIN_SILENCE_S),
                              FIXED_WAIT_TURN_HANDLING)


def local_eot_session(providers: agent_worker.ProviderSettings, language: str) -> AgentSession:
    handling = {**agent_worker.turn_handling(language), "turn_detection": inference.TurnDetector()}
    return _providers_session(providers, language, agent_worker.load_vad(), handling)


def defaults_session(providers: agent_worker.ProviderSettings, language: str) -> AgentSession:
    return AgentSession(
        stt=agent_worker.build_stt(providers, language),
        llm=agent_worker.build_llm(providers),
        tts=agent_worker.build_tts(providers),
    )


ARMS: dict[str, Callable[[agent_worker.ProviderSettings, str], AgentSession]] = {
    "mockflow": mockflow_session,
    "fixed-2s": fixed_wait_session,
    "local-eot": local_eot_session,
    "defaults": defaults_session,
}
BASELINE_ARM = "defaults"


# --- Results ------------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    """One candidate turn; every `*_ms` is measured from the end of the candidate's speech."""

    index: int
    kind: str
    pauses_s: list[float]
    text: str
    speech_s: float
    speech_end_s: float  # when the candidate's speech ended, seconds since the session started
    stt_final_ms: float | None = None
    turn_committed_ms: float | None = None
    llm_request_ms: float | None = None
    first_audio_ms: float | None = None
    false_interruption: bool = False
    interrupted_pauses_s: list[float] = field(default_factory=list)
    committed_during_pause: bool = False
    llm_requests_during_answer: int | None = None


@dataclass
class InterviewResult:
    arm: str
    profile: str
    turns: list[TurnRecord] = field(default_factory=list)
    greeting_ms: float | None = None
    transcripts_match_script: bool = True
    input_late_frames: int = 0
    input_max_lag_ms: float = 0.0
    output_underruns: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy meanwhile (this process, the fakes and anything else)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round((moment - origin) * 1000.0, 1)


# --- The fakes and the store -----------------------------------------------------------------------


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def scripted_responder(script: tuple[Answer, ...]) -> Callable[[dict[str, Any]], ScriptedReply]:
    """The fake LLM: the interviewer line for the answer the last user message belongs to."""

    def respond(body: dict[str, Any]) -> ScriptedReply:
        messages = body["messages"]
        user_messages = [message for message in messages if message.get("role") == "user"]
        if not user_messages:
            return GREETING
        answer = answer_for(_message_text(user_messages[-1]), script)
        if answer is None:
            return "Could you say a little more about that?"
        if answer.tool and messages[-1].get("role") == "user":
            return tool_call_reply(answer.tool)
        return answer.reply

    return respond


def create_interview(app_store: store.Store, user_id: int) -> str:
    """A behavioral, short, English interview ready for an agent (status `starting`)."""
    setup = InterviewSetup(candidate_name="Sam", role="Backend engineer", level="mid", company="Acme",
                           track="behavioral", length="short", language="en")
    interview_id = store.new_interview_id()
    with app_store.session() as db:
        db.add(store.Interview(
            id=interview_id, user_id=user_id, room_name=f"sim-{interview_id[:12]}", track=setup.track,
            length=setup.length, role=setup.role, level=setup.level, company=setup.company,
            candidate_name=setup.candidate_name, language=setup.language, status="starting",
            plan=fsm.build_plan(setup.track, setup.length).to_dict(), context=build_context(setup),
        ))
    return interview_id


def open_store(directory: Path) -> tuple[store.Store, int]:
    """A migrated SQLite store with one user, in `directory`."""
    app_store = store.Store(f"sqlite:///{directory / 'simulate.db'}")
    app_store.upgrade()
    with app_store.session() as db:
        user = store.get_or_create_user(db, "local", "simulated-candidate", "", "Sam")
        db.flush()
        user_id = user.id
    return app_store, user_id


# --- One interview --------------------------------------------------------------------------------


class SessionWatch:
    """The session events the measurements need, with perf_counter times."""

    def __init__(self, session: AgentSession) -> None:
        self.agent_state = "initializing"
        self.listening = asyncio.Event()
        self.finals: list[tuple[float, str]] = []
        self.user_commits: list[tuple[float, str]] = []
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("conversation_item_added", self._on_item)

    def _on_agent_state(self, event: Any) -> None:
        self.agent_state = event.new_state
        if event.new_state == "listening":
            self.listening.set()
        else:
            self.listening.clear()

    def _on_transcribed(self, event: Any) -> None:
        if event.is_final and event.transcript.strip():
            self.finals.append((time.perf_counter(), event.transcript.strip()))

    def _on_item(self, event: Any) -> None:
        item = event.item
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            self.user_commits.append((time.perf_counter(), item.text_content or ""))


def _answer_audio(answer: Answer, synthesizer: SpeechSynthesizer) -> tuple[np.ndarray, dict[int, str]]:
    """The answer's samples (parts with their thinking pauses) and marks at each part's edges."""
    pieces: list[np.ndarray] = []
    marks: dict[int, str] = {}
    position = 0
    for index, part in enumerate(answer.parts):
        speech = synthesizer.speak(part)
        marks[position] = f"part{index}_start"
        marks[position + len(speech) - 1] = f"part{index}_end"
        pieces.append(speech)
        position += len(speech)
        if index < len(answer.pauses_s):
            gap = silence(answer.pauses_s[index])
            pieces.append(gap)
            position += len(gap)
    return np.concatenate(pieces), marks


async def _wait_for(predicate: Callable[[], bool], event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `predicate()` holds, re-checking whenever `event` fires; False on timeout."""
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return False
        event.clear()
        if predicate():
            return True
        try:
            await asyncio.wait_for(event.wait(), remaining)
        except asyncio.TimeoutError:
            return predicate()
    return True


async def _play_turn(index: int, answer: Answer, mic: PacedMicrophone, sink: PlayoutSink, watch: SessionWatch,
                     endpoints: ProviderEndpoints, synthesizer: SpeechSynthesizer, session_started: float) -> TurnRecord:
    samples, marks = _answer_audio(answer, synthesizer)
    utterance = mic.play(samples, marks)
    await utterance.done.wait()
    last = len(answer.parts) - 1
    started, speech_end = utterance.stamps["part0_start"], utterance.stamps[f"part{last}_end"]
    last_part_start = utterance.stamps[f"part{last}_start"]
    record = TurnRecord(index=index, kind=answer.kind, pauses_s=list(answer.pauses_s), text=answer.text,
                        speech_s=round(speech_end - started, 2),
                        speech_end_s=round(speech_end - session_started, 3))

    replied = await _wait_for(lambda: sink.first_segment_after(speech_end) is not None, sink.frame_arrived,
                              REPLY_TIMEOUT_S)
    if replied:
        record.first_audio_ms = _ms(sink.first_segment_after(speech_end).first_frame_at, speech_end)
    record.false_interruption = bool(sink.segments_between(started, speech_end))
    record.interrupted_pauses_s = [
        pause for index, pause in enumerate(answer.pauses_s)
        if sink.segments_between(utterance.stamps[f"part{index}_end"], utterance.stamps[f"part{index + 1}_start"])
    ]
    finals = [moment for moment, _text in watch.finals if moment >= speech_end]
    record.stt_final_ms = _ms(finals[0], speech_end) if finals else None
    commits = [moment for moment, _text in watch.user_commits if moment >= started]
    if commits:
        record.turn_committed_ms = _ms(commits[0], speech_end)
        record.committed_during_pause = commits[0] < speech_end
    if endpoints.chat_request_times is not None:
        requests = endpoints.chat_request_times()
        after_last_part = [moment for moment in requests if moment >= last_part_start]
        record.llm_request_ms = _ms(after_last_part[0], speech_end) if after_last_part else None
        record.llm_requests_during_answer = sum(started <= moment < speech_end for moment in requests)
    await _wait_for(lambda: watch.agent_state == "listening", watch.listening, LISTENING_TIMEOUT_S)
    return record


def _transcripts_match(watch: SessionWatch, script: tuple[Answer, ...]) -> bool:
    expected = [part for answer in script for part in answer.parts]
    return [text for _moment, text in watch.finals] == expected


@dataclass(frozen=True)
class ProviderEndpoints:
    """Where the fake providers listen; `chat_request_times` only when they run in this process."""

    openai_base_url: str
    deepgram_listen_url: str
    chat_request_times: Callable[[], list[float]] | None = None


def fake_deepgram_for(script: tuple[Answer, ...], profile: LatencyProfile) -> FakeDeepgram:
    """A fake Deepgram that transcribes each spoken part of `script`, finalising as `profile` says."""
    return FakeDeepgram(script=[part for answer in script for part in answer.parts], end_silence_s=STT_ENDPOINTING_S,
                        final_latency_s=max(0.0, profile.stt_final_s - STT_ENDPOINTING_S))


def fake_openai_for(script: tuple[Answer, ...], profile: LatencyProfile, tts_seconds_per_char: float) -> FakeOpenAI:
    """A fake OpenAI whose chat answers from `script` (stateless, so interviews may share it)."""
    return FakeOpenAI(responder=scripted_responder(script), llm_first_token_delay_s=profile.llm_first_token_s,
                      tts_first_byte_delay_s=profile.tts_first_byte_s, tts_seconds_per_char=tts_seconds_per_char)


async def simulate_interview(arm: str, profile_name: str, script: tuple[Answer, ...], synthesizer: SpeechSynthesizer,
                             app_store: store.Store, user_id: int, endpoints: ProviderEndpoints,
                             frame_ms: int = FRAME_MS) -> InterviewResult:
    """Run one whole interview of `script` against the `arm` session, the candidate's microphone
    sending `frame_ms` frames; return its measurements."""
    result = InterviewResult(arm=arm, profile=profile_name)
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    busy_before, total_before = machine_cpu_jiffies()
    began = time.perf_counter()
    async with utils.http_context.open():
        providers = agent_worker.ProviderSettings(
            openai_api_key=DEFAULT_OPENAI_KEY, deepgram_api_key=DEFAULT_DEEPGRAM_KEY,
            deepgram_base_url=endpoints.deepgram_listen_url, llm_base_url=endpoints.openai_base_url,
            tts_base_url=endpoints.openai_base_url,
        )
        interview_id = await asyncio.to_thread(create_interview, app_store, user_id)
        interview = await asyncio.to_thread(agent_worker.load_interview, app_store, interview_id)
        controller = agent_worker.InterviewController(interview, app_store, timings=SIMULATION_TIMINGS)
        session = ARMS[arm](providers, interview.language)
        mic, sink = PacedMicrophone(frame_ms), PlayoutSink()
        session.input.audio = mic
        session.output.audio = sink
        watch = SessionWatch(session)
        started = time.perf_counter()
        await controller.start(session)
        greeted = await _wait_for(lambda: bool(sink.segments), sink.frame_arrived, GREETING_TIMEOUT_S)
        if not greeted:
            raise RuntimeError(f"{arm}: the interviewer never greeted (no agent audio in {GREETING_TIMEOUT_S} s)")
        result.greeting_ms = _ms(sink.segments[0].first_frame_at, started)
        try:
            await _wait_for(lambda: watch.agent_state == "listening", watch.listening, LISTENING_TIMEOUT_S)
            for index, answer in enumerate(script):
                await asyncio.sleep(TURN_GAP_S)
                result.turns.append(
                    await _play_turn(index, answer, mic, sink, watch, endpoints, synthesizer, started))
        finally:
            await controller.end("completed")
            mic.close()
        result.transcripts_match_script = _transcripts_match(watch, script)
        result.input_late_frames = mic.late_frames
        result.input_max_lag_ms = round(mic.max_lag_s * 1000.0, 1)
        result.output_underruns = sink.underruns
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_s = round((usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime), 2)
    result.wall_s = round(time.perf_counter() - began, 1)
    busy_after, total_after = machine_cpu_jiffies()
    result.machine_busy = round((busy_after - busy_before) / max(1, total_after - total_before), 3)
    return result


async def simulate_with_local_fakes(arm: str, profile: LatencyProfile, script: tuple[Answer, ...],
                                    synthesizer: SpeechSynthesizer, app_store: store.Store, user_id: int,
                                    tts_seconds_per_char: float = 0.06) -> InterviewResult:
    """`simulate_interview` with fresh fakes in this process (so LLM request times are known too)."""
    async with (fake_openai_for(script, profile, tts_seconds_per_char) as openai_fake,
                fake_deepgram_for(script, profile) as deepgram_fake):
        endpoints = ProviderEndpoints(
            openai_base_url=openai_fake.base_url, deepgram_listen_url=deepgram_fake.listen_url,
            chat_request_times=lambda: [request.received_at for request in openai_fake.requests.for_path(CHAT_PATH)],
        )
        return await simulate_interview(arm, profile.name, script, synthesizer, app_store, user_id, endpoints)


# --- Summaries ------------------------------------------------------------------------------------


def summarize_arm(results: list[InterviewResult]) -> dict[str, Any]:
    """Latency on finished answers, and false interruptions and latency on the thinking-pause set."""
    turns = [turn for result in results for turn in result.turns]
    finished = [turn for turn in turns if turn.kind != "pause"]
    plain = [turn for turn in turns if turn.kind == "finished"]
    pauses = [turn for turn in turns if turn.kind == "pause"]
    return {
        "interviews": len(results),
        "finished_answers_first_audio_ms": summarize(turn.first_audio_ms for turn in finished),
        "plain_answers_first_audio_ms": summarize(turn.first_audio_ms for turn in plain),
        "tool_answers_first_audio_ms": summarize(turn.first_audio_ms for turn in finished if turn.kind == "tool"),
        "pause_answers_first_audio_ms": summarize(turn.first_audio_ms for turn in pauses),
        "finished_turn_committed_ms": summarize(turn.turn_committed_ms for turn in finished),
        "finished_llm_request_ms": summarize(turn.llm_request_ms for turn in finished),
        "stt_final_ms": summarize(turn.stt_final_ms for turn in turns),
        "pause_answers": len(pauses),
        "false_interruptions": sum(turn.false_interruption for turn in pauses),
        "false_interruptions_by_pause_s": _false_interruptions_by_pause(pauses),
        "committed_during_pause": sum(turn.committed_during_pause for turn in pauses),
        "unanswered_turns": sum(turn.first_audio_ms is None for turn in turns),
        "transcripts_match_script": all(result.transcripts_match_script for result in results),
        "input_late_frames": sum(result.input_late_frames for result in results),
        "input_max_lag_ms": max(result.input_max_lag_ms for result in results),
        "output_underruns": sum(result.output_underruns for result in results),
        "cpu_s_per_interview": round(sum(result.cpu_s for result in results) / len(results), 2),
        "machine_busy_max": max(result.machine_busy for result in results),
    }


def _false_interruptions_by_pause(pauses: list[TurnRecord]) -> dict[str, str]:
    """Per pause length: pauses in which the agent started speaking / pauses of that length."""
    counts: dict[float, list[int]] = {}
    for turn in pauses:
        for pause in turn.pauses_s:
            counts.setdefault(pause, [0, 0])[1] += 1
        for pause in turn.interrupted_pauses_s:
            counts[pause][0] += 1
    return {f"{pause:.1f}": f"{hit}/{total}" for pause, (hit, total) in sorted(counts.items())}


def _ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or baseline == 0 or math.isnan(baseline):
        return None
    return round(ours / baseline, 2)


def add_ratios(summary: dict[str, dict[str, Any]]) -> None:
    """ours/baseline for p50 and p95 of the headline figure, on every non-baseline arm."""
    baseline = summary.get(BASELINE_ARM)
    if baseline is None:
        return
    reference = baseline["finished_answers_first_audio_ms"]
    for arm, figures in summary.items():
        if arm == BASELINE_ARM:
            continue
        headline = figures["finished_answers_first_audio_ms"]
        figures["ratio_to_defaults"] = {"p50": _ratio(headline["p50"], reference["p50"]),
                                        "p95": _ratio(headline["p95"], reference["p95"])}


def turns_table(result: InterviewResult) -> str:
    rows = [[turn.index, turn.kind, "+".join(f"{p:.1f}" for p in turn.pauses_s) or None, turn.stt_final_ms,
             turn.turn_committed_ms, turn.llm_request_ms, turn.first_audio_ms,
             "YES" if turn.false_interruption else "no"] for turn in result.turns]
    return format_table(["turn", "kind", "pauses s", "stt final", "committed", "llm request", "first audio",
                         "spoke in pause"], rows)


def summary_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    rows = []
    for profile, arms in summary.items():
        for arm, figures in arms.items():
            headline = figures["finished_answers_first_audio_ms"]
            ratio = figures.get("ratio_to_defaults", {})
            rows.append([profile, arm, headline["n"], headline["p50"], headline["p95"], ratio.get("p50"),
                         ratio.get("p95"), f"{figures['false_interruptions']}/{figures['pause_answers']}",
                         figures["pause_answers_first_audio_ms"]["p50"], figures["unanswered_turns"]])
    return format_table(["profile", "arm", "n", "p50 ms", "p95 ms", "p50 vs defaults", "p95 vs defaults",
                         "false interruptions", "pause p50 ms", "unanswered"], rows)


# --- Command line ---------------------------------------------------------------------------------


def check_script_audio(script: tuple[Answer, ...], synthesizer: SpeechSynthesizer) -> None:
    """Every spoken part must stay one STT segment: no inner gap as long as the STT's endpointing."""
    for answer in script:
        for part in answer.parts:
            gap = synthesizer.longest_inner_gap_s(part)
            if gap > STT_SEGMENT_GAP_MARGIN * STT_ENDPOINTING_S:
                raise RuntimeError(f"espeak leaves a {gap:.2f} s gap inside {part!r}; the fake STT would split it")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    script = SCRIPTS[args.script]
    synthesizer = SpeechSynthesizer()
    check_script_audio(script, synthesizer)
    results: dict[str, dict[str, list[InterviewResult]]] = {}
    with tempfile.TemporaryDirectory(prefix="mockflow-simulate-") as temp:
        app_store, user_id = open_store(Path(temp))
        try:
            for profile_name in args.profiles:
                profile = PROFILES[profile_name]
                for repetition in range(args.repeat):
                    for arm in args.arms:
                        result = await simulate_with_local_fakes(arm, profile, script, synthesizer, app_store,
                                                                 user_id, args.tts_seconds_per_char)
                        results.setdefault(profile_name, {}).setdefault(arm, []).append(result)
                        if not args.quiet:
                            print(f"\n[{profile_name} / {arm} / run {repetition + 1}] "
                                  f"greeting {result.greeting_ms} ms after start, cpu {result.cpu_s} s, "
                                  f"wall {result.wall_s} s, machine busy {result.machine_busy:.0%}, "
                                  f"transcripts match script: "
                                  f"{result.transcripts_match_script}")
                            print(turns_table(result))
        finally:
            app_store.dispose()
    summary = {profile: {arm: summarize_arm(runs) for arm, runs in arms.items()} for profile, arms in results.items()}
    for arms in summary.values():
        add_ratios(arms)
    return {
        "settings": {
            "script": args.script, "repeat": args.repeat, "arms": args.arms,
            "profiles": {name: asdict(PROFILES[name]) for name in args.profiles},
            "stt_endpointing_s": STT_ENDPOINTING_S, "turn_gap_s": TURN_GAP_S,
            "tts_seconds_per_char": args.tts_seconds_per_char,
            "turn_taking_timings": asdict(turn_taking.DEFAULT_TIMINGS),
            "mockflow_turn_handling": {**agent_worker.TURN_HANDLING_OPTIONS,
                                       "detector": turn_taking.TranscriptTurnDetector().model,
                                       "vad_min_silence_s": agent_worker.VAD_MIN_SILENCE_S},
        },
        "summary": summary,
        "interviews": {profile: {arm: [result.as_dict() for result in runs] for arm, runs in arms.items()}
                       for profile, arms in results.items()},
    }


def _names(value: str, allowed: dict[str, Any]) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", type=lambda value: _names(value, ARMS), default=["mockflow", BASELINE_ARM])
    parser.add_argument("--profiles", type=lambda value: _names(value, PROFILES), default=list(PROFILES))
    parser.add_argument("--script", choices=sorted(SCRIPTS), default="full")
    parser.add_argument("--repeat", type=int, default=1, help="interviews per arm and profile")
    parser.add_argument("--tts-seconds-per-char", type=float, default=0.06,
                        help="how long the fake TTS speaks per character of the reply")
    parser.add_argument("--quiet", action="store_true", help="no per-turn tables")
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    logging.basicConfig(level=logging.ERROR)
    document = asyncio.run(run(args))
    print()
    print(summary_table(document["summary"]))
    print(f"results: {write_results('simulate', document, args.json, machine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
