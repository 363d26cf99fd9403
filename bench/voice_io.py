"""The simulated candidate's voice and ears: espeak-ng speech, a paced microphone, a playout sink.

`SpeechSynthesizer` turns text into 24 kHz mono int16 samples with espeak-ng and sox (Debian
packages). `PacedMicrophone` is an `io.AudioInput` that behaves like a live microphone: one frame
(20 ms unless told otherwise) every frame's length of wall time, digital silence when nothing is
queued, and it stamps the wall time (perf_counter) at which chosen samples went out. `PlayoutSink` is an `io.AudioOutput` that keeps
the agent's audio segments with the time of their first frame and plays them out in real time.
The sink holds the agent to RoomIO's 200 ms output queue and counts underruns: agent frames that
arrive after everything queued before them has played (an audible gap). The microphone notes how
late the agent's event loop took each frame; in a room that input is an unbounded queue
(rtc.AudioStream), so lateness there delays the agent but loses no audio.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import io

SAMPLE_RATE = 24_000
FRAME_MS = 20
VOICED_RMS = 300.0  # the fake Deepgram's default speech threshold, in int16 units
ANALYSIS_WINDOW_S = 0.01
# RoomIO publishes the agent's audio through rtc.AudioSource(queue_size_ms=200): the agent keeps up
# to 200 ms queued ahead of the playout, and the candidate hears a gap when that queue runs dry.
OUTPUT_QUEUE_S = 0.2
ESPEAK_VOICE = "en-us"
ESPEAK_WORDS_PER_MINUTE = 165
# espeak pauses 160-370 ms at commas and sentence ends. Those would be heard as pauses by the fake
# STT and split a part into two segments, so the spoken text drops its punctuation (the scripted
# transcript keeps it); the only pauses are the script's own.
_PAUSING_PUNCTUATION = re.compile(r"[^\w\s']")


def voiced_span(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[int, int, float]:
    """(first voiced sample, one past the last voiced sample, longest inner gap in seconds) by RMS."""
    window = max(1, int(ANALYSIS_WINDOW_S * sample_rate))
    count = len(samples) // window
    frames = samples[: count * window].astype(np.float64).reshape(count, window)
    voiced = np.sqrt(np.mean(frames**2, axis=1)) >= VOICED_RMS
    indices = np.flatnonzero(voiced)
    if indices.size == 0:
        raise ValueError("no speech in the synthesized audio")
    gaps = np.diff(indices) - 1
    longest_gap = float(gaps.max()) * ANALYSIS_WINDOW_S if gaps.size else 0.0
    return int(indices[0] * window), int((indices[-1] + 1) * window), longest_gap


class SpeechSynthesizer:
    """espeak-ng text to speech at 24 kHz, cached per text in memory and, with `cache_dir`, on disk
    (so that many simulated candidates in separate processes synthesize each text once)."""

    def __init__(self, voice: str = ESPEAK_VOICE, words_per_minute: int = ESPEAK_WORDS_PER_MINUTE,
                 cache_dir: Path | None = None) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.cache_dir = cache_dir
        self._cache: dict[str, np.ndarray] = {}

    def _cache_path(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{self.voice}|{self.words_per_minute}|{text}".encode()).hexdigest()[:32]
        return self.cache_dir / f"{key}.npy"

    def speak(self, text: str) -> np.ndarray:
        """Voiced samples of `text`, trimmed to the speech itself (no leading or trailing silence)."""
        if text in self._cache:
            return self._cache[text]
        cached = self._cache_path(text)
        if cached is not None and cached.exists():
            self._cache[text] = np.load(cached)
            return self._cache[text]
        self._cache[text] = self._synthesize(text)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(partial, self._cache[text])
            partial.replace(cached)
        return self._cache[text]

    def _synthesize(self, text: str) -> np.ndarray:
        spoken = " ".join(_PAUSING_PUNCTUATION.sub(" ", text).split())
        with tempfile.TemporaryDirectory(prefix="mockflow-espeak-") as temp:
            raw, resampled = Path(temp) / "raw.wav", Path(temp) / "out.wav"
            subprocess.run(
                ["espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "-w", str(raw), spoken],
                check=True, capture_output=True,
            )
            subprocess.run(
                ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)],
                check=True, capture_output=True,
            )
            with wave.open(str(resampled)) as wav:
                samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()
        start, end, _gap = voiced_span(samples)
        return samples[start:end]

    def longest_inner_gap_s(self, text: str) -> float:
        """The longest quiet stretch inside the speech of `text` (must stay below the STT's endpointing)."""
        return voiced_span(self.speak(text))[2]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.int16)


@dataclass
class QueuedUtterance:
    samples: np.ndarray
    marks: dict[int, str]
    stamps: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class PacedMicrophone(io.AudioInput):
    """A live microphone made of queued utterances: a `frame_ms` frame every `frame_ms`, silence in between."""

    def __init__(self, frame_ms: int = FRAME_MS) -> None:
        super().__init__(label="simulated-candidate")
        self.frame_s = frame_ms / 1000
        self.samples_per_frame = SAMPLE_RATE * frame_ms // 1000
        self._queue: asyncio.Queue[QueuedUtterance] = asyncio.Queue()
        self._current: QueuedUtterance | None = None
        self._position = 0
        self._deadline: float | None = None
        self._closed = False
        self.late_frames = 0
        self.max_lag_s = 0.0

    def play(self, samples: np.ndarray, marks: dict[int, str]) -> QueuedUtterance:
        """Queue `samples`; each mark (sample index -> name) is stamped with the time its frame went out."""
        utterance = QueuedUtterance(samples=samples, marks=marks)
        self._queue.put_nowait(utterance)
        return utterance

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.perf_counter()
        if self._deadline is None:
            self._deadline = now
        if self._deadline > now:
            await asyncio.sleep(self._deadline - now)
        else:
            lag = now - self._deadline
            self.max_lag_s = max(self.max_lag_s, lag)
            if lag > self.frame_s:
                self.late_frames += 1  # the agent's event loop took this frame more than a frame late
        self._deadline += self.frame_s
        sent_at = time.perf_counter()

        buffer = np.zeros(self.samples_per_frame, dtype=np.int16)
        if self._current is None and not self._queue.empty():
            self._current, self._position = self._queue.get_nowait(), 0
        if self._current is not None:
            utterance, start = self._current, self._position
            chunk = utterance.samples[start : start + self.samples_per_frame]
            buffer[: len(chunk)] = chunk
            for index, name in utterance.marks.items():
                if start <= index < start + self.samples_per_frame:
                    utterance.stamps[name] = sent_at + (index - start) / SAMPLE_RATE
            self._position += self.samples_per_frame
            if self._position >= len(utterance.samples):
                utterance.done.set()
                self._current = None
        return rtc.AudioFrame(
            data=buffer.tobytes(), sample_rate=SAMPLE_RATE, num_channels=1, samples_per_channel=self.samples_per_frame
        )


@dataclass
class AgentSegment:
    """One agent utterance as it reached the speaker."""

    first_frame_at: float
    duration_s: float = 0.0
    interrupted: bool = False


class PlayoutSink(io.AudioOutput):
    """Receives the agent's audio, notes when each segment's first frame arrived, plays it in real time."""

    def __init__(self) -> None:
        super().__init__(
            label="simulated-speaker", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=None
        )
        self.segments: list[AgentSegment] = []
        self._open: AgentSegment | None = None
        self._playout: asyncio.Task[None] | None = None
        self.frame_arrived = asyncio.Event()
        self.underruns = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        now = time.perf_counter()
        if self._open is None:
            self._open = AgentSegment(first_frame_at=now)
            self.segments.append(self._open)
            self.on_playback_started(created_at=time.time())
            self.frame_arrived.set()
        elif now > self._open.first_frame_at + self._open.duration_s:
            self.underruns += 1  # everything before this frame has played: the speaker ran dry
        segment = self._open
        segment.duration_s += frame.duration
        # Like RoomIO's rtc.AudioSource, hold at most OUTPUT_QUEUE_S of audio ahead of the playout.
        ahead = segment.first_frame_at + segment.duration_s - time.perf_counter()
        if ahead > OUTPUT_QUEUE_S:
            await asyncio.sleep(ahead - OUTPUT_QUEUE_S)

    def flush(self) -> None:
        super().flush()
        segment, self._open = self._open, None
        if segment is None:
            return

        async def play_out() -> None:
            remaining = segment.first_frame_at + segment.duration_s - time.perf_counter()
            if remaining > 0:
                await asyncio.sleep(remaining)
            self.on_playback_finished(playback_position=segment.duration_s, interrupted=False)

        self._playout = asyncio.create_task(play_out())

    def clear_buffer(self) -> None:
        if self._playout is not None and not self._playout.done():
            self._playout.cancel()
            played = self.segments[-1]
            played.interrupted = True
            self.on_playback_finished(
                playback_position=min(played.duration_s, time.perf_counter() - played.first_frame_at), interrupted=True
            )
        elif self._open is not None:
            self._open.interrupted = True
            self._open = None
            self.on_playback_finished(playback_position=0.0, interrupted=True)

    def first_segment_after(self, moment: float) -> AgentSegment | None:
        return next((segment for segment in self.segments if segment.first_frame_at >= moment), None)

    def segments_between(self, start: float, end: float) -> list[AgentSegment]:
        return [segment for segment in self.segments if start <= segment.first_frame_at < end]
