"""Web load benchmark: MockFlow's routes under gunicorn beside a bare Flask "hello" app.

Every server runs with the shipped gunicorn.conf.py (gthread, its workers and threads), bound to
127.0.0.1 on a free port, in local mode, with SQLite in a temporary instance folder holding one
seeded user, their (fake) LiveKit keys and a few interviews. The load generator (bench/loadgen.py)
runs in this process on loopback, bounded in requests and seconds per route.

    .venv/bin/python -m bench.web [--seconds 8] [--max-requests 20000] [--connections 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT, ensure_repo_on_path, format_table, free_port, machine_info, write_results
from bench.loadgen import LoadResult, run_load

SERVER_READY_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 30.0
SEEDED_INTERVIEWS = 6


@dataclass(frozen=True)
class Target:
    """One measured route: which WSGI app serves it and which path is requested."""

    name: str
    wsgi_app: str
    path: str


@dataclass(frozen=True)
class SeededInstance:
    environment: dict[str, str]
    live_interview_id: str


def seed_instance(instance_dir: Path) -> SeededInstance:
    """Create a local-mode instance with SQLite: migrations, the local user, LiveKit keys, interviews."""
    environment = {
        "MOCKFLOW_ENV": "development",
        "AUTH_MODE": "local",
        "INSTANCE_PATH": str(instance_dir),
        "DATABASE_URL": f"sqlite:///{instance_dir / 'mockflow.db'}",
        "WARM_WORKERS": "0",
        "WATCHDOG_INTERVAL_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(environment)
    ensure_repo_on_path()
    import store
    from auth_helpers import LOCAL_ISSUER, LOCAL_SUBJECT
    from config import load_settings
    from key_vault import KeyVault, last4

    settings = load_settings(env_file=None)
    app_store = store.Store(settings.sqlalchemy_url)
    app_store.upgrade()
    vault = KeyVault(settings.encryption_keys)
    keys = {
        "livekit_url": "wss://bench.invalid",
        "livekit_api_key": "APIbenchkey0001",
        "livekit_api_secret": "bench-secret-" + "x" * 32,
    }
    with app_store.session() as db:
        user = store.get_or_create_user(db, LOCAL_ISSUER, LOCAL_SUBJECT, "", "Local user")
        db.flush()
        for name, value in keys.items():
            store.put_provider_key(db, user.id, name, vault.encrypt(user.id, value), last4(value))
        interview_ids = []
        for index in range(SEEDED_INTERVIEWS):
            interview_id = store.new_interview_id()
            status = "live" if index == SEEDED_INTERVIEWS - 1 else "completed"
            db.add(store.Interview(
                id=interview_id, user_id=user.id, room_name=f"bench-room-{index}-{interview_id[:8]}",
                track="behavioral", length="standard", role="Backend engineer", level="mid",
                status=status, plan={"max_duration_s": 1200},
            ))
            interview_ids.append(interview_id)
    app_store.dispose()
    return SeededInstance(environment=environment, live_interview_id=interview_ids[-1])


@contextmanager
def gunicorn_server(wsgi_app: str, environment: dict[str, str], log_path: Path, probe_path: str) -> Iterator[int]:
    """Serve `wsgi_app` with the shipped gunicorn.conf.py on a free loopback port; yield the port."""
    port = free_port()
    env = {**os.environ, **environment, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py"), wsgi_app],
            cwd=str(REPO_ROOT), env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_until_serving(process, port, probe_path)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen, port: int, probe_path: str) -> None:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    url = f"http://127.0.0.1:{port}{probe_path}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers; the status is the route's business
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not serve {url} within {SERVER_READY_TIMEOUT_S} s")


def _probe_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def _measure(port: int, path: str, args: argparse.Namespace) -> LoadResult:
    await run_load("127.0.0.1", port, path, connections=args.connections,
                   max_requests=args.warmup_requests, max_seconds=args.seconds)
    return await run_load("127.0.0.1", port, path, connections=args.connections,
                          max_requests=args.max_requests, max_seconds=args.seconds)


def run(args: argparse.Namespace) -> dict[str, object]:
    """Seed, then serve and load each route in turn; return the results document."""
    with tempfile.TemporaryDirectory(prefix="mockflow-bench-web-") as temp:
        instance_dir = Path(temp) / "instance"
        seeded = seed_instance(instance_dir)
        targets = [
            Target("hello (bare Flask)", "bench.web_apps:hello", "/"),
            Target("/api/health", "app:app", "/api/health"),
            Target("/dashboard", "app:app", "/dashboard"),
            Target("/api/interviews/<id>/token", "bench.web_apps:mockflow_without_rate_limits",
                   f"/api/interviews/{seeded.live_interview_id}/token"),
        ]
        results: dict[str, dict[str, object]] = {}
        for target in targets:
            with gunicorn_server(target.wsgi_app, seeded.environment, Path(temp) / "gunicorn.log", "/") as port:
                status = _probe_status(port, target.path)
                if status != 200:
                    results[target.name] = {"wsgi_app": target.wsgi_app, "skipped": f"GET answered {status}"}
                    continue
                measured = asyncio.run(_measure(port, target.path, args))
                results[target.name] = {"wsgi_app": target.wsgi_app, **measured.as_dict()}
    hello = results["hello (bare Flask)"]
    for name, result in results.items():
        if "requests_per_s" in result and hello.get("requests_per_s"):
            result["rps_ratio_to_hello"] = round(result["requests_per_s"] / hello["requests_per_s"], 3)
            result["p99_ratio_to_hello"] = round(result["latency_ms"]["p99"] / hello["latency_ms"]["p99"], 2)
    return {
        "settings": {
            "gunicorn_conf": "gunicorn.conf.py (shipped)",
            "gunicorn_workers": os.environ.get("GUNICORN_WORKERS", "2"),
            "gunicorn_threads": os.environ.get("GUNICORN_THREADS", "8"),
            "connections": args.connections,
            "max_requests": args.max_requests,
            "max_seconds": args.seconds,
            "warmup_requests": args.warmup_requests,
        },
        "routes": results,
    }


def _table(document: dict[str, object]) -> str:
    rows = []
    for name, result in document["routes"].items():
        if "skipped" in result:
            rows.append([name, "skipped: " + result["skipped"], None, None, None, None, None])
            continue
        latency = result["latency_ms"]
        rows.append([name, result["requests"], result["requests_per_s"], latency["p50"], latency["p99"],
                     result.get("rps_ratio_to_hello"), result["errors"] + sum(
                         count for code, count in result["statuses"].items() if code != "200")])
    return format_table(["route", "requests", "req/s", "p50 ms", "p99 ms", "req/s vs hello", "non-200"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="time bound per route")
    parser.add_argument("--max-requests", type=int, default=20_000, help="request bound per route")
    parser.add_argument("--warmup-requests", type=int, default=300)
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info()
    document = run(args)
    print(_table(document))
    print(f"results: {write_results('web', document, args.json, machine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
