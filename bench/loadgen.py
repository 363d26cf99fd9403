"""A small HTTP/1.1 keep-alive load generator on asyncio streams, for loopback benchmarks.

It is deliberately minimal (prebuilt request bytes, just enough response parsing for Content-Length
and chunked bodies) so that one Python process can push a gunicorn server on the same machine.
Each of `connections` workers sends its next request as soon as the previous answer has arrived
(a closed loop), until `max_requests` or `max_seconds`, whichever comes first.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import summarize


@dataclass
class LoadResult:
    """What one load run measured: per-request latencies and how the server answered."""

    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: Counter[int]
    errors: int
    client_cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "latency_ms": summarize(self.latencies_ms, digits=2),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "errors": self.errors,
            "client_cpu_s": round(self.client_cpu_s, 2),
        }


class _ProtocolError(Exception):
    pass


def build_request(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive GET request."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise _ProtocolError(status_line)
    status = int(parts[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") != "close"


async def run_load(
    host: str,
    port: int,
    path: str,
    *,
    connections: int,
    max_requests: int,
    max_seconds: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Drive GET `path` with `connections` concurrent keep-alive connections; bounded in count and time."""
    request = build_request(host, port, path, headers)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds
    usage_before = resource.getrusage(resource.RUSAGE_SELF)

    async def worker() -> None:
        nonlocal errors, issued
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                sent = time.perf_counter()
                writer.write(request)
                status, keep_alive = await _read_response(reader)
                latencies.append((time.perf_counter() - sent) * 1000.0)
                statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _ProtocolError, ValueError):
                errors += 1
                keep_alive = False
            if not keep_alive and writer is not None:
                writer.close()
                writer = reader = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        latencies_ms=latencies,
        statuses=statuses,
        errors=errors,
        client_cpu_s=client_cpu,
    )
