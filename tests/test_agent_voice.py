"""The interviewer's voice pipeline without a room: AgentSession with a paced microphone and a
collecting speaker, real Silero VAD, the deepgram plugin against the fake Deepgram WebSocket, and the
openai LLM and TTS plugins against the fake OpenAI server. Speech is espeak-ng (tests/speech.py).

Real-time audio: utterances are kept short.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import AgentSession, io, utils
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

import agent_worker
import fsm
import store
from conversation_cache import InterviewSetup, build_context
from tests import speech
from tests.fakes import DEFAULT_DEEPGRAM_KEY, DEFAULT_OPENAI_KEY, FakeDeepgram, FakeOpenAI, Utterance
from tests.fakes.fake_openai import CHAT_PATH, TRANSCRIPTIONS_PATH

pytestmark = pytest.mark.anyio

FRAME_S = 0.02
WAIT_S = 20.0
GREETING = "Hi Casey, ready?"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Microphone(io.AudioInput):
    """A live microphone: a 20 ms frame every 20 ms of wall time, silence unless speech is queued."""

    def __init__(self, sample_rate: int = speech.SAMPLE_RATE) -> None:
        super().__init__(label="test-microphone")
        self._sample_rate = sample_rate
        self._frame_samples = int(sample_rate * FRAME_S)
        self._queue: list[tuple[np.ndarray, asyncio.Future[float]]] = []
        self._position = 0
        self._next_frame_at: float | None = None

    def say(self, samples: np.ndarray) -> asyncio.Future[float]:
        """Queue speech; the future gets the perf_counter time its last frame was delivered."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((samples, done))
        return done

    async def __anext__(self) -> rtc.AudioFrame:
        now = time.perf_counter()
        self._next_frame_at = now if self._next_frame_at is None else self._next_frame_at
        if self._next_frame_at > now:
            await asyncio.sleep(self._next_frame_at - now)
        self._next_frame_at += FRAME_S
        frame = np.zeros(self._frame_samples, dtype=np.int16)
        if self._queue:
            samples, done = self._queue[0]
            chunk = samples[self._position : self._position + self._frame_samples]
            frame[: len(chunk)] = chunk
            self._position += self._frame_samples
            if self._position >= len(samples):
                self._queue.pop(0)
                self._position = 0
                done.set_result(time.perf_counter())
        return rtc.AudioFrame(
            data=frame.tobytes(),
            sample_rate=self._sample_rate,
            num_channels=1,
            samples_per_channel=self._frame_samples,
        )


class Speaker(io.AudioOutput):
    """Plays what the agent says in real time (no device) and notes when each utterance starts."""

    def __init__(self) -> None:
        super().__init__(
            label="test-speaker", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=None
        )
        self.first_frames: list[float] = []  # perf_counter of each utterance's first frame
        self._started = asyncio.Event()
        self._received_s: float | None = None  # audio of the utterance still arriving
        self._playing_s: float | None = None  # length of the flushed utterance still playing
        self._playout: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._received_s is None:
            self._received_s = 0.0
            self.first_frames.append(time.perf_counter())
            self._started.set()
            self.on_playback_started(created_at=time.time())
        self._received_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._received_s is None:
            return
        length, self._received_s, self._playing_s = self._received_s, None, self._received_s

        async def play() -> None:
            await asyncio.sleep(max(0.0, self.first_frames[-1] + length - time.perf_counter()))
            self._playing_s = None
            self.on_playback_finished(playback_position=length, interrupted=False)

        self._playout = asyncio.create_task(play())

    def clear_buffer(self) -> None:
        length = self._received_s if self._received_s is not None else self._playing_s
        if length is None:
            return
        if self._playout is not None:
            self._playout.cancel()
        self._received_s = self._playing_s = None
        played = min(time.perf_counter() - self.first_frames[-1], length)
        self.on_playback_finished(playback_position=played, interrupted=True)

    async def utterance_started(self, count: int) -> float:
        """Wait until the agent's `count`-th utterance starts playing; its perf_counter start time."""

        async def enough() -> None:
            while len(self.first_frames) < count:
                self._started.clear()
                await self._started.wait()

        await asyncio.wait_for(enough(), WAIT_S)
        return self.first_frames[count - 1]


class Messages:
    """The session's committed messages, with the perf_counter time each was added."""

    def __init__(self, session: AgentSession) -> None:
        self.items: list[tuple[float, str, str]] = []
        self._added = asyncio.Event()
        session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: Any) -> None:
        role = getattr(event.item, "role", None)
        if role in ("user", "assistant"):
            self.items.append((time.perf_counter(), role, event.item.text_content or ""))
            self._added.set()

    def of(self, role: str) -> list[tuple[float, str]]:
        return [(at, text) for at, item_role, text in self.items if item_role == role]

    async def wait_for(self, role: str, count: int) -> None:
        async def enough() -> None:
            while len(self.of(role)) < count:
                self._added.clear()
                await self._added.wait()

        await asyncio.wait_for(enough(), WAIT_S)


@dataclass
class VoiceInterview:
    controller: agent_worker.InterviewController
    session: AgentSession
    microphone: Microphone
    speaker: Speaker
    messages: Messages
    deepgram: FakeDeepgram
    openai: FakeOpenAI
    app_store: store.Store

    def turns(self) -> list[store.TranscriptTurn]:
        with self.app_store.session() as db:
            return store.list_turns(db, self.controller.interview.id)

    async def greeted(self) -> None:
        """Wait until the greeting has been played and the agent listens."""
        await self.messages.wait_for("assistant", 1)
        if self.session.agent_state != "listening":
            listening = asyncio.Event()
            self.session.on(
                "agent_state_changed", lambda e: listening.set() if e.new_state == "listening" else None
            )
            await asyncio.wait_for(listening.wait(), WAIT_S)


def create_interview(app_store: store.Store) -> str:
    setup = InterviewSetup("Casey", "Backend engineer", "mid", "Acme", "behavioral", "short", "en")
    with app_store.session() as db:
        user = store.get_or_create_user(db, "https://issuer.test", "casey", "casey@example.test", "Casey")
        return store.create_interview_unless_active(
            db,
            user_id=user.id,
            interview_id=store.new_interview_id(),
            status="starting",
            room_name="mf-" + secrets.token_hex(10),
            track="behavioral",
            length="short",
            role=setup.role,
            level=setup.level,
            plan=fsm.build_plan("behavioral", "short").to_dict(),
            context=build_context(setup),
        ).id


@asynccontextmanager
async def voice_interview(
    tmp_path, transcripts: list[Any], replies: list[str], *, whisper: bool = False
) -> AsyncIterator[VoiceInterview]:
    """The production session (`build_session`) on fake providers, started by the real controller.

    The transcripts come from the fake Deepgram, or with `whisper` from the fake OpenAI's Whisper endpoint.
    """
    app_store = store.Store(f"sqlite:///{tmp_path / 'agent.db'}")
    app_store.upgrade()
    quiet = agent_worker.Timings(verifier_interval_s=3600, heartbeat_interval_s=3600)
    async with (
        FakeDeepgram(script=[] if whisper else transcripts) as deepgram,
        FakeOpenAI(chat_script=[GREETING, *replies], transcripts=transcripts if whisper else []) as openai,
    ):
        async with utils.http_context.open():
            providers = agent_worker.ProviderSettings(
                openai_api_key=DEFAULT_OPENAI_KEY,
                deepgram_api_key=DEFAULT_DEEPGRAM_KEY,
                deepgram_base_url=deepgram.listen_url,
                llm_base_url=openai.base_url,
                stt_base_url=openai.base_url if whisper else "",
                tts_base_url=openai.base_url,
            )
            session = agent_worker.build_session(providers, "en", agent_worker.load_vad())
            microphone, speaker = Microphone(), Speaker()
            # As RoomIO does: the spoken text follows the audio, so an interruption keeps what was heard.
            synchronizer = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
            session.input.audio = microphone
            session.output.audio, session.output.transcription = (
                synchronizer.audio_output,
                synchronizer.text_output,
            )
            messages = Messages(session)
            controller = agent_worker.InterviewController(
                agent_worker.load_interview(app_store, create_interview(app_store)), app_store, timings=quiet
            )
            interview = VoiceInterview(
                controller, session, microphone, speaker, messages, deepgram, openai, app_store
            )
            try:
                await controller.start(session)
                await interview.greeted()
                yield interview
            finally:
                await asyncio.wait_for(controller.end("interrupted", reason="test over"), WAIT_S)
                app_store.dispose()


async def test_a_spoken_answer_becomes_a_transcript_turn_with_word_timings_and_a_spoken_reply(tmp_path):
    # A person takes a moment before answering; the gap keeps the turns apart on the clock.
    answer = speech.concatenate(speech.silence(0.5), speech.synthesize("Um, I rebuilt our billing pipeline."))
    async with voice_interview(
        tmp_path, ["Um, I rebuilt our billing pipeline."], ["Tell me more."]
    ) as interview:
        spoken_until = await interview.microphone.say(answer)
        await interview.messages.wait_for("assistant", 2)
        await interview.controller.flush()

        assert [text for _, text in interview.messages.of("user")] == ["Um, I rebuilt our billing pipeline."]
        reply_frames_at = interview.speaker.first_frames[1:]
        assert reply_frames_at and reply_frames_at[0] > spoken_until  # the reply was voiced after the answer
        turns = interview.turns()
        assert [(t.speaker, t.stage, t.text) for t in turns] == [
            ("interviewer", "greeting", GREETING),
            ("candidate", "greeting", "Um, I rebuilt our billing pipeline."),
            ("interviewer", "greeting", "Tell me more."),
        ]
        candidate = turns[1]
        assert [(w["word"], w["punctuated_word"]) for w in candidate.words] == [
            ("um", "Um,"),
            ("i", "I"),
            ("rebuilt", "rebuilt"),
            ("our", "our"),
            ("billing", "billing"),
            ("pipeline", "pipeline."),
        ]
        starts = [w["start"] for w in candidate.words]
        assert starts == sorted(starts) and all(w["start"] < w["end"] for w in candidate.words)
        assert all(w["confidence"] == pytest.approx(0.99) for w in candidate.words)
        # Word times and turn times share the interview's clock.
        assert turns[0].end_s <= candidate.words[0]["start"] < candidate.words[-1]["end"] <= turns[2].start_s
        assert candidate.start_s < candidate.end_s <= turns[2].start_s
        query = interview.deepgram.sessions[0].query
        assert (query["filler_words"], query["model"], query["language"]) == ("true", "nova-3", "en-US")


async def test_a_thinking_pause_inside_an_answer_gets_no_reply(tmp_path):
    before = speech.synthesize("So the main thing I did was um")
    after = speech.synthesize("rebuild the billing pipeline")
    pause_s = 1.5
    # The fake Deepgram cuts segments at 0.25 s of quiet: one segment per part, so it finalises the
    # first part (speech_final, as real Deepgram does after its endpointing) inside the pause.
    assert len(speech.voiced_spans(before)) == len(speech.voiced_spans(after)) == 1
    transcripts = ["So the main thing I did was, um,", Utterance("rebuild the billing pipeline.")]
    async with voice_interview(tmp_path, transcripts, ["Interesting. What made it hard?"]) as interview:
        first_part_done = interview.microphone.say(before)
        interview.microphone.say(speech.silence(pause_s))
        answer_done = interview.microphone.say(after)
        paused_at = await first_part_done
        resumed_at = paused_at + pause_s
        await answer_done
        await interview.messages.wait_for("assistant", 2)
        await interview.controller.flush()

        first_results = [m for m in interview.deepgram.sessions[0].sent_of_type("Results") if m["is_final"]]
        assert [m["speech_final"] for m in first_results] == [True, True]  # Deepgram did end the first part
        assert not [at for at, _, _ in interview.messages.items if paused_at <= at <= resumed_at]
        assert all(at > resumed_at for at in interview.speaker.first_frames[1:])
        full_answer = "So the main thing I did was, um, rebuild the billing pipeline."
        assert [text for _, text in interview.messages.of("user")] == [full_answer]
        answered = interview.openai.requests.last(CHAT_PATH).body["messages"]
        assert answered[-1] == {"role": "user", "content": full_answer}

        candidate = [t for t in interview.turns() if t.speaker == "candidate"]
        assert [t.text for t in candidate] == [full_answer]
        words = {w["word"]: w for w in candidate[0].words}
        assert "um" in words
        # The pause stays visible in the word timings, for the pause analytics.
        assert words["rebuild"]["start"] - words["um"]["end"] == pytest.approx(pause_s, abs=0.1)


async def test_speech_the_candidate_talks_over_is_stored_as_far_as_it_was_heard(tmp_path):
    long_reply = (
        "That sounds like a big project. I would love to hear how you planned the migration, which "
        "parts you owned yourself, and how you made sure that nothing broke for your customers."
    )
    transcripts = ["I rebuilt our billing pipeline.", "Sorry, can I add something?"]
    async with voice_interview(tmp_path, transcripts, [long_reply, "Of course, go ahead."]) as interview:
        interview.microphone.say(
            speech.concatenate(speech.silence(0.5), speech.synthesize("I rebuilt our billing pipeline."))
        )
        await interview.speaker.utterance_started(2)
        # The candidate cuts in once the session's echo-cancellation warm-up (3 s) is over.
        interview.microphone.say(
            speech.concatenate(speech.silence(3.5), speech.synthesize("Sorry, can I add something?"))
        )
        await interview.messages.wait_for("assistant", 3)
        await interview.controller.flush()

        turns = [(t.speaker, t.text, t.interrupted) for t in interview.turns()]
        assert [(speaker, interrupted) for speaker, _, interrupted in turns] == [
            ("interviewer", False),
            ("candidate", False),
            ("interviewer", True),
            ("candidate", False),
            ("interviewer", False),
        ]
        heard = turns[2][1]
        assert 0 < len(heard) < len(long_reply) and long_reply.startswith(heard)
        assert turns[3][1] == "Sorry, can I add something?"


async def test_an_openai_compatible_whisper_endpoint_can_replace_deepgram(tmp_path):
    answer = speech.concatenate(speech.silence(0.5), speech.synthesize("I rebuilt our billing pipeline."))
    async with voice_interview(
        tmp_path, ["I rebuilt our billing pipeline."], ["Tell me more."], whisper=True
    ) as interview:
        await interview.microphone.say(answer)
        await interview.messages.wait_for("assistant", 2)
        await interview.controller.flush()

        assert [(t.speaker, t.text) for t in interview.turns()] == [
            ("interviewer", GREETING),
            ("candidate", "I rebuilt our billing pipeline."),
            ("interviewer", "Tell me more."),
        ]
        upload = interview.openai.requests.last(TRANSCRIPTIONS_PATH).body
        assert (upload["model"], upload["language"]) == ("whisper-1", "en")
        assert upload["file"]["size"] > 0
        assert interview.deepgram.sessions == []
