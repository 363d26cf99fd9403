"""The two ways MockFlow is started: `python app.py` for development and gunicorn for self-hosting.

Each test starts the real process on a free port, waits until /api/health answers (or the process
exits), and stops it afterwards. Everything runs outside the project directory so no developer
`.env` is read.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import ProxyHandler, build_opener

import pytest

import store
from config import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_DEADLINE_S = 30.0
# A Werkzeug debugger URL: answered by the debugger itself when it is on, by the app otherwise.
DEBUGGER_CONSOLE_PATH = "/console"
DEBUGGER_MARKUP = "__debugger__"
# Requests to 127.0.0.1 must never go through a proxy configured in the environment.
http = build_opener(ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    log_path: Path

    def get(self, path: str) -> Reply:
        try:
            with http.open(self.base_url + path, timeout=5) as response:
                return Reply(response.status, response.headers.get_content_type(), response.read().decode())
        except HTTPError as error:
            return Reply(error.code, error.headers.get_content_type(), error.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The test process's environment without any MockFlow setting, plus `settings`."""
    setting_names = {name.upper() for name in Settings.model_fields}
    env = {
        name: value for name, value in os.environ.items()
        if name not in setting_names and not name.startswith("GUNICORN_")
    }
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        INSTANCE_PATH=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'mockflow.db'}",
        # A warm agent process would only slow these tests down.
        WARM_WORKERS="0",
    )
    env.update(settings)
    return env


def wait_until_healthy(process: subprocess.Popen, server: RunningServer) -> None:
    """Poll /api/health until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if server.get("/api/health").status == 200:
                return
        except (URLError, ConnectionError, TimeoutError):
            pass
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"server exited with {process.returncode} before it was ready:\n{server.log()}")
    pytest.fail(f"server was not ready within {READY_DEADLINE_S:.0f} s:\n{server.log()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def serving(command: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[RunningServer]:
    server = RunningServer(f"http://127.0.0.1:{port}", cwd / "server.log")
    with server.log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_healthy(process, server)
        yield server
    finally:
        stop(process)


def python_app_py() -> list[str]:
    return [sys.executable, str(PROJECT_ROOT / "app.py")]


def gunicorn() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), "app:app"]


def assert_healthy(server: RunningServer) -> None:
    health = server.get("/api/health")
    assert (health.status, health.content_type) == (200, "application/json")
    assert json.loads(health.body)["status"] == "ok"


def test_python_app_py_serves_on_loopback_with_the_debugger(tmp_path: Path) -> None:
    port = free_port()
    with serving(python_app_py(), server_environment(tmp_path, PORT=str(port)), tmp_path, port) as server:
        assert_healthy(server)
        front_page = server.get("/")
        assert (front_page.status, front_page.content_type) == (200, "text/html")
        assert "MockFlow" in front_page.body
        # The probe the public-address test relies on does see the development debugger.
        console = server.get(DEBUGGER_CONSOLE_PATH)
        assert console.status == 200
        assert DEBUGGER_MARKUP in console.body


def test_python_app_py_refuses_local_mode_on_a_public_address(tmp_path: Path) -> None:
    env = server_environment(tmp_path, PORT=str(free_port()), HOST="0.0.0.0")

    result = subprocess.run(
        python_app_py(), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    refusal = result.stderr.strip().splitlines()[-1]
    assert refusal.startswith("MockFlow refuses to start:")
    assert "0.0.0.0" in refusal and "AUTH_MODE" in refusal


def test_python_app_py_on_a_public_address_runs_without_the_debugger(tmp_path: Path) -> None:
    port = free_port()
    env = server_environment(tmp_path, PORT=str(port), HOST="0.0.0.0", AUTH_MODE="local")
    with serving(python_app_py(), env, tmp_path, port) as server:
        assert_healthy(server)
        console = server.get(DEBUGGER_CONSOLE_PATH)
        assert console.status == 404
        assert DEBUGGER_MARKUP not in console.body


def test_gunicorn_serves_health_with_threaded_workers(tmp_path: Path) -> None:
    port = free_port()
    env = server_environment(
        tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", GUNICORN_THREADS="2"
    )
    migrated = store.Store(env["DATABASE_URL"])
    migrated.upgrade()
    migrated.dispose()

    with serving(gunicorn(), env, tmp_path, port) as server:
        assert_healthy(server)
        assert "Using worker: gthread" in server.log()


def test_gunicorn_refuses_local_mode_on_a_public_address(tmp_path: Path) -> None:
    env = server_environment(tmp_path, GUNICORN_BIND=f"0.0.0.0:{free_port()}")

    result = subprocess.run(gunicorn(), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    refusal = result.stderr.strip().splitlines()[-1]
    assert refusal.startswith("MockFlow refuses to start:")
    assert "0.0.0.0" in refusal
