"""Worker manager lifecycle: spawn, ready, exit, crash, hang, caps, adoption, pid reuse, environment.

Agent processes are played by tests/stand_in_agent.py, which speaks the real process protocol and
writes statuses to the same store; every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from livekit import api as livekit_api

import fsm
import store
import worker_manager
from config import load_settings
from fakes import FakeLiveKit
from fakes.fake_livekit import twirp_path

STAND_IN = Path(__file__).resolve().parent / "stand_in_agent.py"
PROCESS_TIMEOUT_S = 30
VALUES = {
    "livekit_url": "ws://127.0.0.1:9",
    "livekit_api_key": "APIstandin",
    "livekit_api_secret": "livekit-secret-sentinel-" + "x" * 20,
    "openai": "sk-openai-sentinel-value-1234",
    "deepgram": "deepgram-sentinel-value-5678",
}
PLAN = {"max_duration_s": 60, "stages": []}


@pytest.fixture
def settings(tmp_path, database_url):
    return load_settings(
        env_file=None,
        instance_path=tmp_path / "instance",
        database_url=database_url,
        secret_key="s",
        key_encryption_keys="",
        warm_workers=0,
        heartbeat_timeout_s=5,
        interview_grace_s=0,
    )


@pytest.fixture
def app_store(settings):
    test_store = store.Store(settings.sqlalchemy_url)
    yield test_store
    test_store.dispose()


@pytest.fixture
def spawned():
    """Every process a test starts is killed at the end, whatever the test did."""
    processes: list[subprocess.Popen] = []
    yield processes
    for popen in processes:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(PROCESS_TIMEOUT_S)


def make_interview(app_store: store.Store, subject: str = "alice", status: str = "starting") -> str:
    with app_store.session() as db:
        user = store.get_or_create_user(db, "https://issuer.test", subject, f"{subject}@example.test", subject)
        interview = store.create_interview_unless_active(
            db, user_id=user.id, interview_id=store.new_interview_id(), status=status,
            room_name="mf-" + store.new_interview_id()[:12], track="behavioral", length="short",
            role="Engineer", level="mid", plan=PLAN,
        )
        assert isinstance(interview, store.Interview)
        return interview.id


def launch(settings, app_store, interview_id: str, behaviour: str, spawned: list) -> worker_manager.AgentProcess:
    launcher = worker_manager.SubprocessLauncher(settings, app_store, command=[sys.executable, str(STAND_IN), behaviour])
    with app_store.session() as db:
        process = launcher(store.get_interview(db, interview_id), VALUES)
    spawned.append(process.popen)
    return process


def interview_row(app_store, interview_id) -> store.Interview:
    with app_store.session() as db:
        return store.get_interview(db, interview_id)


def wait_for_status(app_store, interview_id: str, status: str, timeout: float = PROCESS_TIMEOUT_S) -> store.Interview:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = interview_row(app_store, interview_id)
        if row.status == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"interview stayed {interview_row(app_store, interview_id).status!r}, wanted {status!r}")


def test_spawn_ready_and_normal_exit(settings, app_store, spawned):
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "complete", spawned)
    assert process.ready.wait(PROCESS_TIMEOUT_S)
    assert process.popen.wait(PROCESS_TIMEOUT_S) == 0
    row = wait_for_status(app_store, interview_id, "completed")
    assert row.worker_pid == process.pid
    assert row.worker_host == worker_manager.socket.gethostname()
    assert row.worker_started_at is not None and row.heartbeat_at is not None
    assert [event["event"] for event in process.events] == ["ready", "joined"]


def test_crash_is_reaped_as_interrupted_with_transcript_kept(settings, app_store, spawned):
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "crash", spawned)
    assert process.popen.wait(PROCESS_TIMEOUT_S) == 3
    assert interview_row(app_store, interview_id).status == "live"
    later = store.utcnow() + timedelta(seconds=settings.heartbeat_timeout_s + 1)
    report = worker_manager.Watchdog(settings, app_store, clock=lambda: later).sweep()
    assert report.reaped == [interview_id]
    row = interview_row(app_store, interview_id)
    assert row.status == "interrupted" and "unexpectedly" in row.failure_reason
    with app_store.session() as db:
        assert [turn.text for turn in store.list_turns(db, interview_id)] == ["Hello, welcome."]


def test_hang_past_time_limit_gets_sigterm_then_sigkill(settings, app_store, spawned):
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "hang", spawned)
    wait_for_status(app_store, interview_id, "live")
    past_limit = store.utcnow() + timedelta(seconds=PLAN["max_duration_s"] + 5)
    watchdog = worker_manager.Watchdog(settings, app_store, clock=lambda: past_limit, term_grace_s=0.5)
    report = watchdog.sweep()
    assert report.ended_for_time == [interview_id]
    assert process.popen.wait(PROCESS_TIMEOUT_S) == -signal.SIGKILL
    row = interview_row(app_store, interview_id)
    assert (row.status, row.failure_reason) == ("interrupted", "time limit")


def test_stop_all_ends_running_interviews_cleanly(settings, app_store, spawned):
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "run", spawned)
    wait_for_status(app_store, interview_id, "live")
    worker_manager.Watchdog(settings, app_store, term_grace_s=5).stop_all()
    assert process.popen.wait(PROCESS_TIMEOUT_S) == 0, "SIGTERM must end the agent cleanly, not SIGKILL"
    assert interview_row(app_store, interview_id).status == "interrupted"


def test_restarted_app_adopts_live_agents_and_reaps_dead_ones(settings, app_store, spawned):
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "run", spawned)
    wait_for_status(app_store, interview_id, "live")
    fresh_watchdog = worker_manager.Watchdog(settings, app_store)
    assert fresh_watchdog.sweep().adopted == [interview_id]
    assert process.alive()
    os.killpg(process.pid, signal.SIGKILL)
    process.popen.wait(PROCESS_TIMEOUT_S)
    later = store.utcnow() + timedelta(seconds=settings.heartbeat_timeout_s + 1)
    assert worker_manager.Watchdog(settings, app_store, clock=lambda: later).sweep().reaped == [interview_id]


def test_reused_pid_is_never_signalled(settings, app_store, spawned):
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    spawned.append(bystander)
    interview_id = make_interview(app_store)
    with app_store.session() as db:
        store.record_worker(db, interview_id, pid=bystander.pid, host=worker_manager.socket.gethostname(),
                            started_at=store.utcnow() - timedelta(hours=1))
    assert not worker_manager.is_same_process(bystander.pid, store.utcnow() - timedelta(hours=1))
    past_limit = store.utcnow() + timedelta(hours=2)
    report = worker_manager.Watchdog(settings, app_store, clock=lambda: past_limit, term_grace_s=0.2).sweep()
    assert report.ended_for_time == [interview_id]
    assert bystander.poll() is None, "a process with a reused pid was signalled"


def test_child_environment_and_argv_hold_no_secrets(settings, app_store, spawned, monkeypatch):
    sentinels = {
        "SECRET_KEY": "server-secret-sentinel-1",
        "KEY_ENCRYPTION_KEYS": "kek-sentinel-2",
        "OIDC_CLIENT_SECRET": "oidc-secret-sentinel-3",
        "DATABASE_URL": "postgresql://user:db-password-sentinel-4@host/db",
    }
    for name, value in sentinels.items():
        monkeypatch.setenv(name, value)
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "run", spawned)
    wait_for_status(app_store, interview_id, "live")
    environ = Path(f"/proc/{process.pid}/environ").read_bytes().decode()
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    for secret in [*sentinels.values(), *VALUES.values()]:
        if secret.startswith("ws://") or secret == VALUES["livekit_api_key"]:
            continue
        assert secret not in environ
        assert secret not in cmdline
    assert "PATH=" in environ
    assert os.getpgid(process.pid) == process.pid, "the agent must lead its own session"


def test_warm_pool_hands_a_ready_process_to_the_interview(settings, app_store, spawned):
    pool = worker_manager.WarmPool(1, settings.instance_path / "logs", 600,
                                   command=[sys.executable, str(STAND_IN), "complete"])
    pool.refill()
    spawned.extend(process.popen for process in pool._idle)
    assert pool._idle[0].ready.wait(PROCESS_TIMEOUT_S)
    warm = pool.take()
    assert warm is not None and warm.ready.is_set()
    interview_id = make_interview(app_store)
    with app_store.session() as db:
        warm.hand_job(worker_manager.build_job_spec(store.get_interview(db, interview_id), VALUES,
                                                    settings.sqlalchemy_url, settings.instance_path / "logs"))
    assert warm.popen.wait(PROCESS_TIMEOUT_S) == 0
    wait_for_status(app_store, interview_id, "completed")
    pool.close()


def test_ten_simultaneous_starts_with_a_cap_of_two_start_exactly_two(app_store):
    with app_store.session() as db:
        user_ids = [store.get_or_create_user(db, "https://issuer.test", f"user{n}", "", "").id for n in range(10)]
    barrier = threading.Barrier(10)
    outcomes: list[object] = []

    def start(user_id: int) -> None:
        barrier.wait()
        with app_store.session() as db:
            outcome = store.create_interview_unless_active(
                db, user_id=user_id, interview_id=store.new_interview_id(), status="starting",
                max_concurrent=2, room_name="mf-" + store.new_interview_id()[:12], track="behavioral",
                length="short", role="Engineer", level="mid", plan=PLAN,
            )
            outcomes.append(outcome if isinstance(outcome, store.StartRefused) else "created")

    threads = [threading.Thread(target=start, args=(user_id,)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_TIMEOUT_S)
    assert outcomes.count("created") == 2
    assert outcomes.count(store.StartRefused.ROOMS_FULL) == 8
    with app_store.session() as db:
        assert store.count_running_interviews(db) == 2


def test_one_running_interview_per_user(app_store):
    make_interview(app_store, "bob")
    with app_store.session() as db:
        user = store.get_or_create_user(db, "https://issuer.test", "bob", "", "")
        second = store.create_interview_unless_active(
            db, user_id=user.id, interview_id=store.new_interview_id(), room_name="mf-second",
            track="behavioral", length="short", role="Engineer", level="mid", plan=PLAN,
        )
    assert second is store.StartRefused.USER_BUSY


def test_daily_minutes_cap(app_store):
    interview_id = make_interview(app_store, "carol")
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, "live", now=store.utcnow() - timedelta(minutes=20))
        store.set_interview_status(db, interview_id, "completed")
        user = store.get_or_create_user(db, "https://issuer.test", "carol", "", "")
        refused = store.create_interview_unless_active(
            db, user_id=user.id, interview_id=store.new_interview_id(), room_name="mf-cap",
            daily_minutes_cap=30, planned_minutes=15, track="behavioral", length="short",
            role="Engineer", level="mid", plan=PLAN,
        )
        allowed = store.create_interview_unless_active(
            db, user_id=user.id, interview_id=store.new_interview_id(), room_name="mf-cap2",
            daily_minutes_cap=30, planned_minutes=8, track="behavioral", length="short",
            role="Engineer", level="mid", plan=PLAN,
        )
    assert refused is store.StartRefused.DAILY_LIMIT
    assert isinstance(allowed, store.Interview)


@pytest.mark.parametrize(
    ("memory_gib", "cores", "expected"),
    [
        (24, 2, 24),  # this machine kind: CPU decides (12 per core, measured)
        (2, 8, 6),  # little memory: 60 % of 2 GiB at 185 MiB each
        (0.1, 4, 1),  # never below one
    ],
)
def test_default_cap_is_the_smaller_of_what_memory_and_cores_hold(memory_gib, cores, expected):
    assert worker_manager.default_max_concurrent_interviews(int(memory_gib * 2**30), cores) == expected


def test_dispatch_mode_creates_the_room_and_a_dispatch_carrying_only_the_interview_id(settings, app_store):
    interview_id = make_interview(app_store)
    with FakeLiveKit() as livekit, app_store.session() as db:
        interview = store.get_interview(db, interview_id)
        values = {"livekit_url": livekit.ws_url, "livekit_api_key": livekit.api_key,
                  "livekit_api_secret": livekit.api_secret}
        worker_manager.DispatchLauncher()(interview, values)
        assert interview.room_name in livekit.rooms
        [dispatch] = livekit.dispatches
        created = livekit.requests.last(twirp_path("AgentDispatchService", "CreateDispatch"))
    assert dispatch.agent_name == worker_manager.AGENT_NAME == "mockflow-interviewer"
    assert dispatch.room == interview.room_name
    assert json.loads(dispatch.metadata) == {"interview_id": interview_id}
    assert created.authorization.startswith("Bearer ")


def test_dispatch_mode_with_a_wrong_secret_raises_and_dispatches_nothing(settings, app_store):
    interview_id = make_interview(app_store)
    with FakeLiveKit() as livekit, app_store.session() as db:
        values = {"livekit_url": livekit.ws_url, "livekit_api_key": livekit.api_key,
                  "livekit_api_secret": "not-the-secret-" + "x" * 20}
        with pytest.raises(livekit_api.TwirpError):
            worker_manager.DispatchLauncher()(store.get_interview(db, interview_id), values)
        assert livekit.dispatches == []


def _unreachable_livekit_values() -> dict[str, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    return {**VALUES, "livekit_url": f"ws://127.0.0.1:{closed_port}"}


def _real_plan() -> dict:
    return fsm.build_plan("behavioral", "short").to_dict()


@pytest.mark.parametrize("start", ["cold", "warm"])
def test_real_agent_reports_ready_and_takes_its_job(settings, app_store, spawned, start):
    interview_id = make_interview(app_store)
    with app_store.session() as db:
        store.get_interview(db, interview_id).plan = _real_plan()
    warm_settings = settings.model_copy(update={"warm_workers": 1 if start == "warm" else 0})
    launcher = worker_manager.SubprocessLauncher(warm_settings, app_store)
    if start == "warm":
        launcher.pool.refill()
        spawned.extend(process.popen for process in launcher.pool._idle)
        assert launcher.pool._idle[0].ready.wait(PROCESS_TIMEOUT_S), "the warm agent never reported ready"
    with app_store.session() as db:
        process = launcher(store.get_interview(db, interview_id), _unreachable_livekit_values())
    spawned.append(process.popen)
    assert process.ready.wait(PROCESS_TIMEOUT_S), "the agent never reported ready"
    assert process.popen.wait(PROCESS_TIMEOUT_S) == 0
    row = wait_for_status(app_store, interview_id, "failed")
    assert "LiveKit" in row.failure_reason
    assert row.worker_pid == process.pid
    launcher.close()


def test_workers_cli_sweeps_and_stops_all(app, runner, spawned):
    app_store = app.extensions["store"]
    settings = app.config["SETTINGS"]
    interview_id = make_interview(app_store)
    process = launch(settings, app_store, interview_id, "run", spawned)
    wait_for_status(app_store, interview_id, "live")
    swept = runner.invoke(args=["workers", "sweep"])
    assert swept.exit_code == 0 and "running: 1" in swept.output
    stopped = runner.invoke(args=["workers", "stop-all"])
    assert stopped.exit_code == 0
    assert process.popen.wait(PROCESS_TIMEOUT_S) == 0
    assert interview_row(app_store, interview_id).status == "interrupted"
