"""`python agent_worker.py` as the worker manager runs it: ready line, job spec on stdin, clean exit.

No LiveKit server exists here, so the room connection fails against a closed port; everything before
it is real (parsing, validation, Silero, the ready line), and the failure must end cleanly: status
`failed` with a readable reason, exit code 0, and the keys never in argv, environment or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet

import agent_worker
import fsm
import store
import worker_manager
from config import PROJECT_ROOT
from conversation_cache import InterviewSetup, build_context
from key_vault import KeyVault

SENTINEL_OPENAI_KEY = "sk-SENTINEL-openai-0123456789abcdef"
SENTINEL_DEEPGRAM_KEY = "SENTINEL-deepgram-0123456789abcdef"
SENTINEL_LIVEKIT_SECRET = "SENTINEL-livekit-secret-0123456789abcdef"
SENTINELS = ("SENTINEL",)
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 90.0


@pytest.fixture
def database_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'agent.db'}"
    test_store = store.Store(url)
    test_store.upgrade()
    test_store.dispose()
    return url


def create_interview(database_url: str) -> store.Interview:
    app_store = store.Store(database_url)
    setup = InterviewSetup("Casey", "Backend engineer", "mid", "Acme", "technical", "short", "en")
    try:
        with app_store.session() as db:
            user = store.get_or_create_user(db, "https://issuer.test", "casey", "casey@example.test", "Casey")
            return store.create_interview_unless_active(
                db,
                user_id=user.id,
                interview_id=store.new_interview_id(),
                status="starting",
                room_name="mf-" + secrets.token_hex(10),
                track="technical",
                length="short",
                role=setup.role,
                level=setup.level,
                plan=fsm.build_plan("technical", "short").to_dict(),
                context=build_context(setup),
            )
    finally:
        app_store.dispose()


def read_interview(database_url: str, interview_id: str) -> store.Interview:
    app_store = store.Store(database_url)
    try:
        with app_store.session() as db:
            return store.get_interview(db, interview_id)
    finally:
        app_store.dispose()


def closed_port() -> int:
    """A loopback port nobody listens on (bound once by us, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def job_spec(
    interview: store.Interview, database_url: str, log_dir: Path, livekit_url: str
) -> dict[str, Any]:
    """The spec exactly as the worker manager builds it, with sentinel keys."""
    values = {
        "livekit_url": livekit_url,
        "livekit_api_key": "APIsentinel",
        "livekit_api_secret": SENTINEL_LIVEKIT_SECRET,
        "openai": SENTINEL_OPENAI_KEY,
        "deepgram": SENTINEL_DEEPGRAM_KEY,
    }
    return worker_manager.build_job_spec(interview, values, database_url, log_dir)


def spawn_agent() -> subprocess.Popen[bytes]:
    """The agent as the worker manager starts it: its own session, allowlisted environment."""
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "agent_worker.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_manager.allowlisted_environment(),
        cwd=str(PROJECT_ROOT),
        start_new_session=True,
    )


def read_ready_line(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    assert readable, "the agent printed no ready line"
    return json.loads(process.stdout.readline())


def finish(process: subprocess.Popen[bytes], stdin: bytes) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(stdin, timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, stdout.decode(), stderr.decode()


def test_the_agent_reports_ready_then_fails_cleanly_when_livekit_is_unreachable(database_url, tmp_path):
    interview = create_interview(database_url)
    port = closed_port()
    log_dir = tmp_path / "logs"
    spec = job_spec(interview, database_url, log_dir, f"ws://127.0.0.1:{port}")
    process = spawn_agent()
    try:
        ready = read_ready_line(process)
        assert ready == {"event": "ready", "pid": process.pid}
        # Warm and waiting on stdin: what the process was given holds no key.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        for secret in (SENTINEL_OPENAI_KEY, SENTINEL_DEEPGRAM_KEY, spec["agent_token"]):
            assert secret.encode() not in cmdline
            assert secret.encode() not in environ
    finally:
        returncode, stdout, stderr = finish(process, json.dumps(spec).encode())

    assert returncode == 0, stderr
    row = read_interview(database_url, interview.id)
    assert row.status == "failed"
    assert row.failure_reason.startswith(
        f"Could not connect to your LiveKit server at ws://127.0.0.1:{port}: "
    )
    assert "refused" in row.failure_reason
    assert [json.loads(line)["event"] for line in stdout.splitlines() if line] == []  # never joined
    log_text = (log_dir / f"interview-{interview.id}.log").read_text()
    assert f"interview={interview.id}" in log_text
    for output in (stdout, stderr, log_text, row.failure_reason):
        for secret in (*SENTINELS, spec["agent_token"]):
            assert secret not in output


def test_sigterm_while_connecting_ends_the_interview_as_interrupted_and_exits_0(database_url, tmp_path):
    interview = create_interview(database_url)
    with socket.socket() as silent_server:  # accepts the connection, never answers the handshake
        silent_server.bind(("127.0.0.1", 0))
        silent_server.listen()
        silent_server.settimeout(READY_TIMEOUT_S)
        spec = job_spec(
            interview, database_url, tmp_path / "logs", f"ws://127.0.0.1:{silent_server.getsockname()[1]}"
        )
        process = spawn_agent()
        try:
            read_ready_line(process)
            process.stdin.write(json.dumps(spec).encode())
            process.stdin.close()
            connection, _ = silent_server.accept()  # the agent is connecting to the room now
            with connection:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=EXIT_TIMEOUT_S)
            stderr = process.stderr.read().decode()
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
            process.stderr.close()
    assert process.returncode == 0, stderr
    row = read_interview(database_url, interview.id)
    assert (row.status, row.failure_reason) == ("interrupted", agent_worker.STOPPED_REASON)


@pytest.mark.parametrize(
    "raw_spec, problem",
    [
        (
            b'{"interview_id": "abc", "providers": {"openai_api_key": "sk-SENTINEL-key-0123456789"',
            "Invalid JSON",
        ),
        (
            json.dumps(
                {
                    "interview_id": "abc",
                    "livekit_url": "ftp://example.test",
                    "agent_token": "SENTINEL-token",
                    "database_url": "sqlite://",
                    "providers": {"openai_api_key": "sk-SENTINEL-key-0123456789"},
                }
            ).encode(),
            "livekit_url: String should match pattern",
        ),
    ],
)
def test_a_malformed_job_spec_exits_2_with_one_line_on_stderr(raw_spec, problem):
    process = spawn_agent()
    assert read_ready_line(process)["event"] == "ready"
    returncode, stdout, stderr = finish(process, raw_spec)
    assert returncode == 2
    assert len(stderr.splitlines()) == 1
    assert stderr.startswith("agent_worker: invalid job spec: ") and problem in stderr
    assert "SENTINEL" not in stderr and stdout == ""


def test_the_job_spec_schema_in_the_module_docstring_is_the_models():
    documented = re.search(r"```json\n(.*?)\n```", agent_worker.__doc__, re.DOTALL).group(1)
    assert json.loads(documented) == agent_worker.JobSpec.model_json_schema()


def test_the_worker_managers_spec_parses_and_keeps_keys_secret(database_url, tmp_path):
    interview = create_interview(database_url)
    spec = job_spec(interview, database_url, tmp_path, "wss://project.livekit.test")
    parsed = agent_worker.parse_job_spec(json.dumps(spec))
    assert parsed.interview_id == interview.id
    assert parsed.providers.openai_api_key.get_secret_value() == SENTINEL_OPENAI_KEY
    assert SENTINEL_OPENAI_KEY not in repr(parsed) and SENTINEL_OPENAI_KEY not in str(parsed)
    with pytest.raises(agent_worker.JobSpecError, match="providers.surprise: Extra inputs are not permitted"):
        agent_worker.parse_job_spec(json.dumps({**spec, "providers": {**spec["providers"], "surprise": "x"}}))


def test_dispatch_mode_reads_the_interview_id_and_decrypts_the_users_keys(database_url):
    assert agent_worker.interview_id_from_metadata('{"interview_id": "abc123"}') == "abc123"
    for bad in ("", "[]", '{"room": "x"}', "not json"):
        with pytest.raises(ValueError):
            agent_worker.interview_id_from_metadata(bad)

    interview = create_interview(database_url)
    vault = KeyVault([Fernet.generate_key().decode()])
    stored = {
        "openai": SENTINEL_OPENAI_KEY,
        "deepgram": SENTINEL_DEEPGRAM_KEY,
        "llm_model": "llama3.1",
        "tts_voice": "nova",
        "livekit_api_secret": SENTINEL_LIVEKIT_SECRET,
    }
    app_store = store.Store(database_url)
    try:
        with app_store.session() as db:
            for name, value in stored.items():
                store.put_provider_key(
                    db, interview.user_id, name, vault.encrypt(interview.user_id, value), value[-4:]
                )
        providers = agent_worker.load_provider_settings(app_store, vault, interview.user_id)
    finally:
        app_store.dispose()
    assert providers.openai_api_key.get_secret_value() == SENTINEL_OPENAI_KEY
    assert providers.deepgram_api_key.get_secret_value() == SENTINEL_DEEPGRAM_KEY
    assert (providers.llm_model, providers.tts_voice, providers.llm_base_url) == ("llama3.1", "nova", "")


class StubJobContext:
    """Just enough of a livekit JobContext for a dispatch job that ends before joining the room."""

    def __init__(self, metadata: str) -> None:
        self.job = SimpleNamespace(metadata=metadata)
        self.proc = SimpleNamespace(userdata={})
        self.connected = False
        self.shutdown_reasons: list[str] = []

    async def connect(self) -> None:
        self.connected = True

    def shutdown(self, reason: str = "") -> None:
        self.shutdown_reasons.append(reason)


@pytest.fixture
def restore_root_logging():
    """The entrypoint sends the process's logs to the interview's file; undo that after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_a_dispatch_job_whose_keys_cannot_be_read_fails_without_joining(database_url, tmp_path, monkeypatch):
    interview = create_interview(database_url)
    written_with = KeyVault([Fernet.generate_key().decode()])
    app_store = store.Store(database_url)
    try:
        with app_store.session() as db:
            store.put_provider_key(
                db,
                interview.user_id,
                "openai",
                written_with.encrypt(interview.user_id, SENTINEL_OPENAI_KEY),
                "cdef",
            )
    finally:
        app_store.dispose()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv(
        "KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode()
    )  # not the key it was written with
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    context = StubJobContext(json.dumps({"interview_id": interview.id}))

    asyncio.run(agent_worker.dispatch_entrypoint(context))

    row = read_interview(database_url, interview.id)
    assert (row.status, row.failure_reason) == (
        "failed",
        "Your stored provider keys could not be read. Enter them again in Settings.",
    )
    assert not context.connected and context.shutdown_reasons == ["interview finished"]
    log_text = (tmp_path / "logs" / f"interview-{interview.id}.log").read_text()
    assert "SENTINEL" not in log_text


def test_events_after_the_manager_is_gone_do_not_break_the_interview(monkeypatch):
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed_pipe)
    agent_worker.emit_event("joined")
    assert sys.stdout is not closed_pipe
    assert sys.stdout.name == os.devnull
    agent_worker.emit_event("joined")
