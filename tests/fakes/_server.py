"""What every fake provider shares: a request recorder and a loopback aiohttp server that runs either
on the caller's event loop (async code) or on its own loop in a background thread (sync tests)."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

LOOPBACK_HOST = "127.0.0.1"
# Streams still open at shutdown (SSE, WebSockets) are cut after this long instead of aiohttp's 60 s.
SHUTDOWN_TIMEOUT_S = 2.0
THREAD_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `body` is decoded (JSON, form fields or protobuf as dict)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.perf_counter)

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively as HTTP requires."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    @property
    def authorization(self) -> str | None:
        return self.header("Authorization")


class RequestRecorder:
    """Thread-safe log of every request a fake received, in arrival order."""

    def __init__(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()

    def record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def all(self) -> list[RecordedRequest]:
        """A snapshot of every recorded request."""
        with self._changed:
            return list(self._requests)

    def for_path(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose URL path is exactly `path`."""
        return [request for request in self.all() if request.path == path]

    def last(self, path: str) -> RecordedRequest:
        """The most recent request to `path`; raises AssertionError when there is none."""
        matching = self.for_path(path)
        assert matching, f"no request to {path} was recorded"
        return matching[-1]

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests to `path` arrived (a readiness wait, not a sleep)."""
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: sum(request.path == path for request in self._requests) >= count, timeout
            )
        assert arrived, f"expected {count} request(s) to {path} within {timeout} s"
        return self.for_path(path)

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()

    def __len__(self) -> int:
        with self._changed:
            return len(self._requests)


class FakeServer(ABC):
    """Base of the fakes: subclasses build the aiohttp app; this class binds it to 127.0.0.1 on an
    OS-chosen port.

    Async code: `async with FakeX() as fake:` (or `await fake.start()` / `await fake.stop()`).
    Sync code: `with FakeX() as fake:` runs the server on its own event loop in a daemon thread.
    Either way the server is listening when the block is entered and `fake.origin` is set.
    """

    def __init__(self) -> None:
        self.requests = RequestRecorder()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def build_app(self) -> web.Application:
        """The aiohttp application serving this provider's routes."""

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._port

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>`, without a path."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL a client of this provider is configured with; subclasses add the API prefix."""
        return self.origin

    async def start(self) -> str:
        """Start listening on the running event loop and return `base_url` once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK_HOST, 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        return self.base_url

    async def stop(self) -> None:
        """Close open connections and stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> str:
        """Run the server on a private event loop in a daemon thread; return `base_url` when listening."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already runs in a thread")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"{type(self).__name__}-loop", daemon=True)
        thread.start()
        try:
            base_url = asyncio.run_coroutine_threadsafe(self.start(), loop).result(THREAD_START_TIMEOUT_S)
        except BaseException:
            _stop_loop_thread(loop, thread)
            raise
        self._thread_loop, self._thread = loop, thread
        return base_url

    def stop_thread(self) -> None:
        """Stop a server started with `start_in_thread` and join its thread."""
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        self._thread_loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(SHUTDOWN_TIMEOUT_S + 5.0)
        finally:
            _stop_loop_thread(loop, thread)

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()


def _stop_loop_thread(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def header_dict(request: web.Request) -> dict[str, str]:
    """The request headers as a plain dict (the last value wins for repeated headers)."""
    return {name: value for name, value in request.headers.items()}


def bearer_token(request: web.Request, scheme: str = "Bearer") -> str | None:
    """The credential after `<scheme> ` in the Authorization header, or None."""
    authorization = request.headers.get("Authorization", "")
    prefix = f"{scheme} "
    if not authorization.startswith(prefix):
        return None
    return authorization[len(prefix) :].strip()
