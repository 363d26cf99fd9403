"""Starting, limiting, supervising and reaping the agent processes (one per interview).

Subprocess mode (default): the web app starts `agent_worker.py` with `sys.executable`, in its own
session, with an allowlisted environment (none of the server's secrets), and hands it the job spec
on stdin. A warm pool keeps processes started in advance (imports done, Silero loaded, blocked on
stdin), so an interview does not pay the import cost. Processes outlive a restart of the web app:
the watchdog adopts them by heartbeat, reaps the dead, and ends the ones past their time limit.

Dispatch mode (`WORKER_MODE=dispatch`): nothing is spawned here; the app creates the room and an
explicit agent dispatch for `mockflow-interviewer`, with the interview id as the only metadata, and
agent hosts running `python agent_worker.py start` take it from there.

The agent's process protocol: it prints one JSON line `{"event": "ready"}` on stdout once it can
take a job, then reads the job spec (JSON) from stdin until EOF.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import aiohttp
import click
from livekit import api as livekit_api

import store
from config import PROJECT_ROOT, Settings
from livekit_tokens import agent_token
from security import redact

log = logging.getLogger("mockflow.workers")

AGENT_SCRIPT = PROJECT_ROOT / "agent_worker.py"
AGENT_NAME = "mockflow-interviewer"
ENVIRONMENT_ALLOWLIST = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV")
# The default cap, from BENCHMARKS.md: a live interview's process holds 183-185 MiB of PSS alone
# (bench/spawn.py), and 24 simulated interviews held on 2 cores while 32 did not (bench/capacity.py,
# without the WebRTC work a real room adds). Memory-wise the agents may use 60 % of the machine.
MEASURED_BYTES_PER_INTERVIEW = 185 * 1024 * 1024
MEMORY_SHARE_FOR_INTERVIEWS = 0.6
MEASURED_INTERVIEWS_PER_CORE = 12
READY_TIMEOUT_S = 60.0
TERM_GRACE_S = 10.0
ROOMS_FULL_MESSAGE = "All interview rooms are busy, try again in a few minutes."


def default_max_concurrent_interviews(memory_bytes: int | None = None, cores: int | None = None) -> int:
    """How many interviews this machine holds, by memory and by CPU, from the measured cost of one."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if cores is None:
        cores = len(os.sched_getaffinity(0))  # the cores this process may run on, as in a container
    by_memory = int(memory_bytes * MEMORY_SHARE_FOR_INTERVIEWS // MEASURED_BYTES_PER_INTERVIEW)
    return max(1, min(by_memory, cores * MEASURED_INTERVIEWS_PER_CORE))


def allowlisted_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: locale and paths only, never the server's own secrets."""
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in ENVIRONMENT_ALLOWLIST if name in source}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def process_start_time(pid: int) -> float | None:
    """When `pid` started (epoch seconds), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def is_same_process(pid: int | None, started_at: datetime | None, tolerance_s: float = 2.0) -> bool:
    """True only when `pid` is alive AND is the process that started at `started_at`.

    A pid reused by an unrelated process has a different start time, so it is never signalled.
    """
    if pid is None or started_at is None:
        return False
    actual = process_start_time(pid)
    return actual is not None and abs(actual - started_at.timestamp()) <= tolerance_s


def signal_process_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


@dataclass
class AgentProcess:
    """One spawned agent process and its output drain."""

    popen: subprocess.Popen
    started_at: datetime
    log_path: Path
    ready: threading.Event = field(default_factory=threading.Event)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def hand_job(self, job_spec: dict[str, Any]) -> None:
        """Write the job spec to stdin and close it: the agent starts the interview."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(job_spec).encode())
        self.popen.stdin.close()


def _drain(process: AgentProcess, stdout: IO[bytes]) -> None:
    """Copy the child's stdout, redacted, to its log file; note the protocol events."""
    with open(process.log_path, "a", encoding="utf-8") as log_file:
        for raw in iter(stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log_file.write(redact(line) + "\n")
            log_file.flush()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "event" in event:
                process.events.append(event)
                if event["event"] == "ready":
                    process.ready.set()
    stdout.close()


def spawn_agent(log_path: Path, command: list[str] | None = None) -> AgentProcess:
    """Start one agent process: its own session, allowlisted environment, output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_file = open(log_path, "ab")
    try:
        popen = subprocess.Popen(
            command or [sys.executable, str(AGENT_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            start_new_session=True,
            env=allowlisted_environment(),
            cwd=str(PROJECT_ROOT),
            close_fds=True,
        )
    finally:
        stderr_file.close()
    started = process_start_time(popen.pid)
    started_at = datetime.fromtimestamp(started, timezone.utc) if started else store.utcnow()
    process = AgentProcess(popen=popen, started_at=started_at, log_path=log_path)
    threading.Thread(target=_drain, args=(process, popen.stdout), daemon=True, name=f"agent-drain-{popen.pid}").start()
    return process


class WarmPool:
    """Agent processes started in advance and waiting, ready, on stdin."""

    def __init__(self, size: int, log_dir: Path, max_age_s: float, command: list[str] | None = None) -> None:
        self.size = size
        self.log_dir = log_dir
        self.max_age_s = max_age_s
        self.command = command
        self._idle: list[AgentProcess] = []
        self._lock = threading.Lock()
        self._refilling = threading.Lock()

    def take(self) -> AgentProcess | None:
        """A ready warm process, or None (the caller starts a cold one); refills in the background."""
        with self._lock:
            self._idle = [p for p in self._idle if p.alive()]
            ready = next((p for p in self._idle if p.ready.is_set()), None)
            if ready is not None:
                self._idle.remove(ready)
        self.refill_in_background()
        return ready

    def refill(self) -> None:
        """Replace dead or old warm processes and start new ones up to `size`."""
        if not self._refilling.acquire(blocking=False):
            return
        try:
            now = time.time()
            with self._lock:
                expired = [p for p in self._idle if not p.alive() or now - p.started_at.timestamp() > self.max_age_s]
                self._idle = [p for p in self._idle if p not in expired]
                missing = self.size - len(self._idle)
            for process in expired:
                self._stop(process)
            for _ in range(max(0, missing)):
                process = spawn_agent(self.log_dir / f"warm-{time.time_ns()}.log", self.command)
                with self._lock:
                    self._idle.append(process)
        finally:
            self._refilling.release()

    def refill_in_background(self) -> None:
        threading.Thread(target=self.refill, daemon=True, name="warm-pool-refill").start()

    @staticmethod
    def _stop(process: AgentProcess) -> None:
        if process.alive():
            signal_process_group(process.pid, signal.SIGTERM)
            try:
                process.popen.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                signal_process_group(process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the idle warm processes (running interviews are not in the pool)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for process in idle:
            self._stop(process)


def build_job_spec(interview: store.Interview, values: dict[str, str], database_url: str, log_dir: Path) -> dict[str, Any]:
    """What the agent needs, handed over on stdin only (never argv or environment)."""
    max_duration_s = int(interview.plan["max_duration_s"])
    return {
        "interview_id": interview.id,
        "livekit_url": values["livekit_url"],
        "agent_token": agent_token(
            values["livekit_api_key"], values["livekit_api_secret"], interview.room_name, interview.id, max_duration_s
        ),
        "database_url": database_url,
        "log_dir": str(log_dir),
        "providers": {
            "openai_api_key": values.get("openai", ""),
            "deepgram_api_key": values.get("deepgram", ""),
            "llm_base_url": values.get("llm_base_url", ""),
            "llm_model": values.get("llm_model", ""),
            "stt_base_url": values.get("stt_base_url", ""),
            "stt_model": values.get("stt_model", ""),
            "tts_base_url": values.get("tts_base_url", ""),
            "tts_model": values.get("tts_model", ""),
            "tts_voice": values.get("tts_voice", ""),
        },
    }


class SubprocessLauncher:
    """Starts one local agent process per interview, from the warm pool when it can."""

    def __init__(self, settings: Settings, app_store: store.Store, command: list[str] | None = None) -> None:
        self.settings = settings
        self.store = app_store
        self.log_dir = settings.instance_path / "logs"
        self.command = command
        self.pool = WarmPool(settings.warm_workers, self.log_dir, settings.warm_max_age_s, command)
        self.host = socket.gethostname()

    def __call__(self, interview: store.Interview, values: dict[str, str]) -> AgentProcess:
        """Hand the interview to an agent process and record it; the agent reports `live` itself."""
        job_spec = build_job_spec(interview, values, self.settings.sqlalchemy_url, self.log_dir)
        process = self.pool.take() if self.settings.warm_workers else None
        if process is None:
            process = spawn_agent(self.log_dir / f"interview-{interview.id}.out.log", self.command)
        try:
            process.hand_job(job_spec)
        except (BrokenPipeError, OSError):
            log.exception("agent process %s died before taking interview %s", process.pid, interview.id)
            with self.store.session() as db:
                store.set_interview_status(db, interview.id, "failed", "The interviewer could not be started. Please try again.")
            return process
        with self.store.session() as db:
            store.record_worker(db, interview.id, pid=process.pid, host=self.host, started_at=process.started_at)
        log.info("interview %s handed to agent pid %s", interview.id, process.pid)
        return process

    def close(self) -> None:
        self.pool.close()


class DispatchLauncher:
    """Creates the room and an explicit agent dispatch; agent hosts run `agent_worker.py start`."""

    def __init__(self, http_timeout_s: float = 10.0) -> None:
        self.http_timeout_s = http_timeout_s

    async def _dispatch(self, interview: store.Interview, values: dict[str, str]) -> None:
        url = values["livekit_url"].replace("wss://", "https://", 1).replace("ws://", "http://", 1)
        async with livekit_api.LiveKitAPI(
            url, values["livekit_api_key"], values["livekit_api_secret"],
            timeout=aiohttp.ClientTimeout(total=self.http_timeout_s),
        ) as client:
            await client.room.create_room(livekit_api.CreateRoomRequest(name=interview.room_name, empty_timeout=300))
            await client.agent_dispatch.create_dispatch(
                livekit_api.CreateAgentDispatchRequest(
                    agent_name=AGENT_NAME,
                    room=interview.room_name,
                    metadata=json.dumps({"interview_id": interview.id}),
                )
            )

    def __call__(self, interview: store.Interview, values: dict[str, str]) -> None:
        asyncio.run(self._dispatch(interview, values))

    def close(self) -> None:
        return None


@dataclass
class SweepReport:
    ended_for_time: list[str] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)


class Watchdog:
    """Ends interviews past their time limit, reaps dead agents, adopts live ones after a restart."""

    def __init__(
        self,
        settings: Settings,
        app_store: store.Store,
        clock: Callable[[], datetime] = store.utcnow,
        term_grace_s: float = TERM_GRACE_S,
    ) -> None:
        self.settings = settings
        self.term_grace_s = term_grace_s
        self.store = app_store
        self.clock = clock
        self.host = socket.gethostname()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _time_limit(self, interview: store.Interview) -> datetime | None:
        begun = interview.started_at or interview.worker_started_at
        if begun is None:
            return None
        max_duration_s = int(interview.plan["max_duration_s"])
        return begun + timedelta(seconds=max_duration_s + self.settings.interview_grace_s)

    def _terminate(self, interview: store.Interview) -> None:
        pid = interview.worker_pid
        if not is_same_process(pid, interview.worker_started_at):
            return
        signal_process_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.term_grace_s
        while time.monotonic() < deadline and is_same_process(pid, interview.worker_started_at):
            time.sleep(0.1)
        if is_same_process(pid, interview.worker_started_at):
            signal_process_group(pid, signal.SIGKILL)

    def sweep(self) -> SweepReport:
        """One pass over this host's running interviews (safe to run in several processes at once)."""
        report = SweepReport()
        now = self.clock()
        heartbeat_timeout = timedelta(seconds=self.settings.heartbeat_timeout_s)
        with self.store.session() as db:
            running = store.running_interviews_on_host(db, self.host)
        for interview in running:
            limit = self._time_limit(interview)
            if limit is not None and now > limit:
                self._terminate(interview)
                with self.store.session() as db:
                    if store.set_interview_status(db, interview.id, "interrupted", "time limit"):
                        report.ended_for_time.append(interview.id)
                continue
            alive = is_same_process(interview.worker_pid, interview.worker_started_at)
            last_sign = interview.heartbeat_at or interview.worker_started_at or interview.created_at
            if not alive and now - last_sign > heartbeat_timeout:
                with self.store.session() as db:
                    if store.set_interview_status(
                        db, interview.id, "interrupted", "The interviewer stopped unexpectedly. Your transcript so far is saved."
                    ):
                        report.reaped.append(interview.id)
            elif alive:
                report.adopted.append(interview.id)
        return report

    def stop_all(self) -> list[str]:
        """End every running interview on this host cleanly: SIGTERM, then SIGKILL if it stays."""
        with self.store.session() as db:
            running = store.running_interviews_on_host(db, self.host)
        ended = []
        for interview in running:
            self._terminate(interview)
            with self.store.session() as db:
                if store.set_interview_status(db, interview.id, "interrupted", "stopped by the operator"):
                    ended.append(interview.id)
        return ended

    def start(self, interval_s: float) -> None:
        """Run `sweep` every `interval_s` in a daemon thread, once per process."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.sweep()
                except Exception:
                    log.exception("watchdog sweep failed")

        self._thread = threading.Thread(target=loop, daemon=True, name="interview-watchdog")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def _register_cli(app) -> None:
    @app.cli.group("workers")
    def workers_group() -> None:
        """Agent processes."""

    @workers_group.command("sweep")
    def sweep_command() -> None:
        """End interviews past their limit and reap dead agents (for cron)."""
        report = Watchdog(app.config["SETTINGS"], app.extensions["store"]).sweep()
        click.echo(f"time limit: {len(report.ended_for_time)}, reaped: {len(report.reaped)}, running: {len(report.adopted)}")

    @workers_group.command("stop-all")
    def stop_all_command() -> None:
        """End every running interview on this host cleanly."""
        ended = Watchdog(app.config["SETTINGS"], app.extensions["store"]).stop_all()
        click.echo(f"stopped {len(ended)} interviews")


def _background_services_starter(app, settings: Settings, launcher) -> Callable[[], None]:
    """Start the warm pool and the watchdog on the first request, once per process.

    Not at app creation: `flask db upgrade`, a refused start-up or a test must not spawn agents.
    """
    started = threading.Event()
    lock = threading.Lock()

    def start_once() -> None:
        if started.is_set():
            return
        with lock:
            if started.is_set():
                return
            if isinstance(launcher, SubprocessLauncher) and settings.warm_workers:
                launcher.pool.refill_in_background()
                # Idle warm processes go with the app; running interviews live in their own
                # sessions and are left alone.
                atexit.register(launcher.close)
            if settings.worker_mode == "subprocess" and settings.watchdog_interval_s:
                watchdog = Watchdog(settings, app.extensions["store"])
                watchdog.start(settings.watchdog_interval_s)
                app.extensions["watchdog"] = watchdog
            started.set()

    return start_once


def init_app(app) -> None:
    """Choose the launcher for the start flow; background services start with the first request."""
    settings: Settings = app.config["SETTINGS"]
    app_store: store.Store = app.extensions["store"]
    if settings.worker_mode == "dispatch":
        launcher = DispatchLauncher()
    else:
        launcher = SubprocessLauncher(settings, app_store)
    app.extensions["worker_launcher"] = launcher
    app.extensions["max_concurrent_interviews"] = settings.max_concurrent_interviews or default_max_concurrent_interviews()
    if not app.testing:
        app.before_request(_background_services_starter(app, settings, launcher))
    _register_cli(app)
