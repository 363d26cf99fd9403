"""MockFlow's interviewer: one livekit-agents 1.8 process runs one interview, then exits.

Two ways to run it, sharing one code path once the job is known (`run_interview`):

* ``python agent_worker.py`` (subprocess mode, spawned by worker_manager): imports everything and
  loads Silero VAD first, prints ``{"event": "ready", "pid": <pid>}`` on stdout, then blocks reading
  one JSON job spec from stdin until EOF (warm processes wait here). It connects straight to the
  interview's room with the token in the spec (no dispatch), prints ``{"event": "joined"}``, runs the
  interview and exits 0 on every ending. A malformed job spec prints one line on stderr and exits 2.
* ``python agent_worker.py start`` (dispatch mode): registers with the LiveKit server in
  LIVEKIT_URL as the explicit-dispatch agent ``mockflow-interviewer``. A job's metadata is
  ``{"interview_id": "..."}``; the rest is loaded from the store (DATABASE_URL) and the user's keys
  are decrypted with KEY_ENCRYPTION_KEYS.

Keys reach this process only through stdin or the store: never argv, never the environment, and every
log record is redacted (`security.install_log_redaction`). Each interview logs to
``<log_dir>/interview-<id>.log`` (job spec `log_dir`, else LOG_DIR, else instance/logs), with the
interview id and current stage on every line; transcript text is logged at DEBUG only.

The job spec (stdin, subprocess mode) is `JobSpec`; its JSON schema:

```json
{
  "$defs": {
    "ProviderSettings": {
      "additionalProperties": false,
      "description": "The user's provider keys and settings; empty strings mean the default.",
      "properties": {
        "openai_api_key": {"default": "", "format": "password", "title": "Openai Api Key",
                           "type": "string", "writeOnly": true},
        "deepgram_api_key": {"default": "", "format": "password", "title": "Deepgram Api Key",
                             "type": "string", "writeOnly": true},
        "deepgram_base_url": {"default": "", "title": "Deepgram Base Url", "type": "string"},
        "llm_base_url": {"default": "", "title": "Llm Base Url", "type": "string"},
        "llm_model": {"default": "", "title": "Llm Model", "type": "string"},
        "llm_temperature": {"anyOf": [{"maximum": 2.0, "minimum": 0.0, "type": "number"},
                                      {"type": "null"}],
                            "default": null, "title": "Llm Temperature"},
        "stt_base_url": {"default": "", "title": "Stt Base Url", "type": "string"},
        "stt_model": {"default": "", "title": "Stt Model", "type": "string"},
        "tts_base_url": {"default": "", "title": "Tts Base Url", "type": "string"},
        "tts_model": {"default": "", "title": "Tts Model", "type": "string"},
        "tts_voice": {"default": "", "title": "Tts Voice", "type": "string"}
      },
      "title": "ProviderSettings",
      "type": "object"
    }
  },
  "additionalProperties": false,
  "description": "Subprocess mode's job: the interview, where to write, and the room to join.",
  "properties": {
    "interview_id": {"maxLength": 64, "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$",
                     "title": "Interview Id", "type": "string"},
    "database_url": {"format": "password", "title": "Database Url", "type": "string",
                     "writeOnly": true},
    "log_dir": {"default": "", "title": "Log Dir", "type": "string"},
    "providers": {"$ref": "#/$defs/ProviderSettings"},
    "livekit_url": {"pattern": "^(wss?|https?)://", "title": "Livekit Url", "type": "string"},
    "agent_token": {"format": "password", "title": "Agent Token", "type": "string",
                    "writeOnly": true}
  },
  "required": ["interview_id", "database_url", "livekit_url", "agent_token"],
  "title": "JobSpec",
  "type": "object"
}
```

Provider defaults: STT Deepgram nova-3 (or any OpenAI-compatible Whisper endpoint when
`stt_base_url` is set), LLM gpt-4o-mini, TTS gpt-4o-mini-tts voice "ash"; base URLs point the
OpenAI plugins at Ollama, vLLM, Speaches and the like. The room protocol (participant attributes,
RPC methods, captions) is documented in docs/room-protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import string
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    Agent,
    AgentServer,
    AgentSession,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    JobContext,
    JobProcess,
    ModelSettings,
    RunContext,
    cli,
    function_tool,
    inference,
    llm,
    room_io,
    stt,
    utils,
)
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import (
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    UserStateChangedEvent,
)
from livekit.plugins import deepgram, openai
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

import fsm
import prompts
import security
import store
import turn_taking
from config import DEFAULT_INSTANCE_PATH, Settings
from conversation_cache import INTERVIEW_LANGUAGES
from key_vault import KeyUnreadable, KeyVault
from livekit_tokens import candidate_identity

log = logging.getLogger("mockflow.agent")

AGENT_NAME = "mockflow-interviewer"
DEFAULT_LOG_DIR = DEFAULT_INSTANCE_PATH / "logs"

DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULT_DEEPGRAM_MODEL = "nova-3"
DEFAULT_WHISPER_MODEL = "whisper-1"
DEFAULT_TTS_MODEL = "gpt-4o-mini-tts"
DEFAULT_TTS_VOICE = "ash"
# A local Whisper or TTS server often needs no key, but the openai client refuses an empty one.
KEYLESS_PLACEHOLDER = "not-needed"

# --- Turn taking -------------------------------------------------------------------------------
# Candidates stop to think in the middle of an answer, so a pause must not get a reply, yet a finished
# answer should get one quickly. Silence alone cannot tell the two apart; the words can. The session
# reads the STT's final transcript through turn_taking.TranscriptTurnDetector: after a finished
# sentence it ends the turn min_delay (0.3 s) after the end of speech, after an unfinished clause (a
# filler, a trailing comma, "because", "the") it waits max_delay (2.6 s), and the candidate speaking
# again cancels the countdown. Measured with bench/simulate.py (espeak-ng candidate, real VAD, real
# plugins against the fakes; figures and commands in BENCHMARKS.md): no reply inside any thinking pause
# of 0.8-2.0 s, and a finished answer's turn ends about 0.35 s after the candidate stops. The fixed
# 2.0 s wait used before (turn_detection="vad") answered every turn 2.1 s after the candidate stopped
# and still cut a 2.0 s pause; the audio end-of-turn model bundled with livekit-local-inference held
# most finished answers for its long delay and replied inside a 1.2 s pause.
VAD_MIN_SILENCE_S = turn_taking.DEFAULT_TIMINGS.vad_min_silence_s
# Deepgram's default of 25 ms finalises at every breath; 300 ms keeps finals (and the preemptive LLM
# requests each changed final starts, at most 3 per turn) for real pauses. Not measured on real speech.
DEEPGRAM_ENDPOINTING_MS = 300
# The language-independent part of the session's turn handling (see `turn_handling`).
TURN_HANDLING_OPTIONS: dict[str, Any] = {
    "interruption": {"enabled": True, "min_duration": 0.5},
    "preemptive_generation": {"enabled": True},
}
# Retries where they are safe: rate limits, timeouts and dropped connections are retried by the
# plugins; a rejected key (401/403) is never retried.
CONN_OPTIONS = SessionConnectOptions(
    stt_conn_options=APIConnectOptions(max_retry=3, retry_interval=2.0, timeout=10.0),
    llm_conn_options=APIConnectOptions(max_retry=2, retry_interval=2.0, timeout=20.0),
    tts_conn_options=APIConnectOptions(max_retry=2, retry_interval=2.0, timeout=15.0),
)

# --- Silence and endings --------------------------------------------------------------------------
SILENCE_CHECK_IN_S = 25.0  # quiet candidate and agent for this long: check in (twice), then end
MAX_SILENCE_CHECK_INS = 2
ROOM_CONNECT_TIMEOUT_S = 20.0
SILENCE_END_REASON = "We could not hear you for a while, so the interview was ended."
LEFT_END_REASON = "You left the interview room and did not come back, so the interview was ended."
NEVER_JOINED_REASON = "You did not join the interview room in time."
STOPPED_REASON = "The interview was stopped by the server."
UNEXPECTED_CLOSE_REASON = "The interview stopped unexpectedly."

# --- Room protocol (docs/room-protocol.md) ----------------------------------------------------------
ATTR_STATUS = "mockflow.status"
ATTR_FAILURE_REASON = "mockflow.failure_reason"
ATTR_STAGE = "mockflow.stage"
ATTR_STAGE_TITLE = "mockflow.stage_title"
ATTR_STAGE_INDEX = "mockflow.stage_index"
ATTR_STAGE_COUNT = "mockflow.stage_count"
ATTR_STAGE_DEADLINE_MS = "mockflow.stage_deadline_ms"
RPC_END_INTERVIEW = "end_interview"
RPC_SKIP_STAGE = "skip_stage"
RPC_ERROR_FORBIDDEN = 2403
RPC_ERROR_REFUSED = 2409


class JobSpecError(ValueError):
    """The job spec is not valid JSON or does not match `JobSpec`; the message is one line, no values."""


class InterviewUnavailable(Exception):
    """The interview does not exist, or has already ended (first final status wins)."""


class ProviderSettings(BaseModel):
    """The user's provider keys and settings; empty strings mean the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    openai_api_key: SecretStr = SecretStr("")
    deepgram_api_key: SecretStr = SecretStr("")
    deepgram_base_url: str = ""
    llm_base_url: str = ""
    llm_model: str = ""
    llm_temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    stt_base_url: str = ""
    stt_model: str = ""
    tts_base_url: str = ""
    tts_model: str = ""
    tts_voice: str = ""


class InterviewJob(BaseModel):
    """What both modes know once a job is taken: the interview, the store and the user's providers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interview_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    database_url: SecretStr
    log_dir: str = ""
    providers: ProviderSettings = Field(default_factory=ProviderSettings)


class JobSpec(InterviewJob):
    """Subprocess mode's job: the interview, where to write, and the room to join."""

    livekit_url: str = Field(pattern=r"^(wss?|https?)://")
    agent_token: SecretStr


def parse_job_spec(raw: str | bytes) -> JobSpec:
    """The job spec read from stdin; JobSpecError (one line, never echoing a value) when malformed."""
    try:
        return JobSpec.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'spec'}: {issue['msg']}"
            for issue in error.errors(include_input=False, include_url=False)
        )
        raise JobSpecError(problems.replace("\n", " ")) from None


@dataclass(frozen=True)
class LoadedInterview:
    """The interview as the agent runs it: its plan, the context for the prompts and its language."""

    id: str
    user_id: int
    plan: fsm.InterviewPlan
    context: dict[str, Any]
    language: str


def load_interview(app_store: store.Store, interview_id: str) -> LoadedInterview:
    """Read the interview this process runs; InterviewUnavailable when missing or already ended."""
    with app_store.session() as db:
        row = store.get_interview(db, interview_id)
        if row is None:
            raise InterviewUnavailable(f"interview {interview_id} does not exist")
        if row.status in store.INTERVIEW_FINAL_STATUSES:
            raise InterviewUnavailable(f"interview {interview_id} has already ended ({row.status})")
        context = dict(row.context or {})
        context.setdefault("language", row.language)
        return LoadedInterview(
            id=row.id,
            user_id=row.user_id,
            plan=fsm.InterviewPlan.from_dict(row.plan),
            context=context,
            language=row.language or "en",
        )


# --- Logging ------------------------------------------------------------------------------------------


class InterviewLogContext(logging.Filter):
    """Adds the interview id and its current stage to every record of the interview's log file."""

    def __init__(self, interview_id: str) -> None:
        super().__init__()
        self.interview_id = interview_id
        self.stage = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.interview_id = self.interview_id
        record.stage = self.stage
        return True


def configure_interview_logging(job: InterviewJob) -> InterviewLogContext:
    """Send this process's logs, redacted, to the interview's own file, with id and stage on each line."""
    security.install_log_redaction()
    log_dir = Path(job.log_dir or os.environ.get("LOG_DIR") or DEFAULT_LOG_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    context = InterviewLogContext(job.interview_id)
    handler = logging.FileHandler(log_dir / f"interview-{job.interview_id}.log", encoding="utf-8")
    handler.addFilter(context)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [interview=%(interview_id)s stage=%(stage)s] %(message)s"
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return context


# --- Providers ------------------------------------------------------------------------------------------


def load_vad() -> inference.VAD:
    """Silero VAD, loaded once per process (before the job in subprocess mode, in prewarm otherwise).

    It runs in livekit-local-inference's native runtime (the weights are compiled into the package),
    not in onnxruntime through the silero plugin: that keeps onnxruntime out of the process and cut
    the CPU per live interview in bench/capacity.py (figures in BENCHMARKS.md).
    """
    return inference.VAD(min_silence_duration=VAD_MIN_SILENCE_S)


def build_stt(providers: ProviderSettings, language: str) -> stt.STT:
    """Deepgram streaming STT with filler words and word timings, or an OpenAI-compatible Whisper."""
    if providers.stt_base_url:
        # Not streaming: the session wraps it with the VAD, one request per utterance.
        return openai.STT(
            model=providers.stt_model or DEFAULT_WHISPER_MODEL,
            base_url=providers.stt_base_url,
            api_key=providers.openai_api_key.get_secret_value() or KEYLESS_PLACEHOLDER,
            language=language,
            use_realtime=False,
        )
    deepgram_language = INTERVIEW_LANGUAGES.get(language, INTERVIEW_LANGUAGES["en"])[1]
    options: dict[str, Any] = {"base_url": providers.deepgram_base_url} if providers.deepgram_base_url else {}
    return deepgram.STT(
        model=providers.stt_model or DEFAULT_DEEPGRAM_MODEL,
        language=deepgram_language,
        api_key=providers.deepgram_api_key.get_secret_value(),
        filler_words=True,  # the analytics count "um"s
        punctuate=True,
        interim_results=True,
        endpointing_ms=DEEPGRAM_ENDPOINTING_MS,
        **options,
    )


def build_llm(providers: ProviderSettings) -> openai.LLM:
    """OpenAI chat completions, or any compatible server (Ollama, vLLM) through `llm_base_url`."""
    api_key = providers.openai_api_key.get_secret_value()
    return openai.LLM(
        model=providers.llm_model or DEFAULT_LLM_MODEL,
        base_url=providers.llm_base_url or NOT_GIVEN,
        api_key=api_key or (KEYLESS_PLACEHOLDER if providers.llm_base_url else NOT_GIVEN),
        temperature=providers.llm_temperature if providers.llm_temperature is not None else NOT_GIVEN,
    )


def build_tts(providers: ProviderSettings) -> openai.TTS:
    """OpenAI speech, or a compatible server through `tts_base_url`; raw 24 kHz PCM needs no decoder."""
    api_key = providers.openai_api_key.get_secret_value()
    return openai.TTS(
        model=providers.tts_model or DEFAULT_TTS_MODEL,
        voice=providers.tts_voice or DEFAULT_TTS_VOICE,
        base_url=providers.tts_base_url or NOT_GIVEN,
        api_key=api_key or (KEYLESS_PLACEHOLDER if providers.tts_base_url else NOT_GIVEN),
        response_format="pcm",
    )


def turn_handling(language: str) -> dict[str, Any]:
    """The session's turn handling for an interview in `language`: the transcript-aware end of turn."""
    return {**TURN_HANDLING_OPTIONS, **turn_taking.session_turn_handling(language)}


def build_session(providers: ProviderSettings, language: str, vad: inference.VAD) -> AgentSession:
    """The voice pipeline of one interview, with the turn taking chosen above."""
    return AgentSession(
        stt=build_stt(providers, language),
        llm=build_llm(providers),
        tts=build_tts(providers),
        vad=vad,
        turn_handling=turn_handling(language),
        user_away_timeout=SILENCE_CHECK_IN_S,
        conn_options=CONN_OPTIONS,
    )


def provider_labels(providers: ProviderSettings) -> dict[str, str]:
    """The name shown to the candidate for each pipeline part, by error type."""
    return {
        "llm_error": "LLM" if providers.llm_base_url else "OpenAI",
        "tts_error": "text-to-speech" if providers.tts_base_url else "OpenAI",
        "stt_error": "speech-to-text" if providers.stt_base_url else "Deepgram",
    }


def describe_provider_error(label: str, error: BaseException) -> tuple[str, bool]:
    """A reason the candidate can act on, and whether the key itself was rejected."""
    if isinstance(error, APIStatusError):
        if error.status_code in (401, 403):
            return f"Your {label} key was rejected. Check it in Settings, then start a new interview.", True
        if error.status_code == 429:
            return (
                f"Your {label} account hit its rate limit or ran out of quota. Check its plan and billing, "
                "then start a new interview.",
                False,
            )
        return (
            f"The {label} service answered with an error (HTTP {error.status_code}). Please try again later.",
            False,
        )
    if isinstance(error, APITimeoutError):
        return f"The {label} service did not answer in time. Please try again later.", False
    if isinstance(error, APIConnectionError):
        return f"The {label} service could not be reached. Please try again later.", False
    return f"The {label} service failed unexpectedly. Please try again later.", False


# --- The interview --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    """How often the background loops run and how long the agent waits; shortened in tests."""

    verifier_interval_s: float = 2.0
    heartbeat_interval_s: float = 5.0
    reconnect_grace_s: float = 30.0
    join_timeout_s: float = 180.0
    goodbye_timeout_s: float = 20.0
    # The FSM ends the interview at the plan's maximum; this is the net under that.
    overrun_grace_s: float = 60.0


AttributePublisher = Callable[[dict[str, str]], Awaitable[None]]


class StoreWriter:
    """Runs store calls on one worker thread, in submission order, off the event loop."""

    def __init__(self, app_store: store.Store) -> None:
        self._store = app_store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._closed = False

    def _in_session(self, work: Callable[[Any], Any]) -> Any:
        with self._store.session() as db:
            return work(db)

    def _logged(self, work: Callable[[Any], Any], what: str) -> None:
        try:
            self._in_session(work)
        except Exception:
            log.exception("could not save %s", what)

    async def run(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(db)` in a unit of work after everything submitted before it; return its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_session, work)

    def submit(self, work: Callable[[Any], Any], what: str) -> None:
        """Queue `work(db)` without waiting; a failure is logged, never raised into the conversation."""
        if self._closed:
            log.warning("not saving %s: the interview has ended", what)
            return
        self._executor.submit(self._logged, work, what)

    async def flush(self) -> None:
        """Wait until every queued write is done."""
        await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False)


def _bare_word(text: str) -> str:
    return text.strip(string.punctuation + "¿¡…").lower()


class InterviewController:
    """Runs one interview on an AgentSession: stages and timing (fsm), the transcript and stage events
    (store), the candidate's room signals, and every way the interview can end.

    `clock` drives the timing engine (inject a fake one to force timeouts); transcript times use the
    wall clock, like livekit-agents' own timestamps.
    """

    def __init__(
        self,
        interview: LoadedInterview,
        app_store: store.Store,
        *,
        clock: Callable[[], float] = time.monotonic,
        timings: Timings = Timings(),
        labels: Mapping[str, str] | None = None,
        publish_attributes: AttributePublisher | None = None,
        log_context: InterviewLogContext | None = None,
    ) -> None:
        self.interview = interview
        self.timings = timings
        self.candidate_identity = candidate_identity(interview.id)
        self.state: fsm.InterviewState | None = None
        self.session: AgentSession | None = None
        self.agent: InterviewerAgent | None = None
        self._writer = StoreWriter(app_store)
        self._clock = clock
        self._labels = dict(labels or provider_labels(ProviderSettings()))
        self._publish = publish_attributes
        self._log_context = log_context
        self._started_wall = 0.0
        self._stage_timeline: list[tuple[float, str]] = []
        # Notes added to the stage's instructions: nudges last the stage, cues only until the next reply.
        self._nudges: list[str] = []
        self._cues: list[str] = []
        self._cues_added_at = 0.0
        self._pending_words: list[dict[str, Any]] = []
        self._stt_opened_wall: float | None = None
        self._stt_origin_wall: float | None = None
        self._silence_check_ins = 0
        self._ending = False
        self._session_closed = False
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # loops and short jobs, cancelled at the end
        self._ending_task: asyncio.Task[None] | None = None
        self._grace_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(
        self,
        session: AgentSession,
        *,
        room: rtc.Room | None = None,
        room_options: room_io.RoomOptions | None = None,
        capture_run: bool = False,
    ) -> Any:
        """Go live: start the timing engine, mark the interview live and start the agent (who greets).

        Returns the session's RunResult for the greeting when `capture_run` is set (text tests).
        """
        self.session = session
        self.state = fsm.InterviewState(self.interview.plan, self._clock)
        self._started_wall = time.time()
        self._stage_timeline.append((self._started_wall, self.state.current.key))
        self._set_log_stage(self.state.current.key)
        session.on("conversation_item_added", self._on_conversation_item)
        session.on("user_state_changed", self._on_user_state)
        session.on("error", self._on_session_error)
        session.on("close", self._on_session_close)
        if not await self._writer.run(self._go_live):
            raise InterviewUnavailable(f"interview {self.interview.id} ended before it went live")
        log.info(
            "interview live: %s track, %d stages", self.interview.plan.track, len(self.interview.plan.stages)
        )
        await self._publish_state("live")
        self.agent = InterviewerAgent(self)
        self._spawn(self._verifier_loop())
        self._spawn(self._heartbeat_loop())
        options: dict[str, Any] = {"capture_run": capture_run, "record": False}
        if room is not None:
            options["room"] = room
        if room_options is not None:
            options["room_options"] = room_options
        return await session.start(self.agent, **options)

    def _go_live(self, db: Any) -> bool:
        assert self.state is not None
        if not store.set_interview_status(db, self.interview.id, "live"):
            return False
        store.touch_heartbeat(db, self.interview.id, self.state.current.key)
        return True

    async def wait_closed(self) -> None:
        """Wait until the interview has ended and its final status is stored."""
        await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def flush(self) -> None:
        """Wait until every transcript turn and event seen so far is written."""
        await self._writer.flush()

    def end(
        self,
        status: str,
        *,
        reason: str = "",
        fsm_reason: str = "end",
        goodbye: bool = False,
        spoken_line: str | None = None,
    ) -> asyncio.Task[None]:
        """Start ending the interview (idempotent: the first ending wins) and return the ending task."""
        if self._ending_task is None:
            self._ending_task = asyncio.create_task(
                self._finish(
                    status, reason=reason, fsm_reason=fsm_reason, goodbye=goodbye, spoken_line=spoken_line
                ),
                name="interview-ending",
            )
        return self._ending_task

    async def _finish(
        self, status: str, *, reason: str, fsm_reason: str, goodbye: bool, spoken_line: str | None
    ) -> None:
        self._ending = True
        log.info("interview ending: %s%s", status, f" ({reason})" if reason else "")
        for task in (*self._tasks, self._grace_task):
            if task is not None:
                task.cancel()
        try:
            if self.state is not None and (transition := self.state.finish(fsm_reason)) is not None:
                self._save_stage_event(transition)
            await self._last_words(goodbye=goodbye, spoken_line=spoken_line)
            if self.session is not None and not self._session_closed:
                await self.session.aclose()
        except Exception:
            log.exception("error while closing the session")
        finally:
            await self._writer.flush()
            try:
                updated = await self._writer.run(
                    lambda db: store.set_interview_status(db, self.interview.id, status, reason)
                )
                if not updated:
                    log.info("the interview had already ended elsewhere; its first final status stands")
            except Exception:
                log.exception("could not store the final status %s", status)
            await self._publish_state(status, reason)
            self._writer.close()
            self._closed.set()

    async def _last_words(self, *, goodbye: bool, spoken_line: str | None) -> None:
        session = self.session
        if session is None or self._session_closed or not (goodbye or spoken_line):
            return
        if spoken_line:
            handle = session.say(spoken_line, allow_interruptions=False)
        else:
            session.interrupt(force=True)
            handle = session.generate_reply(
                instructions=prompts.goodbye(self.interview.context),
                tool_choice="none",
                allow_interruptions=False,
            )
        try:
            await asyncio.wait_for(handle.wait_for_playout(), self.timings.goodbye_timeout_s)
        except TimeoutError:
            log.warning("the goodbye did not finish in %.0f s", self.timings.goodbye_timeout_s)

    # -- stages ----------------------------------------------------------------------------------

    def instructions(self) -> str:
        """The interviewer's instructions for the current stage, plus the notes of the timing engine."""
        assert self.state is not None
        base = prompts.build_instructions(self.interview.plan, self.interview.context, self.state.current.key)
        return "\n\n".join([base, *self._nudges, *self._cues])

    async def _refresh_instructions(self) -> None:
        if self.agent is not None:
            await self.agent.update_instructions(self.instructions())

    async def _advance(self, reason: str) -> fsm.Transition:
        """Move to the next stage (fsm rules apply) and tell the agent, the store and the room."""
        assert self.state is not None
        transition = self.state.advance(reason)
        self._stage_timeline.append((time.time(), transition.to_stage))
        self._nudges.clear()
        self._cues.clear()
        self._set_log_stage(transition.to_stage)
        self._save_stage_event(transition)
        log.info("stage %s -> %s (%s)", transition.from_stage, transition.to_stage, reason)
        await self._refresh_instructions()
        await self._publish_state("live")
        return transition

    def _save_stage_event(self, transition: fsm.Transition) -> None:
        interview_id = self.interview.id
        self._writer.submit(
            lambda db: store.record_stage_event(
                db,
                interview_id,
                transition.from_stage,
                transition.to_stage,
                transition.reason,
                round(transition.elapsed_s, 3),
            ),
            "a stage event",
        )

    async def transition_stage_tool(self) -> str:
        """The `transition_stage` tool: move on if the timing engine allows it, else say why not."""
        if self.state is None or self._ending:
            return prompts.transition_refused("the interview has already ended")
        try:
            await self._advance("tool")
        except fsm.TransitionRefused as refused:
            log.info("transition_stage refused: %s", refused)
            return prompts.transition_refused(str(refused))
        return prompts.transition_accepted(self.state.current)

    async def end_interview_tool(self, context: RunContext) -> str | None:
        """The `end_interview` tool: only in the closing stage; lets the goodbye play, then ends."""
        if self.state is None or self._ending:
            return None
        verdict = self.state.can_end()
        if not verdict.allowed:
            log.info("end_interview refused: %s", verdict.reason)
            return prompts.transition_refused(verdict.reason)
        await context.wait_for_playout()
        self.end("completed", fsm_reason="tool")
        return None

    # -- the verifier and the heartbeat ----------------------------------------------------------

    def _floor_is_free(self) -> bool:
        session = self.session
        return (
            session is not None
            and session.agent_state in ("listening", "idle")
            and session.user_state in ("listening", "away")
        )

    async def tick(self) -> fsm.Action:
        """One verifier step: apply the timing engine's nudge, forced transition or end."""
        if self.state is None or self._ending:
            return fsm.Action.NONE
        action = self.state.due_action()
        if action is fsm.Action.NUDGE:
            self._nudges.append(prompts.wrap_up_nudge(self.state.current))
            await self._refresh_instructions()
        elif action is fsm.Action.FORCE_TRANSITION:
            from_stage = self.state.current
            await self._advance("timeout")
            bridge = prompts.forced_transition_line(from_stage, self.state.current)
            if self._floor_is_free() and self.session is not None:
                self.session.generate_reply(instructions=bridge, tool_choice="none")
            else:
                # Someone is talking: the next reply bridges instead of cutting in now.
                self._cues.append(bridge)
                self._cues_added_at = time.time()
                await self._refresh_instructions()
        elif action is fsm.Action.END:
            self.end("completed", fsm_reason="timeout", goodbye=True)
        return action

    async def _verifier_loop(self) -> None:
        while not self._ending:
            await asyncio.sleep(self.timings.verifier_interval_s)
            try:
                await self.tick()
            except Exception:
                log.exception("verifier tick failed")

    async def _heartbeat_loop(self) -> None:
        interview_id = self.interview.id
        while not self._ending:
            await asyncio.sleep(self.timings.heartbeat_interval_s)
            stage = self.state.current.key if self.state is not None else None
            self._writer.submit(
                lambda db, stage=stage: store.touch_heartbeat(db, interview_id, stage), "the heartbeat"
            )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- transcript --------------------------------------------------------------------------------

    def on_stt_stream_opened(self) -> None:
        """The agent's STT stream starts: its word times count from the session's audio input start."""
        self._stt_opened_wall = time.time()
        self._stt_origin_wall = None

    def on_final_transcript(self, alternative: stt.SpeechData) -> None:
        """Keep the word timings and fillers of a final transcript for the candidate turn it belongs to."""
        for word in alternative.words or []:
            if not utils.is_given(word.start_time) or not utils.is_given(word.end_time):
                continue
            if self._stt_origin_wall is None:
                # Word times are seconds since the audio input started, which is when the stream
                # opened minus the offset the framework gave the stream then.
                offset = word.start_time_offset if utils.is_given(word.start_time_offset) else 0.0
                self._stt_origin_wall = (self._stt_opened_wall or time.time()) - offset
            self._pending_words.append(
                {
                    "word": _bare_word(str(word)),
                    "punctuated_word": str(word),
                    "start": self._since_start(self._stt_origin_wall + word.start_time),
                    "end": self._since_start(self._stt_origin_wall + word.end_time),
                    "confidence": float(word.confidence) if utils.is_given(word.confidence) else None,
                }
            )

    def _since_start(self, wall_time: float) -> float:
        return round(max(0.0, wall_time - self._started_wall), 3)

    def _stage_at(self, wall_time: float) -> str:
        stage = self._stage_timeline[0][1]
        for changed_at, key in self._stage_timeline:
            if changed_at <= wall_time:
                stage = key
        return stage

    def _on_conversation_item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        words: list[dict[str, Any]] = []
        if item.role == "user":
            words, self._pending_words = self._pending_words, []
        started, ended = self._turn_times(item, words)
        if item.role == "assistant" and self._cues and started >= self._cues_added_at and not self._ending:
            # This reply was made with the pending cue: it has been acted on.
            self._cues.clear()
            self._spawn(self._refresh_instructions())
        text = (item.text_content or "").strip()
        if not text:
            return
        speaker = "candidate" if item.role == "user" else "interviewer"
        stage = self._stage_at(started)
        log.debug("%s turn (%s): %s", speaker, stage, text)
        interview_id, start_s, end_s = self.interview.id, self._since_start(started), self._since_start(ended)
        interrupted = bool(item.interrupted)
        self._writer.submit(
            lambda db: store.append_turn(
                db,
                interview_id,
                speaker=speaker,
                stage=stage,
                text=text,
                start_s=start_s,
                end_s=end_s,
                words=words,
                interrupted=interrupted,
            ),
            f"a {speaker} turn",
        )

    def _turn_times(self, item: llm.ChatMessage, words: list[dict[str, Any]]) -> tuple[float, float]:
        """Wall-clock start and end of a turn: when it was heard or played, else its words, else now."""
        started = item.metrics.get("started_speaking_at")
        ended = item.metrics.get("stopped_speaking_at")
        if started is None and words:
            started = self._started_wall + words[0]["start"]
        if ended is None and words:
            ended = self._started_wall + words[-1]["end"]
        started = started if started is not None else item.created_at
        ended = ended if ended is not None else item.created_at
        return started, max(started, ended)

    # -- candidate signals --------------------------------------------------------------------------

    def _on_user_state(self, event: UserStateChangedEvent) -> None:
        if event.new_state == "speaking":
            self._silence_check_ins = 0
        elif event.new_state == "away" and not self._ending:
            self._spawn(self.on_candidate_silent())

    async def on_candidate_silent(self) -> None:
        """The candidate and the agent have been quiet too long: check in twice, then end."""
        if self._ending or self.session is None:
            return
        self._silence_check_ins += 1
        if self._silence_check_ins > MAX_SILENCE_CHECK_INS:
            self.end("interrupted", reason=SILENCE_END_REASON, goodbye=True)
            return
        log.info("candidate silent: check-in %d", self._silence_check_ins)
        handle = self.session.generate_reply(
            instructions=prompts.silence_check_in(self._silence_check_ins), tool_choice="none"
        )
        await handle.wait_for_playout()
        if not self._ending:
            # Away fires once; re-arm it so the next silence is noticed too.
            self.session.reset_away_timer()

    def on_candidate_left(self) -> None:
        """The candidate's connection dropped: wait for a reconnect, then end as interrupted."""
        if self._ending or self._grace_task is not None:
            return
        log.info("candidate left; waiting %.0f s for a reconnect", self.timings.reconnect_grace_s)

        async def grace() -> None:
            await asyncio.sleep(self.timings.reconnect_grace_s)
            self.end("interrupted", reason=LEFT_END_REASON)

        self._grace_task = asyncio.create_task(grace())

    def on_candidate_returned(self) -> None:
        """The candidate reconnected within the grace period: carry on."""
        if self._grace_task is not None:
            log.info("candidate reconnected")
            self._grace_task.cancel()
            self._grace_task = None

    # -- RPC from the candidate ----------------------------------------------------------------------

    def _check_caller(self, data: rtc.RpcInvocationData) -> None:
        if data.caller_identity != self.candidate_identity:
            log.warning("refused RPC %s from a participant that is not the candidate", data.method)
            raise rtc.RpcError(RPC_ERROR_FORBIDDEN, "only the candidate may do this")

    async def rpc_end_interview(self, data: rtc.RpcInvocationData) -> str:
        """RPC `end_interview`: the candidate pressed End. The agent says goodbye, then ends."""
        self._check_caller(data)
        if not self._ending:
            log.info("candidate ended the interview")
            self.end("completed", fsm_reason="candidate", goodbye=True)
        return json.dumps({"ok": True, "status": "ending"})

    async def rpc_skip_stage(self, data: rtc.RpcInvocationData) -> str:
        """RPC `skip_stage`: the candidate takes the next stage now (reason "candidate")."""
        self._check_caller(data)
        if self.state is None or self._ending:
            raise rtc.RpcError(RPC_ERROR_REFUSED, "the interview has ended")
        from_stage = self.state.current
        try:
            await self._advance("candidate")
        except fsm.TransitionRefused as refused:
            raise rtc.RpcError(RPC_ERROR_REFUSED, str(refused)) from None
        if self.session is not None:
            self.session.interrupt(force=True)
            self.session.generate_reply(
                instructions=prompts.forced_transition_line(from_stage, self.state.current),
                tool_choice="none",
            )
        return json.dumps({"ok": True, "stage": self.state.current.key})

    # -- provider errors and session close ----------------------------------------------------------

    def _on_session_error(self, event: ErrorEvent) -> None:
        error = event.error
        if self._ending or getattr(error, "recoverable", True):
            return
        label = self._labels.get(getattr(error, "type", ""), "provider")
        cause = getattr(error, "error", error)
        reason, key_rejected = describe_provider_error(label, cause)
        log.error("provider failure (%s): %s", label, reason)
        spoken = prompts.provider_key_rejected_line(label) if key_rejected else None
        self.end("failed", reason=reason, spoken_line=spoken)

    def _on_session_close(self, event: CloseEvent) -> None:
        self._session_closed = True
        if self._ending:
            return
        if event.reason == CloseReason.ERROR and event.error is not None:
            label = self._labels.get(getattr(event.error, "type", ""), "provider")
            reason, _ = describe_provider_error(label, getattr(event.error, "error", event.error))
            self.end("failed", reason=reason)
        elif event.reason == CloseReason.JOB_SHUTDOWN:
            self.end("interrupted", reason=STOPPED_REASON)
        else:
            self.end("interrupted", reason=UNEXPECTED_CLOSE_REASON)

    # -- room attributes --------------------------------------------------------------------------------

    def room_attributes(self, status: str, reason: str = "") -> dict[str, str]:
        """The agent's participant attributes for the browser (docs/room-protocol.md)."""
        attributes = {ATTR_STATUS: status, ATTR_FAILURE_REASON: reason if status == "failed" else ""}
        if self.state is not None:
            stage = self.state.current
            deadline = ""
            if status == "live":
                deadline_wall = time.time() + (self.state.stage_deadline() - self._clock())
                deadline = str(int(deadline_wall * 1000))
            attributes |= {
                ATTR_STAGE: stage.key,
                ATTR_STAGE_TITLE: stage.title,
                ATTR_STAGE_INDEX: str(self.state.index),
                ATTR_STAGE_COUNT: str(len(self.interview.plan.stages)),
                ATTR_STAGE_DEADLINE_MS: deadline,
            }
        return attributes

    async def _publish_state(self, status: str, reason: str = "") -> None:
        if self._publish is None:
            return
        try:
            await self._publish(self.room_attributes(status, reason))
        except Exception:
            log.warning("could not publish the room attributes", exc_info=True)

    async def publish_waiting(self) -> None:
        """Tell the room the interviewer is here and waiting for the candidate."""
        await self._publish_state("starting")

    def _set_log_stage(self, stage: str) -> None:
        if self._log_context is not None:
            self._log_context.stage = stage


class InterviewerAgent(Agent):
    """The interviewer: one Agent whose instructions follow the stage, with the stage tools."""

    def __init__(self, controller: InterviewController) -> None:
        super().__init__(instructions=controller.instructions())
        self._controller = controller

    async def on_enter(self) -> None:
        plan, context = self._controller.interview.plan, self._controller.interview.context
        self.session.generate_reply(instructions=prompts.greeting_opener(plan, context))

    async def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[stt.SpeechEvent]:
        """The default STT node, watched for final transcripts: their word timings go to the transcript."""
        self._controller.on_stt_stream_opened()
        async for event in Agent.default.stt_node(self, audio, model_settings):
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
                self._controller.on_final_transcript(event.alternatives[0])
            yield event

    @function_tool
    async def transition_stage(self, context: RunContext) -> str:
        """Move the interview on to its next stage once the objective of the current stage is met.

        The interview system may refuse when the stage has not run its minimum time; the answer says
        why, and then you carry on with the current stage.
        """
        return await self._controller.transition_stage_tool()

    @function_tool
    async def end_interview(self, context: RunContext) -> str | None:
        """End the interview. Only in the closing stage, after you have said goodbye."""
        return await self._controller.end_interview_tool(context)


# --- Running in a room ---------------------------------------------------------------------------------


async def wait_for_participant(room: rtc.Room, identity: str, timeout_s: float) -> bool:
    """True once `identity` is in the room (it may already be), False after `timeout_s`."""
    joined = asyncio.Event()

    def on_connected(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == identity:
            joined.set()

    room.on("participant_connected", on_connected)
    try:
        if any(p.identity == identity for p in room.remote_participants.values()):
            return True
        try:
            await asyncio.wait_for(joined.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
    finally:
        room.off("participant_connected", on_connected)


def bind_room(controller: InterviewController, room: rtc.Room) -> None:
    """Wire the room to the controller: the candidate's RPCs, leaving and coming back."""
    participant = room.local_participant
    participant.register_rpc_method(RPC_END_INTERVIEW, controller.rpc_end_interview)
    participant.register_rpc_method(RPC_SKIP_STAGE, controller.rpc_skip_stage)

    def on_disconnected(remote: rtc.RemoteParticipant) -> None:
        if remote.identity == controller.candidate_identity:
            controller.on_candidate_left()

    def on_connected(remote: rtc.RemoteParticipant) -> None:
        if remote.identity == controller.candidate_identity:
            controller.on_candidate_returned()

    room.on("participant_disconnected", on_disconnected)
    room.on("participant_connected", on_connected)


async def run_interview(
    job: InterviewJob,
    interview: LoadedInterview,
    app_store: store.Store,
    room: rtc.Room,
    vad: inference.VAD,
    *,
    log_context: InterviewLogContext | None = None,
    timings: Timings = Timings(),
    on_controller: Callable[[InterviewController], None] | None = None,
) -> InterviewController:
    """Both modes, once the room is connected: wait for the candidate, run the interview, return when
    it has ended and its final status is stored. `on_controller` sees the controller first (SIGTERM)."""
    controller = InterviewController(
        interview,
        app_store,
        timings=timings,
        labels=provider_labels(job.providers),
        publish_attributes=room.local_participant.set_attributes,
        log_context=log_context,
    )
    if on_controller is not None:
        on_controller(controller)
    bind_room(controller, room)
    await controller.publish_waiting()
    if not await _candidate_joined(controller, room):
        await controller.end("interrupted", reason=NEVER_JOINED_REASON)
        return controller
    session = build_session(job.providers, interview.language, vad)
    options = room_io.RoomOptions(
        participant_identity=controller.candidate_identity,  # only the candidate is heard
        text_input=False,  # a voice interview: typed chat is not part of it
        close_on_disconnect=False,  # a dropped connection gets a grace period instead
        delete_room_on_close=False,
    )
    try:
        await controller.start(session, room=room, room_options=options)
    except InterviewUnavailable as unavailable:
        log.error("%s", unavailable)
        await session.aclose()
        return controller
    except Exception:
        log.exception("the interview could not start")
        await controller.end("failed", reason="The interviewer could not start. Please try again.")
    limit_s = interview.plan.max_duration_s + timings.overrun_grace_s
    try:
        await asyncio.wait_for(asyncio.shield(controller.wait_closed()), limit_s)
    except TimeoutError:
        log.error("the interview outlived its maximum duration; ending it")
        await controller.end("completed", fsm_reason="timeout")
    return controller


async def _candidate_joined(controller: InterviewController, room: rtc.Room) -> bool:
    """Wait for the candidate; False when they do not come in time or the interview ended meanwhile."""
    joined = asyncio.create_task(
        wait_for_participant(room, controller.candidate_identity, controller.timings.join_timeout_s)
    )
    ended = asyncio.create_task(controller.wait_closed())
    await asyncio.wait({joined, ended}, return_when=asyncio.FIRST_COMPLETED)
    ended.cancel()
    if not joined.done():
        joined.cancel()
        return False
    return joined.result() and not controller.closed


def _safe_connect_error(error: BaseException) -> str:
    """An error text safe to show: no query string (the token travels in it), secrets redacted."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = " ".join(part.split("?", 1)[0] if "://" in part else part for part in text.split(" "))
    return security.redact(text)[:300]


def _store_status(app_store: store.Store, interview_id: str, status: str, reason: str) -> None:
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, status, reason)


class SigtermStop:
    """SIGTERM from the worker manager: end the running interview cleanly as interrupted, or, before it
    has begun (still connecting), stop and mark it interrupted."""

    def __init__(self, job_task: asyncio.Task[Any]) -> None:
        self._job_task = job_task
        self._controller: InterviewController | None = None
        self.requested = False

    def attach(self, controller: InterviewController) -> None:
        self._controller = controller

    def __call__(self) -> None:
        if self.requested:
            return
        self.requested = True
        log.info("SIGTERM: stopping the interview")
        if self._controller is not None:
            self._controller.end("interrupted", reason=STOPPED_REASON)
        else:
            self._job_task.cancel()


async def run_subprocess_job(spec: JobSpec, vad: inference.VAD, log_context: InterviewLogContext) -> None:
    """Subprocess mode after the spec: join the room directly, run the interview, leave."""
    job_task = asyncio.current_task()
    assert job_task is not None
    stop = SigtermStop(job_task)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    app_store = store.Store(spec.database_url.get_secret_value())
    try:
        interview = await asyncio.to_thread(load_interview, app_store, spec.interview_id)
        room = rtc.Room()
        try:
            await asyncio.wait_for(
                room.connect(spec.livekit_url, spec.agent_token.get_secret_value()), ROOM_CONNECT_TIMEOUT_S
            )
        except Exception as error:  # every connect failure ends the same way
            detail = (
                "it did not answer in time" if isinstance(error, TimeoutError) else _safe_connect_error(error)
            )
            reason = (
                f"Could not connect to your LiveKit server at {spec.livekit_url.split('?', 1)[0]}: {detail}"
            )
            log.error("%s", reason)
            await asyncio.to_thread(_store_status, app_store, spec.interview_id, "failed", reason)
            return
        emit_event("joined")
        try:
            async with utils.http_context.open():
                await run_interview(
                    spec, interview, app_store, room, vad, log_context=log_context, on_controller=stop.attach
                )
        finally:
            await room.disconnect()
    except InterviewUnavailable as unavailable:
        log.error("nothing to run: %s", unavailable)
    except asyncio.CancelledError:
        if not stop.requested:
            raise
        job_task.uncancel()
        log.info("stopped before the interview began")
        await asyncio.to_thread(_store_status, app_store, spec.interview_id, "interrupted", STOPPED_REASON)
    finally:
        app_store.dispose()


def emit_event(event: str, **fields: Any) -> None:
    """One JSON line on stdout: the process protocol with the worker manager.

    The manager may be gone (the web app restarted and adopts agents by heartbeat instead): the
    interview goes on, and stdout goes to /dev/null so that the exit flush cannot fail either.
    """
    try:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        sys.stdout = open(os.devnull, "w", encoding="utf-8")


def run_subprocess_mode() -> int:
    """`python agent_worker.py`: ready line, job spec from stdin, one interview, exit 0 (2 on a bad spec)."""
    security.install_log_redaction()
    vad = load_vad()
    emit_event("ready", pid=os.getpid())
    raw = sys.stdin.buffer.read()
    try:
        spec = parse_job_spec(raw)
    except JobSpecError as error:
        sys.stderr.write(f"agent_worker: invalid job spec: {error}\n")
        sys.stderr.flush()
        return 2
    log_context = configure_interview_logging(spec)
    try:
        asyncio.run(run_subprocess_job(spec, vad, log_context))
    except Exception:
        log.exception("the interview process failed")
        store_fallback_failure(spec)
    return 0


def store_fallback_failure(job: InterviewJob) -> None:
    """Last resort after a crash: mark the interview failed so the candidate is not left waiting."""
    try:
        app_store = store.Store(job.database_url.get_secret_value())
        try:
            _store_status(
                app_store,
                job.interview_id,
                "failed",
                "The interviewer stopped unexpectedly. Please try again.",
            )
        finally:
            app_store.dispose()
    except Exception:
        log.exception("could not mark the interview failed")


# --- Dispatch mode ---------------------------------------------------------------------------------------


def prewarm(proc: JobProcess) -> None:
    """Runs once in each job process before it takes a job: redaction on, Silero loaded."""
    security.install_log_redaction()
    proc.userdata["vad"] = load_vad()


def interview_id_from_metadata(metadata: str) -> str:
    """The interview id in a dispatch's metadata, `{"interview_id": "..."}`; ValueError otherwise."""
    try:
        interview_id = json.loads(metadata or "{}").get("interview_id")
    except (ValueError, AttributeError):
        raise ValueError("the job metadata is not a JSON object") from None
    if not isinstance(interview_id, str) or not interview_id:
        raise ValueError("the job metadata has no interview_id")
    return interview_id


PROVIDER_KEY_FIELDS = {"openai": "openai_api_key", "deepgram": "deepgram_api_key"}
PROVIDER_SETTING_FIELDS = (
    "llm_base_url",
    "llm_model",
    "stt_base_url",
    "stt_model",
    "tts_base_url",
    "tts_model",
    "tts_voice",
)


def load_provider_settings(app_store: store.Store, vault: KeyVault, user_id: int) -> ProviderSettings:
    """Decrypt the user's stored keys and settings; KeyUnreadable when one cannot be read."""
    with app_store.session() as db:
        rows = store.list_provider_keys(db, user_id)
        values = {name: vault.decrypt(user_id, row.ciphertext) for name, row in rows.items()}
    fields: dict[str, Any] = {
        field: values[name] for name, field in PROVIDER_KEY_FIELDS.items() if name in values
    }
    fields |= {name: values[name] for name in PROVIDER_SETTING_FIELDS if name in values}
    return ProviderSettings(**fields)


async def dispatch_entrypoint(ctx: JobContext) -> None:
    """Dispatch mode: one job = one interview, identified by the job metadata, run like subprocess mode."""
    settings = Settings()
    interview_id = interview_id_from_metadata(ctx.job.metadata)
    app_store = store.Store(settings.sqlalchemy_url)
    try:
        interview = await asyncio.to_thread(load_interview, app_store, interview_id)
        job = InterviewJob(
            interview_id=interview_id,
            database_url=SecretStr(settings.sqlalchemy_url),
            log_dir=os.environ.get("LOG_DIR", ""),
        )
        log_context = configure_interview_logging(job)
        try:
            providers = await asyncio.to_thread(
                load_provider_settings, app_store, KeyVault(settings.encryption_keys), interview.user_id
            )
        except (KeyUnreadable, ValueError):
            log.exception("the user's provider keys could not be read")
            reason = "Your stored provider keys could not be read. Enter them again in Settings."
            await asyncio.to_thread(_store_status, app_store, interview_id, "failed", reason)
            return
        job = job.model_copy(update={"providers": providers})
        await ctx.connect()
        await run_interview(
            job, interview, app_store, ctx.room, ctx.proc.userdata["vad"], log_context=log_context
        )
    except InterviewUnavailable as unavailable:
        log.error("nothing to run: %s", unavailable)
    finally:
        app_store.dispose()
        ctx.shutdown(reason="interview finished")


def build_dispatch_server() -> AgentServer:
    """The dispatch worker: explicit agent name, Silero prewarmed in each job process."""
    server = AgentServer(setup_fnc=prewarm)
    server.rtc_session(dispatch_entrypoint, agent_name=AGENT_NAME)
    return server


def main(argv: list[str] | None = None) -> int:
    """Subprocess mode without arguments; any LiveKit CLI command (`start`) runs dispatch mode."""
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments:
        return run_subprocess_mode()
    security.install_log_redaction()
    cli.run_app(build_dispatch_server())
    return 0


if __name__ == "__main__":
    sys.exit(main())
