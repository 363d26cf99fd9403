"""Local stand-ins for the paid providers (OpenAI, Deepgram, LiveKit's server API).

Each fake is an aiohttp server on 127.0.0.1 with an OS-chosen port that speaks the provider's wire
protocol and records what it receives (`fake.requests`). Use `with Fake() as fake:` from sync code
(the server runs on its own loop in a thread) or `async with Fake() as fake:` inside an event loop.
"""

from __future__ import annotations

from ._server import FakeServer, RecordedRequest, RequestRecorder
from .fake_deepgram import DEFAULT_DEEPGRAM_KEY, FakeDeepgram, ListenSession, Utterance
from .fake_livekit import DEFAULT_LIVEKIT_API_KEY, DEFAULT_LIVEKIT_API_SECRET, FakeLiveKit, twirp_path
from .fake_openai import (
    DEFAULT_OPENAI_KEY,
    ErrorReply,
    FakeOpenAI,
    RawReply,
    TextReply,
    ToolCall,
    ToolCallsReply,
    tool_call_reply,
)

__all__ = [
    "DEFAULT_DEEPGRAM_KEY",
    "DEFAULT_LIVEKIT_API_KEY",
    "DEFAULT_LIVEKIT_API_SECRET",
    "DEFAULT_OPENAI_KEY",
    "ErrorReply",
    "FakeDeepgram",
    "FakeLiveKit",
    "FakeOpenAI",
    "FakeServer",
    "ListenSession",
    "RawReply",
    "RecordedRequest",
    "RequestRecorder",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "Utterance",
    "tool_call_reply",
    "twirp_path",
]
