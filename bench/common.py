"""What the benchmarks share: percentiles, the machine description, result files, tables."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def ensure_repo_on_path() -> None:
    """Let `python bench/x.py` import the project's modules like `python -m bench.x` does."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Iterable[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, p50, p95, p99, min, max and mean of `values`, rounded; None fields when there are none."""
    data = [v for v in values if v is not None and not math.isnan(v)]
    if not data:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "min": None, "max": None, "mean": None}
    return {
        "n": len(data),
        "p50": round(percentile(data, 50), digits),
        "p95": round(percentile(data, 95), digits),
        "p99": round(percentile(data, 99), digits),
        "min": round(min(data), digits),
        "max": round(max(data), digits),
        "mean": round(sum(data) / len(data), digits),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where a figure came from: cores, CPU model, memory, kernel and the versions that matter."""
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(memory_bytes / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "versions": {
            name: _package_version(name)
            for name in ("livekit-agents", "livekit-local-inference", "flask", "gunicorn", "aiohttp")
        },
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_memory_kib(pid: int) -> dict[str, int] | None:
    """RSS, PSS and anonymous memory of `pid` in KiB (/proc/<pid>/smaps_rollup); None once it exited.

    PSS divides each shared page among the processes that map it, so the PSS of N agent processes
    adds up to what they really cost together. Anonymous memory (the Python heap: every imported
    module's objects) is private to a spawned process and cannot be shared.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {name.strip(): value for name, _, value in (line.partition(":") for line in lines[1:])}
    try:
        return {name.lower() + "_kib": int(fields[name].split()[0]) for name in ("Rss", "Pss", "Anonymous")}
    except (KeyError, ValueError, IndexError):
        return None


def process_cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds used so far by `pid` (from /proc/<pid>/stat); None once reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def write_results(name: str, payload: dict[str, Any], path: str | Path | None = None,
                  machine: dict[str, Any] | None = None) -> Path:
    """Write `payload` with the machine description (taken at the start of the run, so its load
    average says whether something else was busy) as JSON; default bench/results/<name>-<time>.json."""
    target = Path(path) if path else RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": machine or machine_info()}
    document.update(payload)
    target.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return target


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain, aligned text table (None shows as '-')."""
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) if cells else len(header)
              for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(lines)
