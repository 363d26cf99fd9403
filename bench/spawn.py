"""Start time and memory of the real agent_worker.py, through worker_manager.

Cold start: `spawn_agent()` until the process prints `{"event": "ready"}` (imports done, Silero
loaded, blocked on stdin). Warm start: a process the warm pool started earlier is already ready;
the figure is `WarmPool.take()` plus the time from handing it the job spec until it dials the
interview's LiveKit server. No LiveKit server runs here, so the "server" is a TCP listener on
loopback that notes the moment the agent connects and hangs up; the agent then records the
failure and exits, as it would with an unreachable server.

Memory: RSS and PSS (/proc/<pid>/smaps_rollup) of an idle ready agent, and of a live interview
process (bench/interview_process.py running agent_worker's interview logic with the simulated
candidate, providers faked by this process), sampled through the interview. For comparison, the
PSS of children forked from a process that already imported agent_worker, idle and running the same
live interview (a fork-based warm pool, which worker_manager does not use).

    .venv/bin/python -m bench.spawn [--starts 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ensure_repo_on_path, format_table, machine_info, process_memory_kib, summarize, write_results

ensure_repo_on_path()

import agent_worker  # noqa: E402
import store  # noqa: E402
import worker_manager  # noqa: E402
from livekit.agents import room_io  # noqa: E402
from bench.interview_script import SCRIPTS  # noqa: E402
from bench.simulate import (  # noqa: E402
    PROFILES,
    ProviderEndpoints,
    create_interview,
    fake_deepgram_for,
    fake_openai_for,
    open_store,
    simulate_interview,
)
from bench.voice_io import SpeechSynthesizer  # noqa: E402
from worker_manager import AgentProcess, WarmPool, spawn_agent  # noqa: E402

READY_TIMEOUT_S = 60.0
DIAL_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0
MEMORY_SAMPLE_INTERVAL_S = 0.25
LIVE_INTERVIEW_TIMEOUT_S = 300.0
# In a room the agent hears the candidate through RoomIO, which hands it frames of this length; the
# processes that stand in for live interviews get theirs the same way.
ROOM_INPUT_FRAME_MS = room_io.AudioInputOptions().frame_size_ms


class DialListener:
    """A TCP listener on loopback that stands in for a LiveKit server: it notes each connection's
    arrival time and closes it."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.arrivals: list[float] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="dial-listener")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while True:
            try:
                connection, _address = self._socket.accept()
            except OSError:
                return
            arrived = time.perf_counter()
            connection.close()
            with self._arrived:
                self.arrivals.append(arrived)
                self._arrived.notify_all()

    def wait_after(self, moment: float, timeout_s: float) -> float | None:
        """The first arrival at or after `moment`, waiting up to `timeout_s`."""
        def first() -> float | None:
            return next((arrival for arrival in self.arrivals if arrival >= moment), None)

        with self._arrived:
            self._arrived.wait_for(lambda: first() is not None, timeout_s)
            return first()

    def close(self) -> None:
        self._socket.close()


@dataclass
class Lab:
    """A temporary store with interviews to hand out, and a place for logs."""

    directory: Path
    app_store: store.Store
    user_id: int

    @classmethod
    def open(cls, directory: Path) -> Lab:
        app_store, user_id = open_store(directory)
        return cls(directory=directory, app_store=app_store, user_id=user_id)

    @property
    def database_url(self) -> str:
        return self.app_store.url

    def job_spec(self, livekit_url: str) -> dict[str, Any]:
        """A real agent_worker job spec for a new interview, pointing at `livekit_url`."""
        interview_id = create_interview(self.app_store, self.user_id)
        return {
            "interview_id": interview_id,
            "database_url": self.database_url,
            "livekit_url": livekit_url,
            "agent_token": "bench-token-no-server",
            "log_dir": str(self.directory / "logs"),
            "providers": {},
        }

    def log_path(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}-{time.time_ns()}.log"

    def stop(self, process: AgentProcess) -> None:
        if process.alive():
            worker_manager.signal_process_group(process.pid, signal.SIGTERM)
            try:
                process.popen.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker_manager.signal_process_group(process.pid, signal.SIGKILL)
                process.popen.wait()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def measure_cold(lab: Lab, listener: DialListener, starts: int) -> dict[str, Any]:
    """spawn_agent -> ready, and for the same processes ready -> job handed -> dial."""
    ready_ms, join_ms, idle_memory = [], [], []
    for _ in range(starts):
        began = time.perf_counter()
        process = spawn_agent(lab.log_path("cold"))
        if not process.ready.wait(READY_TIMEOUT_S):
            lab.stop(process)
            raise RuntimeError(f"agent {process.pid} did not report ready; see {process.log_path}")
        ready_ms.append(_ms(time.perf_counter() - began))
        idle_memory.append(process_memory_kib(process.pid))
        spec = lab.job_spec(listener.url)
        handed = time.perf_counter()
        process.hand_job(spec)
        dialled = listener.wait_after(handed, DIAL_TIMEOUT_S)
        join_ms.append(_ms(dialled - began) if dialled else None)
        process.popen.wait(timeout=EXIT_TIMEOUT_S)
    return {
        "spawn_to_ready_samples_ms": ready_ms,
        "spawn_to_ready_ms": summarize(ready_ms),
        "spawn_to_dial_ms": summarize(join_ms),
        **{f"idle_ready_{kind}_mib": summarize((m[f"{kind}_kib"] / 1024 for m in idle_memory if m), digits=1)
           for kind in ("rss", "pss", "anonymous")},
    }


def measure_warm(lab: Lab, listener: DialListener, starts: int) -> dict[str, Any]:
    """WarmPool.take() of a ready process, then job handed -> dial."""
    take_ms, hand_to_dial_ms, total_ms = [], [], []
    pool = WarmPool(size=1, log_dir=lab.directory / "logs", max_age_s=3600)
    try:
        for _ in range(starts):
            pool.refill()
            process = _take_when_ready(pool)
            took = process.took_s
            spec = lab.job_spec(listener.url)
            handed = time.perf_counter()
            process.agent.hand_job(spec)
            dialled = listener.wait_after(handed, DIAL_TIMEOUT_S)
            take_ms.append(_ms(took))
            hand_to_dial_ms.append(_ms(dialled - handed) if dialled else None)
            total_ms.append(_ms(took + (dialled - handed)) if dialled else None)
            process.agent.popen.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        pool.close()
    return {
        "take_ms": summarize(take_ms, digits=3),
        "job_to_dial_ms": summarize(hand_to_dial_ms),
        "warm_start_ms": summarize(total_ms),
        "warm_start_samples_ms": total_ms,
    }


@dataclass
class _Taken:
    agent: AgentProcess
    took_s: float


def _take_when_ready(pool: WarmPool) -> _Taken:
    """Ask the pool until it hands out a ready process; time only the call that succeeds."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        began = time.perf_counter()
        process = pool.take()
        took = time.perf_counter() - began
        if process is not None:
            return _Taken(agent=process, took_s=took)
        time.sleep(0.05)  # the pool's process is still importing; nothing to wait on from outside
    raise RuntimeError("the warm pool never had a ready process")


def measure_live_interview(lab: Lab, script_name: str, profile_name: str) -> dict[str, Any]:
    """RSS/PSS of one live simulated interview process, sampled until it finishes."""
    script, profile = SCRIPTS[script_name], PROFILES[profile_name]
    audio_cache = lab.directory / "audio"
    synthesizer = SpeechSynthesizer(cache_dir=audio_cache)
    for answer in script:
        for part in answer.parts:
            synthesizer.speak(part)
    samples: list[dict[str, int]] = []
    with fake_openai_for(script, profile, 0.06) as openai_fake, fake_deepgram_for(script, profile) as deepgram_fake:
        process = spawn_agent(lab.log_path("live"), [sys.executable, "-m", "bench.interview_process"])
        if not process.ready.wait(READY_TIMEOUT_S):
            lab.stop(process)
            raise RuntimeError(f"interview process did not report ready; see {process.log_path}")
        process.hand_job({
            "arm": "mockflow", "profile": profile_name, "script": script_name,
            "openai_base_url": openai_fake.base_url, "deepgram_listen_url": deepgram_fake.listen_url,
            "database_url": lab.database_url, "user_id": lab.user_id, "audio_cache_dir": str(audio_cache),
            "frame_ms": ROOM_INPUT_FRAME_MS,
        })
        deadline = time.monotonic() + LIVE_INTERVIEW_TIMEOUT_S
        while process.alive() and time.monotonic() < deadline:
            memory = process_memory_kib(process.pid)
            if memory:
                samples.append(memory)
            time.sleep(MEMORY_SAMPLE_INTERVAL_S)
        lab.stop(process)
    result = next((event for event in process.events if event["event"] == "result"), None)
    if result is None or not samples:
        raise RuntimeError(f"the live interview did not finish; see {process.log_path}")
    # The first samples are the process starting up; "live" is from the first answer on.
    live = samples[len(samples) // 4:]
    return {
        "script": script_name,
        "profile": profile_name,
        "peak_rss_mib": round(max(s["rss_kib"] for s in samples) / 1024, 1),
        "peak_pss_mib": round(max(s["pss_kib"] for s in samples) / 1024, 1),
        "peak_anonymous_mib": round(max(s["anonymous_kib"] for s in samples) / 1024, 1),
        "median_live_pss_mib": round(sorted(s["pss_kib"] for s in live)[len(live) // 2] / 1024, 1),
        "samples": len(samples),
        "interview_wall_s": result["wall_s"],
        "interview_cpu_s": result["cpu_s"],
        "process_cpu_s": result["process_cpu_s"],
        "turns_answered": sum(turn["first_audio_ms"] is not None for turn in result["turns"]),
        "turns": len(result["turns"]),
    }


def measure_forked_idle(children: int) -> dict[str, Any]:
    """What a fork-based warm pool would hold: children forked from a process that has imported
    agent_worker and loaded Silero (as agent_worker does before `ready`), idle, sharing its pages
    copy-on-write. Run before this process starts any thread: forking a threaded process is unsafe."""
    agent_worker.load_vad()
    gc.collect()
    gc.freeze()  # keep the collector from writing to (and so copying) the shared objects
    forked: list[tuple[int, int]] = []
    for _ in range(children):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            for _sibling, sibling_write_end in forked:
                os.close(sibling_write_end)
            os.close(write_end)
            os.read(read_end, 1)  # idle until the parent lets go, like a warm process on stdin
            os._exit(0)
        os.close(read_end)
        forked.append((pid, write_end))
    parent = process_memory_kib(os.getpid())
    memory = [process_memory_kib(pid) for pid, _ in forked]
    for _pid, write_end in forked:
        os.close(write_end)
    for pid, _write_end in forked:
        os.waitpid(pid, 0)
    gc.unfreeze()
    return {
        "children": children,
        "child_pss_mib": summarize((m["pss_kib"] / 1024 for m in memory if m), digits=1),
        "child_rss_mib": summarize((m["rss_kib"] / 1024 for m in memory if m), digits=1),
        "parent_pss_mib": round(parent["pss_kib"] / 1024, 1) if parent else None,
    }


def measure_forked_live(lab: Lab, script_name: str, profile_name: str) -> dict[str, Any]:
    """RSS/PSS of the same live simulated interview as `measure_live_interview`, in a child forked
    from this process (which has imported agent_worker and loaded the VAD): what a fork-based warm
    pool would hold per live interview. The fork happens before this process starts any thread; the
    fakes start afterwards, and the child learns their addresses through a pipe."""
    script = SCRIPTS[script_name]
    synthesizer = SpeechSynthesizer(cache_dir=lab.directory / "audio")
    for answer in script:
        for part in answer.parts:
            synthesizer.speak(part)
    gc.collect()
    gc.freeze()
    job_read, job_write = os.pipe()
    result_read, result_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(job_write)
        os.close(result_read)
        exit_code = 1
        try:
            with os.fdopen(job_read, "rb") as job_file:
                endpoints = ProviderEndpoints(**json.loads(job_file.read()))
            exit_code = _run_forked_interview(lab.database_url, lab.user_id, script_name, profile_name,
                                              synthesizer, endpoints, result_write)
        finally:
            os._exit(exit_code)
    os.close(job_read)
    os.close(result_write)
    gc.unfreeze()
    samples: list[dict[str, int]] = []
    profile = PROFILES[profile_name]
    with fake_openai_for(script, profile, 0.06) as openai_fake, fake_deepgram_for(script, profile) as deepgram_fake:
        with os.fdopen(job_write, "wb") as job_file:
            job_file.write(json.dumps({"openai_base_url": openai_fake.base_url,
                                       "deepgram_listen_url": deepgram_fake.listen_url}).encode())
        deadline = time.monotonic() + LIVE_INTERVIEW_TIMEOUT_S
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            memory = process_memory_kib(pid)
            if memory:
                samples.append(memory)
            time.sleep(MEMORY_SAMPLE_INTERVAL_S)
    with os.fdopen(result_read, "rb") as result_file:
        result = json.loads(result_file.read() or b"null")
    if result is None or not samples:
        raise RuntimeError("the forked live interview did not finish")
    return {
        "peak_rss_mib": round(max(s["rss_kib"] for s in samples) / 1024, 1),
        "peak_pss_mib": round(max(s["pss_kib"] for s in samples) / 1024, 1),
        "turns_answered": sum(turn["first_audio_ms"] is not None for turn in result["turns"]),
        "turns": len(result["turns"]),
    }


def _run_forked_interview(database_url: str, user_id: int, script_name: str, profile_name: str,
                          synthesizer: SpeechSynthesizer, endpoints: ProviderEndpoints, result_fd: int) -> int:
    """The forked child's work: one simulated interview; its result as JSON on `result_fd`."""
    app_store = store.Store(database_url)  # never the parent's engine: its connections are not ours
    try:
        result = asyncio.run(simulate_interview("mockflow", profile_name, SCRIPTS[script_name], synthesizer,
                                                app_store, user_id, endpoints, ROOM_INPUT_FRAME_MS))
    finally:
        app_store.dispose()
    with os.fdopen(result_fd, "wb") as result_file:
        result_file.write(json.dumps(result.as_dict()).encode())
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mockflow-bench-spawn-") as temp:
        forked = measure_forked_idle(args.forked_children)
        lab = Lab.open(Path(temp))
        forked["live_interview"] = measure_forked_live(lab, args.live_script, args.live_profile)
        listener = DialListener()
        try:
            cold = measure_cold(lab, listener, args.starts)
            warm = measure_warm(lab, listener, args.starts)
            live = measure_live_interview(lab, args.live_script, args.live_profile)
        finally:
            listener.close()
            lab.app_store.dispose()
    return {"settings": {"starts": args.starts}, "cold": cold, "warm": warm, "live_interview": live,
            "forked_idle": forked}


def _table(document: dict[str, Any]) -> str:
    cold, warm, live = document["cold"], document["warm"], document["live_interview"]
    rows = [
        ["cold: spawn_agent -> ready", cold["spawn_to_ready_ms"]["p50"], cold["spawn_to_ready_ms"]["p95"], "ms"],
        ["cold: spawn_agent -> dials LiveKit", cold["spawn_to_dial_ms"]["p50"], cold["spawn_to_dial_ms"]["p95"], "ms"],
        ["warm: WarmPool.take()", warm["take_ms"]["p50"], warm["take_ms"]["p95"], "ms"],
        ["warm: job handed -> dials LiveKit", warm["job_to_dial_ms"]["p50"], warm["job_to_dial_ms"]["p95"], "ms"],
        ["warm start (take + job -> dial)", warm["warm_start_ms"]["p50"], warm["warm_start_ms"]["p95"], "ms"],
        ["idle ready agent RSS", cold["idle_ready_rss_mib"]["p50"], cold["idle_ready_rss_mib"]["p95"], "MiB"],
        ["idle ready agent PSS", cold["idle_ready_pss_mib"]["p50"], cold["idle_ready_pss_mib"]["p95"], "MiB"],
        ["live interview peak RSS", live["peak_rss_mib"], None, "MiB"],
        ["live interview peak PSS", live["peak_pss_mib"], None, "MiB"],
        ["live interview peak anonymous", live["peak_anonymous_mib"], None, "MiB"],
        ["idle forked child PSS (not shipped)", document["forked_idle"]["child_pss_mib"]["p50"],
         document["forked_idle"]["child_pss_mib"]["p95"], "MiB"],
        ["live interview in a forked child, peak PSS (not shipped)",
         document["forked_idle"]["live_interview"]["peak_pss_mib"], None, "MiB"],
    ]
    return format_table(["measure", "p50 (or value)", "p95", "unit"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=10, help="cold and warm starts each (at least 10)")
    parser.add_argument("--forked-children", type=int, default=4, help="idle children for the fork comparison")
    parser.add_argument("--live-script", default="capacity", choices=sorted(SCRIPTS))
    parser.add_argument("--live-profile", default="realistic", choices=sorted(PROFILES))
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info()
    document = run(args)
    print(_table(document))
    print(f"results: {write_results('spawn', document, args.json, machine)}")
    print(json.dumps({"live_interview": document["live_interview"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
