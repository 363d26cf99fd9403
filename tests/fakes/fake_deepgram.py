"""A local Deepgram: the live-transcription WebSocket `/v1/listen` and the REST `/v1/projects` call.

The WebSocket speaks the protocol livekit-plugins-deepgram 1.8.9 uses (see the reference, section 4):
the client streams linear16 audio; the fake finds speech segments by RMS energy and, like real
Deepgram, decides on its own when a segment ends (after `end_silence_s` of quiet). Each segment is
transcribed with the next scripted utterance; word timings are spread over the segment's audio time.

    with FakeDeepgram(script=["Hi, my name is Alice.", Utterance("I think um", end_of_speech=False)]) as fake:
        stt = deepgram.STT(base_url=fake.listen_url, api_key=DEFAULT_DEEPGRAM_KEY)
"""

from __future__ import annotations

import asyncio
import json
import math
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from ._server import FakeServer, RecordedRequest, bearer_token, header_dict

DEFAULT_DEEPGRAM_KEY = "fake-deepgram-key"
LISTEN_PATH = "/v1/listen"
PROJECTS_PATH = "/v1/projects"

FILLER_WORDS = frozenset({"um", "uh", "uhm", "erm", "hmm", "mm"})
INTERIM_WORDS_PER_SECOND = 2.5  # how fast interim transcripts reveal the scripted words (150 wpm)
WORD_CONFIDENCE = 0.99
ANALYSIS_WINDOW_S = 0.01


@dataclass(frozen=True)
class Utterance:
    """The transcript of one detected speech segment.

    `end_of_speech=False` sends the final Results with `speech_final: false`, as Deepgram does when it
    finalises text while the speaker has not finished (a thinking pause mid-answer).
    """

    text: str
    end_of_speech: bool = True


@dataclass
class ListenSession:
    """What one `/v1/listen` WebSocket connection received and sent (thread-safe snapshots)."""

    query: dict[str, str]
    request_id: str
    _audio_bytes: int = field(default=0, init=False)
    _control_messages: list[str] = field(default_factory=list, init=False)
    _sent: list[dict[str, Any]] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def add_audio(self, size: int) -> None:
        with self._lock:
            self._audio_bytes += size

    def add_control(self, message_type: str) -> None:
        with self._lock:
            self._control_messages.append(message_type)

    def add_sent(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._sent.append(message)

    @property
    def audio_bytes(self) -> int:
        with self._lock:
            return self._audio_bytes

    @property
    def control_messages(self) -> list[str]:
        """The `type` of every JSON message the client sent (KeepAlive, Finalize, CloseStream)."""
        with self._lock:
            return list(self._control_messages)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every message the fake sent on this connection, in order."""
        with self._lock:
            return list(self._sent)

    def sent_of_type(self, message_type: str) -> list[dict[str, Any]]:
        return [message for message in self.sent if message.get("type") == message_type]


@dataclass(frozen=True)
class SpeechStarted:
    start_s: float


@dataclass(frozen=True)
class SpeechContinues:
    """Speech is still going on and an interim result is due."""

    start_s: float
    now_s: float


@dataclass(frozen=True)
class SegmentEnded:
    start_s: float
    end_s: float


SpeechEvent = SpeechStarted | SpeechContinues | SegmentEnded


class SpeechDetector:
    """RMS-energy endpointing over a linear16 stream, timed by the audio itself (not the wall clock)."""

    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int,
        rms_threshold: float,
        end_silence_s: float,
        interim_interval_s: float,
    ) -> None:
        samples_per_window = max(1, int(sample_rate * ANALYSIS_WINDOW_S))
        self._window_s = samples_per_window / sample_rate
        self._window_bytes = samples_per_window * channels * 2
        self._rms_threshold = rms_threshold
        self._end_silence_windows = max(1, math.ceil(end_silence_s / self._window_s - 1e-9))
        self._interim_windows = max(1, math.ceil(interim_interval_s / self._window_s - 1e-9))
        self._pending = bytearray()
        self._windows_seen = 0
        self._speech_start: int | None = None
        self._last_voiced_end = 0
        self._last_interim = 0

    @property
    def audio_s(self) -> float:
        return self._windows_seen * self._window_s

    def feed(self, pcm: bytes) -> list[SpeechEvent]:
        """Analyse newly received audio; return what happened in it, in order."""
        self._pending += pcm
        events: list[SpeechEvent] = []
        while len(self._pending) >= self._window_bytes:
            window = np.frombuffer(bytes(self._pending[: self._window_bytes]), dtype="<i2").astype(np.float64)
            del self._pending[: self._window_bytes]
            start, end = self._windows_seen, self._windows_seen + 1
            self._windows_seen = end
            if math.sqrt(float(np.mean(window**2))) >= self._rms_threshold:
                self._last_voiced_end = end
                if self._speech_start is None:
                    self._speech_start = start
                    self._last_interim = end
                    events.append(SpeechStarted(start_s=start * self._window_s))
                elif end - self._last_interim >= self._interim_windows:
                    self._last_interim = end
                    events.append(
                        SpeechContinues(
                            start_s=self._speech_start * self._window_s, now_s=end * self._window_s
                        )
                    )
            elif self._speech_start is not None and end - self._last_voiced_end >= self._end_silence_windows:
                events.append(self.end_segment())
        return events

    def end_segment(self) -> SegmentEnded | None:
        """Close the current segment now (Finalize / CloseStream); None when nobody is speaking."""
        if self._speech_start is None:
            return None
        segment = SegmentEnded(
            start_s=self._speech_start * self._window_s, end_s=self._last_voiced_end * self._window_s
        )
        self._speech_start = None
        return segment


@dataclass(frozen=True)
class _TranscriptOptions:
    punctuate: bool
    filler_words: bool

    @classmethod
    def from_query(cls, query: dict[str, str]) -> _TranscriptOptions:
        return cls(punctuate=_flag(query, "punctuate"), filler_words=_flag(query, "filler_words"))


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "false").lower() == "true"


def _bare_word(token: str) -> str:
    return token.strip(string.punctuation).lower()


def spoken_tokens(text: str, *, filler_words: bool) -> list[str]:
    """The words of `text` as Deepgram would return them; fillers are dropped unless requested."""
    tokens = [token for token in text.split() if _bare_word(token)]
    if filler_words:
        return tokens
    return [token for token in tokens if _bare_word(token) not in FILLER_WORDS]


def timed_words(tokens: list[str], start_s: float, end_s: float) -> list[dict[str, Any]]:
    """Deepgram word objects whose timings share [start_s, end_s] in proportion to word length."""
    weights = [len(_bare_word(token)) for token in tokens]
    total = sum(weights) or 1
    span = max(end_s - start_s, 0.0)
    words: list[dict[str, Any]] = []
    cursor = start_s
    for token, weight in zip(tokens, weights, strict=True):
        word_end = cursor + span * weight / total
        words.append(
            {
                "word": _bare_word(token),
                "punctuated_word": token,
                "start": round(cursor, 3),
                "end": round(word_end, 3),
                "confidence": WORD_CONFIDENCE,
            }
        )
        cursor = word_end
    return words


def results_message(
    tokens: list[str],
    *,
    start_s: float,
    end_s: float,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    request_id: str,
    punctuate: bool,
) -> dict[str, Any]:
    """A live `Results` message for one channel."""
    words = timed_words(tokens, start_s, end_s)
    if not punctuate:
        for word in words:
            del word["punctuated_word"]
    transcript = " ".join(tokens) if punctuate else " ".join(word["word"] for word in words)
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(end_s - start_s, 3),
        "start": round(start_s, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {"transcript": transcript, "confidence": WORD_CONFIDENCE if tokens else 0.0, "words": words}
            ]
        },
        "metadata": {
            "request_id": request_id,
            "model_info": {"name": "fake-nova", "version": "0", "arch": "fake"},
            "model_uuid": "00000000-0000-0000-0000-000000000000",
        },
    }


class _Outbox:
    """Sends a connection's messages in order, each no earlier than its due time."""

    def __init__(self, ws: web.WebSocketResponse, session: ListenSession) -> None:
        self._ws = ws
        self._session = session
        self._queue: asyncio.Queue[tuple[float, dict[str, Any]] | None] = asyncio.Queue()

    def put(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        self._queue.put_nowait((time.monotonic() + delay_s, message))

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def run(self) -> None:
        while (item := await self._queue.get()) is not None:
            due, message = item
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self._ws.closed:
                continue
            try:
                await self._ws.send_str(json.dumps(message))
            except ConnectionError:
                continue
            self._session.add_sent(message)


class _ListenConnection:
    """Turns one connection's audio and control messages into Deepgram's replies."""

    def __init__(self, *, fake: FakeDeepgram, session: ListenSession, outbox: _Outbox) -> None:
        query = session.query
        self._fake = fake
        self._session = session
        self._outbox = outbox
        self._options = _TranscriptOptions.from_query(query)
        self._vad_events = _flag(query, "vad_events")
        self._interim_results = _flag(query, "interim_results")
        self._detector = SpeechDetector(
            sample_rate=int(query.get("sample_rate", "16000")),
            channels=int(query.get("channels", "1")),
            rms_threshold=fake.rms_threshold,
            end_silence_s=fake.end_silence_s,
            interim_interval_s=fake.interim_interval_s,
        )

    def on_audio(self, pcm: bytes) -> None:
        self._session.add_audio(len(pcm))
        for event in self._detector.feed(pcm):
            if isinstance(event, SpeechStarted):
                if self._vad_events:
                    self._outbox.put({"type": "SpeechStarted", "channel": [0], "timestamp": event.start_s})
            elif isinstance(event, SpeechContinues):
                if self._interim_results:
                    self._emit_results(event.start_s, event.now_s, final=False)
            else:
                self._emit_results(event.start_s, event.end_s, final=True)

    def on_control(self, text: str) -> bool:
        """Handle KeepAlive / Finalize / CloseStream; False once the client has closed the stream."""
        message_type = _control_type(text)
        self._session.add_control(message_type)
        if message_type in ("Finalize", "CloseStream") and (segment := self._detector.end_segment()):
            from_finalize = message_type == "Finalize"
            self._emit_results(segment.start_s, segment.end_s, final=True, from_finalize=from_finalize)
        if message_type == "CloseStream":
            self._outbox.put(_metadata_message(self._session.request_id, self._detector.audio_s))
            return False
        return True

    def _emit_results(
        self, start_s: float, end_s: float, *, final: bool, from_finalize: bool = False
    ) -> None:
        utterance = self._fake.next_utterance(consume=final)
        tokens = spoken_tokens(utterance.text, filler_words=self._options.filler_words)
        if not final:
            if not tokens:
                return
            tokens = tokens[: max(1, math.ceil((end_s - start_s) * INTERIM_WORDS_PER_SECOND))]
        message = results_message(
            tokens,
            start_s=start_s,
            end_s=end_s,
            is_final=final,
            speech_final=final and utterance.end_of_speech and not from_finalize,
            from_finalize=from_finalize,
            request_id=self._session.request_id,
            punctuate=self._options.punctuate,
        )
        self._outbox.put(message, delay_s=self._fake.final_latency_s if final else 0.0)


class FakeDeepgram(FakeServer):
    """Deepgram stand-in. `script` holds one transcript per detected speech segment (str or Utterance);
    when it runs out, segments are transcribed as empty text, as Deepgram does for noise."""

    def __init__(
        self,
        *,
        accepted_keys: Iterable[str] = (DEFAULT_DEEPGRAM_KEY,),
        script: Iterable[Utterance | str] = (),
        quota_exceeded: bool = False,
        end_silence_s: float = 0.25,
        rms_threshold: float = 300.0,
        interim_interval_s: float = 0.3,
        final_latency_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.accepted_keys = set(accepted_keys)
        self.script: deque[Utterance | str] = deque(script)
        self.quota_exceeded = quota_exceeded
        self.end_silence_s = end_silence_s
        self.rms_threshold = rms_threshold
        self.interim_interval_s = interim_interval_s
        self.final_latency_s = final_latency_s
        self._sessions: list[ListenSession] = []
        self._sessions_lock = threading.Lock()
        self._open_sockets: set[web.WebSocketResponse] = set()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, the REST API root (for `/projects`)."""
        return f"{self.origin}/v1"

    @property
    def listen_url(self) -> str:
        """The `base_url` to give `deepgram.STT` (the plugin rewrites http to ws)."""
        return f"{self.origin}{LISTEN_PATH}"

    @property
    def sessions(self) -> list[ListenSession]:
        """Every `/v1/listen` connection accepted so far, oldest first."""
        with self._sessions_lock:
            return list(self._sessions)

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_and_authorize])
        app.router.add_get(LISTEN_PATH, self._listen)
        app.router.add_get(PROJECTS_PATH, self._projects)
        app.on_shutdown.append(self._close_open_sockets)
        return app

    @web.middleware
    async def _record_and_authorize(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        self.requests.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=header_dict(request),
                body=body.decode("utf-8", errors="replace") or None,
            )
        )
        if bearer_token(request, scheme="Token") not in self.accepted_keys:
            return _error(401, "INVALID_AUTH", "Invalid credentials.")
        if self.quota_exceeded:
            return _error(429, "TOO_MANY_REQUESTS", "Too many requests. Please try again later.")
        return await handler(request)

    async def _projects(self, request: web.Request) -> web.Response:
        project = {"project_id": "3f2a9c1e-0000-4000-8000-000000000001", "name": "MockFlow fake project"}
        return web.json_response({"projects": [project]})

    def next_utterance(self, *, consume: bool) -> Utterance:
        """The script entry for the current segment: peeked for interim results, taken for the final."""
        try:
            entry = self.script.popleft() if consume else self.script[0]
        except IndexError:
            return Utterance(text="")
        return Utterance(text=entry) if isinstance(entry, str) else entry

    async def _listen(self, request: web.Request) -> web.WebSocketResponse:
        session = ListenSession(query=dict(request.query), request_id=str(uuid.uuid4()))
        ws = web.WebSocketResponse()
        ws.headers["dg-request-id"] = session.request_id
        await ws.prepare(request)
        with self._sessions_lock:
            self._sessions.append(session)
        self._open_sockets.add(ws)
        outbox = _Outbox(ws, session)
        sender = asyncio.create_task(outbox.run())
        connection = _ListenConnection(fake=self, session=session, outbox=outbox)
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    connection.on_audio(message.data)
                elif message.type == WSMsgType.TEXT and not connection.on_control(message.data):
                    break
        finally:
            outbox.close()
            await sender
            await ws.close()
            self._open_sockets.discard(ws)
        return ws

    async def _close_open_sockets(self, app: web.Application) -> None:
        for ws in list(self._open_sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _control_type(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        return ""
    return str(payload.get("type", "")) if isinstance(payload, dict) else ""


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}, status=status
    )


def _metadata_message(request_id: str, duration_s: float) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "duration": round(duration_s, 3),
        "channels": 1,
    }
