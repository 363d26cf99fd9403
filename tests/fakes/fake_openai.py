"""A local OpenAI-compatible server: models, chat completions (SSE and JSON), speech and transcriptions.

It speaks the wire format that the `openai` Python client and livekit-plugins-openai 1.8.9 expect,
answers chat requests from a script, and records every request it receives.

    with FakeOpenAI(chat_script=["Hello!", tool_call_reply("end_interview", {"reason": "done"})]) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key=DEFAULT_OPENAI_KEY)
        ...
        assert fake.requests.last(CHAT_PATH).body["messages"][-1]["content"] == "..."
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.web_request import FileField

from ._server import FakeServer, RecordedRequest, bearer_token, header_dict

DEFAULT_OPENAI_KEY = "sk-fake-openai-key"
DEFAULT_MODELS = ("gpt-4.1-mini", "gpt-4o-mini-tts", "tts-1", "whisper-1")
DEFAULT_CHAT_REPLY = "Thank you. Could you tell me a little more about that?"
DEFAULT_TRANSCRIPT = "Hello."

MODELS_PATH = "/v1/models"
CHAT_PATH = "/v1/chat/completions"
SPEECH_PATH = "/v1/audio/speech"
TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"

TTS_SAMPLE_RATE = 24_000  # livekit-plugins-openai decodes audio/pcm as s16le mono at this rate
TTS_FORMATS = ("pcm", "wav")
TTS_CHUNK_BYTES = TTS_SAMPLE_RATE * 2 // 10  # 100 ms of audio per write / SSE event
TOOL_ARGUMENT_FRAGMENT_CHARS = 8


@dataclass(frozen=True)
class TextReply:
    """An assistant message. For `response_format` json_schema requests, put the JSON text here."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class ToolCallsReply:
    """One or more (parallel) function calls instead of text."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with an OpenAI-style body, e.g. 429 insufficient_quota or 500 server_error."""

    status: int
    message: str
    type: str = "server_error"
    code: str | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.code}}


@dataclass(frozen=True)
class RawReply:
    """Bytes sent as they are, to exercise a client's handling of malformed responses."""

    body: bytes
    content_type: str = "text/event-stream"
    status: int = 200


ChatReply = TextReply | ToolCallsReply | ErrorReply | RawReply
ScriptedReply = ChatReply | str  # a plain string is a TextReply
Responder = Callable[[dict[str, Any]], ScriptedReply]

INVALID_API_KEY = ErrorReply(
    status=401, message="Incorrect API key provided", type="invalid_request_error", code="invalid_api_key"
)
INSUFFICIENT_QUOTA = ErrorReply(
    status=429,
    message="You exceeded your current quota, please check your plan and billing details.",
    type="insufficient_quota",
    code="insufficient_quota",
)


def tool_call_reply(name: str, arguments: Mapping[str, Any] | None = None) -> ToolCallsReply:
    """A reply with a single function call, the common case in scripts."""
    return ToolCallsReply(calls=(ToolCall(name=name, arguments=dict(arguments or {})),))


def synthesize_tone(duration_s: float, sample_rate: int = TTS_SAMPLE_RATE) -> bytes:
    """A deterministic stand-in voice: a 220 Hz tone with a 4 Hz syllable envelope, s16le mono."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    envelope = 0.5 * (1.0 - np.cos(2.0 * np.pi * 4.0 * t))
    samples = 8000.0 * envelope * np.sin(2.0 * np.pi * 220.0 * t)
    return samples.astype("<i2").tobytes()


def _wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def _wav_duration_s(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError):
        return 0.0


def _as_reply(reply: ScriptedReply) -> ChatReply:
    return TextReply(reply) if isinstance(reply, str) else reply


def _error_response(error: ErrorReply) -> web.Response:
    return web.json_response(error.body(), status=error.status)


def _invalid_request(message: str) -> web.Response:
    return _error_response(ErrorReply(status=400, message=message, type="invalid_request_error"))


def _sse(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def _estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    return max(1, len(json.dumps(body.get("messages", []))) // 4)


async def _decoded_body(request: web.Request) -> Any:
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            if isinstance(value, FileField):
                content = value.file.read()
                value.file.seek(0)
                fields[name] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "size": len(content),
                }
            else:
                fields[name] = value
        return fields
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


class FakeOpenAI(FakeServer):
    """OpenAI stand-in. Chat replies come from `chat_script` (first), then `responder`, then a default.

    Attributes may be changed while it runs: `chat_script` and `transcripts` are deques, so tests
    can append to them from any thread.
    """

    def __init__(
        self,
        *,
        accepted_keys: Iterable[str] = (DEFAULT_OPENAI_KEY,),
        chat_script: Iterable[ScriptedReply] = (),
        responder: Responder | None = None,
        transcripts: Iterable[str] = (),
        models: Iterable[str] = DEFAULT_MODELS,
        quota_exceeded: bool = False,
        llm_first_token_delay_s: float = 0.0,
        llm_chunk_delay_s: float = 0.0,
        tts_first_byte_delay_s: float = 0.0,
        tts_seconds_per_char: float = 0.06,
        tts_max_seconds: float = 20.0,
    ) -> None:
        super().__init__()
        self.accepted_keys = set(accepted_keys)
        self.chat_script: deque[ScriptedReply] = deque(chat_script)
        self.responder = responder
        self.transcripts: deque[str] = deque(transcripts)
        self.models = tuple(models)
        self.quota_exceeded = quota_exceeded
        self.llm_first_token_delay_s = llm_first_token_delay_s
        self.llm_chunk_delay_s = llm_chunk_delay_s
        self.tts_first_byte_delay_s = tts_first_byte_delay_s
        self.tts_seconds_per_char = tts_seconds_per_char
        self.tts_max_seconds = tts_max_seconds

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, the `base_url` for the openai client and the livekit plugin."""
        return f"{self.origin}/v1"

    def speech_duration_s(self, text: str) -> float:
        """How long the synthesized audio for `text` lasts: proportional to its length, capped."""
        return min(len(text) * self.tts_seconds_per_char, self.tts_max_seconds)

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_and_authorize])
        app.on_response_prepare.append(_add_request_id)
        app.router.add_get(MODELS_PATH, self._models)
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_post(SPEECH_PATH, self._speech)
        app.router.add_post(TRANSCRIPTIONS_PATH, self._transcriptions)
        return app

    @web.middleware
    async def _record_and_authorize(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=header_dict(request),
                body=await _decoded_body(request),
            )
        )
        if bearer_token(request) not in self.accepted_keys:
            return _error_response(INVALID_API_KEY)
        if self.quota_exceeded:
            return _error_response(INSUFFICIENT_QUOTA)
        return await handler(request)

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
            for model in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    def _next_chat_reply(self, body: dict[str, Any]) -> ChatReply:
        try:
            return _as_reply(self.chat_script.popleft())
        except IndexError:
            pass
        if self.responder is not None:
            return _as_reply(self.responder(body))
        return TextReply(DEFAULT_CHAT_REPLY)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _invalid_request("'messages' must be a non-empty array")
        reply = self._next_chat_reply(body)
        if isinstance(reply, ErrorReply):
            return _error_response(reply)
        if isinstance(reply, RawReply):
            return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)
        if body.get("stream"):
            return await self._stream_chat(request, body, reply)
        await asyncio.sleep(self.llm_first_token_delay_s)
        return web.json_response(_completion(body, reply))

    async def _stream_chat(
        self, request: web.Request, body: dict[str, Any], reply: TextReply | ToolCallsReply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        await asyncio.sleep(self.llm_first_token_delay_s)
        chunk = _ChunkFactory(model=body.get("model", DEFAULT_MODELS[0]))
        deltas = _text_deltas(reply.text) if isinstance(reply, TextReply) else _tool_call_deltas(reply)
        for index, delta in enumerate(deltas):
            if index:
                await asyncio.sleep(self.llm_chunk_delay_s)
            await response.write(_sse(chunk.delta(delta)))
        finish_reason = "stop" if isinstance(reply, TextReply) else "tool_calls"
        await response.write(_sse(chunk.delta({}, finish_reason=finish_reason)))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(
                _sse(chunk.usage(_estimate_prompt_tokens(body), completion_tokens=len(deltas)))
            )
        await response.write(_sse("[DONE]"))
        await response.write_eof()
        return response

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return _invalid_request("'input' must be a non-empty string")
        response_format = body.get("response_format", "mp3")
        if response_format not in TTS_FORMATS:
            return _invalid_request(
                f"this fake only produces {', '.join(TTS_FORMATS)}, not {response_format!r}"
            )
        pcm = synthesize_tone(self.speech_duration_s(text))
        audio = pcm if response_format == "pcm" else _wav_bytes(pcm, TTS_SAMPLE_RATE)
        chunks = [audio[i : i + TTS_CHUNK_BYTES] for i in range(0, len(audio), TTS_CHUNK_BYTES)]

        if body.get("stream_format") == "sse":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await asyncio.sleep(self.tts_first_byte_delay_s)
            for chunk in chunks:
                await response.write(
                    _sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
                )
            input_tokens, output_tokens = len(text) // 4 + 1, len(chunks)
            usage = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
            await response.write(_sse({"type": "speech.audio.done", "usage": usage}))
        else:
            response = web.StreamResponse(headers={"Content-Type": f"audio/{response_format}"})
            await response.prepare(request)
            await asyncio.sleep(self.tts_first_byte_delay_s)
            for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
        return response

    async def _transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        audio = form.get("file")
        if not isinstance(audio, FileField):
            return _invalid_request("'file' is required")
        if not form.get("model"):
            return _invalid_request("'model' is required")
        try:
            text = self.transcripts.popleft()
        except IndexError:
            text = DEFAULT_TRANSCRIPT
        response_format = form.get("response_format", "json")
        if response_format == "text":
            return web.Response(text=text, content_type="text/plain")
        if response_format == "verbose_json":
            duration = _wav_duration_s(audio.file.read())
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": "english",
                    "duration": duration,
                    "text": text,
                    "segments": [],
                }
            )
        if response_format == "json":
            return web.json_response({"text": text})
        return _invalid_request(f"this fake does not produce response_format {response_format!r}")


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")


@dataclass
class _ChunkFactory:
    """Builds `chat.completion.chunk` payloads sharing one completion id."""

    model: str
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def _payload(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return self._payload([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        payload = self._payload([])
        payload["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return payload


def _text_deltas(text: str) -> list[dict[str, Any]]:
    """Word-sized content deltas; the first one carries the role, as OpenAI's does."""
    pieces = re.findall(r"\S+\s*|\s+", text) or [""]
    deltas: list[dict[str, Any]] = [{"content": piece} for piece in pieces]
    deltas[0] = {"role": "assistant", **deltas[0]}
    return deltas


def _tool_call_deltas(reply: ToolCallsReply) -> list[dict[str, Any]]:
    """Per call: one delta opening it (id, name, empty arguments), then argument fragments."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(reply.calls):
        opening = {
            "index": index,
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [opening]})
        arguments = call.arguments_json()
        for start in range(0, len(arguments), TOOL_ARGUMENT_FRAGMENT_CHARS):
            fragment = arguments[start : start + TOOL_ARGUMENT_FRAGMENT_CHARS]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    deltas[0] = {"role": "assistant", "content": None, **deltas[0]}
    return deltas


def _completion(body: Mapping[str, Any], reply: TextReply | ToolCallsReply) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if isinstance(reply, TextReply):
        message["content"] = reply.text
        finish_reason = "stop"
        completion_tokens = len(_text_deltas(reply.text))
    else:
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.calls
        ]
        finish_reason = "tool_calls"
        completion_tokens = sum(len(call.arguments_json()) // 4 + 1 for call in reply.calls)
    prompt_tokens = _estimate_prompt_tokens(body)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", DEFAULT_MODELS[0]),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
