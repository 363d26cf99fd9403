"""How many interviews one machine holds: N simulated interviews at once, each in its own process.

For N = 1, 2, 4, 8, 16, 24, 32, ... it starts N interview processes through worker_manager's
spawn_agent (bench/interview_process.py: agent_worker's interview logic and session, the simulated
candidate's microphone and speaker instead of a room), waits until all are ready, hands out the
jobs a little apart (so the turns are not in lockstep) and samples each process's CPU, RSS and PSS
until every interview has finished. The fake providers run in this process: one OpenAI fake for
all, one Deepgram fake per interview (each transcribes its own candidate).

It stops at the first N where the p95 response latency (end of speech -> first agent audio, finished
answers) exceeds N=1's by more than 100 ms, or where any agent audio frame underruns (arrives after
the 200 ms output queue RoomIO keeps has run dry: an audible gap). Candidate audio cannot underrun
in a room (rtc.AudioStream queues it without bound); how late the agent took it is reported, and
its effect shows in the latency.

    .venv/bin/python -m bench.capacity [--levels 1,2,4,8,16,24,32,48,64] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ensure_repo_on_path,
    format_table,
    machine_cpu_jiffies,
    machine_info,
    process_cpu_s,
    process_memory_kib,
    summarize,
    write_results,
)

ensure_repo_on_path()

import resource  # noqa: E402

from bench.interview_script import SCRIPTS  # noqa: E402
from bench.simulate import ARMS, PROFILES, fake_deepgram_for, fake_openai_for  # noqa: E402
from bench.spawn import ROOM_INPUT_FRAME_MS, READY_TIMEOUT_S, Lab  # noqa: E402
from bench.voice_io import SpeechSynthesizer  # noqa: E402
from worker_manager import AgentProcess, spawn_agent  # noqa: E402

CHILD_COMMAND = [sys.executable, "-m", "bench.interview_process"]
SAMPLE_INTERVAL_S = 0.5
LEVEL_TIMEOUT_S = 600.0
P95_GROWTH_LIMIT_MS = 100.0


@dataclass
class Child:
    """One interview process and what was sampled of it."""

    process: AgentProcess
    cpu_at_job_s: float = 0.0
    handed_at: float = 0.0
    memory: list[dict[str, int]] = field(default_factory=list)

    def result(self) -> dict[str, Any] | None:
        return next((event for event in self.process.events if event["event"] == "result"), None)


def _wait_all_ready(children: list[Child]) -> float:
    began = time.perf_counter()
    deadline = time.monotonic() + READY_TIMEOUT_S + 3.0 * len(children)
    for child in children:
        if not child.process.ready.wait(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"interview process {child.process.pid} never reported ready; see {child.process.log_path}")
    return time.perf_counter() - began


def run_level(count: int, args: argparse.Namespace, lab: Lab, audio_cache: Path) -> dict[str, Any]:
    """Run `count` interviews at once and summarise latency, underruns, CPU and memory."""
    script, profile = SCRIPTS[args.script], PROFILES[args.profile]
    rng = random.Random(count)
    with ExitStack() as stack:
        openai_fake = stack.enter_context(fake_openai_for(script, profile, args.tts_seconds_per_char))
        deepgrams = [stack.enter_context(fake_deepgram_for(script, profile)) for _ in range(count)]
        children = [Child(spawn_agent(lab.log_path(f"n{count}-{index}"), CHILD_COMMAND)) for index in range(count)]
        try:
            ready_s = _wait_all_ready(children)
            offsets = sorted(rng.uniform(0.0, args.stagger_s) for _ in range(count))
            parent_before = resource.getrusage(resource.RUSAGE_SELF)
            busy_before, total_before = machine_cpu_jiffies()
            began = time.perf_counter()
            for child, deepgram, offset in zip(children, deepgrams, offsets, strict=True):
                time.sleep(max(0.0, began + offset - time.perf_counter()))
                child.cpu_at_job_s = process_cpu_s(child.process.pid) or 0.0
                child.handed_at = time.perf_counter()
                child.process.hand_job({
                    "arm": args.arm, "profile": args.profile, "script": args.script,
                    "openai_base_url": openai_fake.base_url, "deepgram_listen_url": deepgram.listen_url,
                    "database_url": lab.database_url, "user_id": lab.user_id, "audio_cache_dir": str(audio_cache),
                    "frame_ms": args.frame_ms,
                })
            deadline = time.monotonic() + LEVEL_TIMEOUT_S
            while any(child.process.alive() for child in children) and time.monotonic() < deadline:
                for child in children:
                    if child.process.alive() and (memory := process_memory_kib(child.process.pid)):
                        child.memory.append(memory)
                time.sleep(SAMPLE_INTERVAL_S)
            wall_s = time.perf_counter() - began
            busy_after, total_after = machine_cpu_jiffies()
            parent_after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            for child in children:
                lab.stop(child.process)
    return _summarize_level(count, children, ready_s, wall_s,
                            machine_busy=(busy_after - busy_before) / max(1, total_after - total_before),
                            machine_busy_cpu_s=(busy_after - busy_before) / os.sysconf("SC_CLK_TCK"),
                            parent_cpu_s=(parent_after.ru_utime + parent_after.ru_stime)
                            - (parent_before.ru_utime + parent_before.ru_stime))


def _summarize_level(count: int, children: list[Child], ready_s: float, wall_s: float, *, machine_busy: float,
                     machine_busy_cpu_s: float, parent_cpu_s: float) -> dict[str, Any]:
    results = [child.result() for child in children]
    interviews_cpu_s = sum(result["process_cpu_s"] - child.cpu_at_job_s
                           for child, result in zip(children, results, strict=True) if result is not None)
    finished = [result for result in results if result is not None]
    turns = [turn for result in finished for turn in result["turns"]]
    answered = [turn for turn in turns if turn["kind"] != "pause"]
    cpu_per_interview = [
        (result["process_cpu_s"] - child.cpu_at_job_s) / result["wall_s"]
        for child, result in zip(children, results, strict=True) if result is not None and result["wall_s"]
    ]
    live_pss = [max(sample["pss_kib"] for sample in child.memory) / 1024 for child in children if child.memory]
    live_rss = [max(sample["rss_kib"] for sample in child.memory) / 1024 for child in children if child.memory]
    return {
        "interviews": count,
        "completed": len(finished),
        "all_ready_s": round(ready_s, 1),
        "wall_s": round(wall_s, 1),
        "finished_answers_first_audio_ms": summarize(turn["first_audio_ms"] for turn in answered),
        "pause_answers_first_audio_ms": summarize(turn["first_audio_ms"] for turn in turns if turn["kind"] == "pause"),
        "unanswered_turns": sum(turn["first_audio_ms"] is None for turn in turns),
        "false_interruptions": sum(turn["false_interruption"] for turn in turns if turn["kind"] == "pause"),
        "input_late_frames": sum(result["input_late_frames"] for result in finished),
        "input_max_lag_ms": max((result["input_max_lag_ms"] for result in finished), default=None),
        "output_underruns": sum(result["output_underruns"] for result in finished),
        "transcripts_match_script": all(result["transcripts_match_script"] for result in finished),
        "cpu_cores_per_interview": summarize(cpu_per_interview, digits=3),
        "peak_pss_mib_per_interview": summarize(live_pss, digits=1),
        "peak_rss_mib_per_interview": summarize(live_rss, digits=1),
        "sum_of_peak_pss_mib": round(sum(live_pss), 1),
        "machine_cpu_busy": round(machine_busy, 3),
        "interviews_cpu_s": round(interviews_cpu_s, 1),
        "fakes_cpu_s_in_parent": round(parent_cpu_s, 1),
        # Anything else running on the machine meanwhile (it competes with the interviews).
        "other_processes_cpu_s": round(machine_busy_cpu_s - interviews_cpu_s - parent_cpu_s, 1),
    }


def verdict(level: dict[str, Any], first: dict[str, Any]) -> str | None:
    """Why this level is past capacity, or None when it holds."""
    if level["completed"] < level["interviews"]:
        return f"{level['interviews'] - level['completed']} interview(s) did not finish"
    if level["output_underruns"]:
        return f"{level['output_underruns']} agent audio underrun(s)"
    p95, reference = level["finished_answers_first_audio_ms"]["p95"], first["finished_answers_first_audio_ms"]["p95"]
    if p95 is None or reference is None:
        return "no answered turns to measure"
    if p95 - reference > P95_GROWTH_LIMIT_MS:
        return f"p95 {p95} ms is {p95 - reference:.0f} ms over N=1 ({reference} ms)"
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    levels: list[dict[str, Any]] = []
    capacity = None
    stopped_because = "all levels held"
    with tempfile.TemporaryDirectory(prefix="mockflow-bench-capacity-") as temp:
        lab = Lab.open(Path(temp))
        audio_cache = lab.directory / "audio"
        synthesizer = SpeechSynthesizer(cache_dir=audio_cache)
        for answer in SCRIPTS[args.script]:
            for part in answer.parts:
                synthesizer.speak(part)
        try:
            for count in args.levels:
                level = run_level(count, args, lab, audio_cache)
                levels.append(level)
                reason = verdict(level, levels[0])
                level["verdict"] = reason or "holds"
                print(_level_line(level), flush=True)
                if reason is not None:
                    stopped_because = f"N={count}: {reason}"
                    break
                capacity = count
        finally:
            lab.app_store.dispose()
    return {
        "settings": {"arm": args.arm, "profile": args.profile, "script": args.script, "stagger_s": args.stagger_s,
                     "frame_ms": args.frame_ms,
                     "levels": args.levels, "p95_growth_limit_ms": P95_GROWTH_LIMIT_MS},
        "capacity": capacity,
        "stopped_because": stopped_because,
        "levels": levels,
    }


def _level_line(level: dict[str, Any]) -> str:
    latency = level["finished_answers_first_audio_ms"]
    return (f"N={level['interviews']}: p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
            f"cpu/interview {level['cpu_cores_per_interview']['mean']} cores, "
            f"PSS/interview {level['peak_pss_mib_per_interview']['mean']} MiB, machine busy "
            f"{level['machine_cpu_busy']:.0%}, underruns {level['output_underruns']}, "
            f"input lag max {level['input_max_lag_ms']} ms"
            f" -> {level['verdict']}")


def _table(document: dict[str, Any]) -> str:
    rows = []
    for level in document["levels"]:
        latency = level["finished_answers_first_audio_ms"]
        rows.append([level["interviews"], latency["p50"], latency["p95"], level["output_underruns"],
                     level["input_max_lag_ms"],
                     level["cpu_cores_per_interview"]["mean"], level["peak_pss_mib_per_interview"]["mean"],
                     level["peak_rss_mib_per_interview"]["mean"], f"{level['machine_cpu_busy']:.0%}",
                     level["verdict"]])
    return format_table(["N", "p50 ms", "p95 ms", "underruns", "input lag max ms", "cores/interview", "PSS MiB", "RSS MiB",
                         "machine busy", "verdict"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=lambda value: [int(n) for n in value.split(",")],
                        default=[1, 2, 4, 8, 16, 24, 32, 48, 64])
    parser.add_argument("--arm", choices=sorted(ARMS), default="mockflow")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="realistic")
    parser.add_argument("--script", choices=sorted(SCRIPTS), default="capacity")
    parser.add_argument("--stagger-s", type=float, default=4.0, help="spread of the interviews' start times")
    parser.add_argument("--tts-seconds-per-char", type=float, default=0.06)
    parser.add_argument("--frame-ms", type=int, default=ROOM_INPUT_FRAME_MS,
                        help="the candidate's audio frames (default: what RoomIO hands the agent in a room)")
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info()
    document = run(args)
    print(_table(document))
    print(f"capacity: {document['capacity']} concurrent interviews ({document['stopped_because']})")
    print(f"results: {write_results('capacity', document, args.json, machine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
