"""Interview tracks, lengths, plans and the timing engine that moves an interview along.

Pure: no I/O, and the clock is injected, so every timeout can be driven by a fake clock in tests.

A track is an ordered list of stages (greeting first, closing last). `build_plan` turns a track and
a length into an `InterviewPlan` with whole-second limits per stage:

    min_s   the interviewer may not move on earlier (stops a rushed LLM from skipping a stage)
    soft_s  the interviewer is nudged to start wrapping the stage up
    budget_s the planned time of the stage
    hard_s  the stage is forced along (or, in closing, the interview ends)

`InterviewState` applies a plan to a running interview: an agent loop calls `due_action()` every few
seconds and acts on the answer, so every stage, the greeting included, always ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

TRACKS: dict[str, str] = {
    "intro": "Intro call",
    "behavioral": "Behavioral",
    "technical": "Technical",
}

LENGTHS: dict[str, tuple[str, int]] = {
    "short": ("Short", 8),
    "standard": ("Standard", 15),
    "long": ("Long", 25),
}

TRANSITION_REASONS = ("tool", "timeout", "candidate", "end")

STANDARD_MINUTES = LENGTHS["standard"][1]
# Saying hello and goodbye takes the same time in any length; only the stages between them scale.
FIXED_STAGES = frozenset({"greeting", "closing"})
SOFT_FRACTION = 0.8
HARD_GRACE_FRACTION = 0.2
HARD_GRACE_MIN_S = 15
# The margin exceeds the sum of the per-stage graces, so an interview that runs every stage to its
# hard limit still reaches and finishes its closing before the hard maximum duration.
MAX_DURATION_MARGIN_FRACTION = 0.25
MAX_DURATION_MARGIN_MIN_S = 180


@dataclass(frozen=True)
class StageSpec:
    """A stage as defined in a track, with its time at the standard length."""

    key: str
    title: str
    objective: str
    standard_minutes: float
    min_fraction: float


_GREETING = StageSpec(
    "greeting",
    "Greeting",
    "Welcome the candidate, explain the format of the interview and check they are ready to begin.",
    1.5,
    0.25,
)
_CLOSING = StageSpec(
    "closing",
    "Closing",
    "Take one last question from the candidate, explain what happens next and say goodbye.",
    1.0,
    0.0,
)

TRACK_STAGES: dict[str, tuple[StageSpec, ...]] = {
    "intro": (
        _GREETING,
        StageSpec(
            "self_introduction",
            "Career story",
            "Hear a concise walk through the candidate's career so far and their current situation.",
            3.5,
            0.5,
        ),
        StageSpec(
            "motivation",
            "Motivation and fit",
            "Learn why the candidate is looking for a change and what draws them to this role and company.",
            4.0,
            0.5,
        ),
        StageSpec(
            "practicalities",
            "Practicalities",
            "Cover availability, preferred way of working and expectations, as a first recruiter call would.",
            3.0,
            0.5,
        ),
        StageSpec(
            "candidate_questions",
            "Candidate's questions",
            "Invite the candidate's questions about the role and the process and answer them honestly.",
            2.0,
            0.25,
        ),
        _CLOSING,
    ),
    "behavioral": (
        _GREETING,
        StageSpec(
            "self_introduction",
            "Self-introduction",
            "Hear the candidate's background in their own words and what brings them to this role.",
            3.0,
            0.5,
        ),
        StageSpec(
            "past_experience",
            "Past experience",
            "Explore one or two real past situations in depth: the situation, the task, the candidate's "
            "own actions and the result.",
            5.0,
            0.5,
        ),
        StageSpec(
            "company_fit",
            "Company and role fit",
            "Understand why the candidate wants this role and how they would work with this team and "
            "company.",
            4.0,
            0.5,
        ),
        _CLOSING,
    ),
    "technical": (
        _GREETING,
        StageSpec(
            "self_introduction",
            "Self-introduction",
            "Hear a short summary of the candidate's technical background and the work closest to this role.",
            2.0,
            0.5,
        ),
        StageSpec(
            "deep_dive",
            "Technical deep dive",
            "Dig into one project the candidate worked on: the design, the decisions, the trade-offs and "
            "what they would change.",
            4.0,
            0.5,
        ),
        StageSpec(
            "fundamentals",
            "Core concepts",
            "Check the candidate's grasp of core concepts for the role by having them explain ideas aloud "
            "in their own words.",
            3.5,
            0.5,
        ),
        StageSpec(
            "problem_solving",
            "Problem solving",
            "Pose a realistic scenario from the role and have the candidate reason through it aloud, "
            "without writing code.",
            3.0,
            0.5,
        ),
        _CLOSING,
    ),
}


def _whole(seconds: float) -> int:
    """Round half up to whole seconds (Python's round() would round 22.5 to 22)."""
    return int(seconds + 0.5)


@dataclass(frozen=True)
class StagePlan:
    """One stage of a plan, with its limits in whole seconds from the start of the stage."""

    key: str
    title: str
    objective: str
    budget_s: int
    min_s: int
    soft_s: int
    hard_s: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StagePlan:
        """Rebuild a stage from `to_dict()` output; ValueError when a field is missing or mistyped."""
        try:
            stage = cls(
                key=_text(data["key"]),
                title=_text(data["title"]),
                objective=_text(data["objective"]),
                budget_s=_seconds(data["budget_s"]),
                min_s=_seconds(data["min_s"]),
                soft_s=_seconds(data["soft_s"]),
                hard_s=_seconds(data["hard_s"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed stage: {error!r}") from error
        if not stage.min_s <= stage.soft_s <= stage.hard_s or stage.budget_s > stage.hard_s:
            raise ValueError(f"stage {stage.key!r} has limits out of order")
        return stage


@dataclass(frozen=True)
class InterviewPlan:
    """The stages of one interview with their limits, the total budget and the hard maximum duration."""

    track: str
    length: str
    stages: tuple[StagePlan, ...]
    total_budget_s: int
    max_duration_s: int

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(stage.key for stage in self.stages)

    def index_of(self, key: str) -> int:
        """Position of the stage `key`; ValueError when the plan has no such stage."""
        try:
            return self.keys.index(key)
        except ValueError:
            raise ValueError(f"the {self.track} plan has no stage {key!r}") from None

    def stage(self, key: str) -> StagePlan:
        return self.stages[self.index_of(key)]

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict, as stored with the interview and sent to the agent and browser."""
        return {
            "track": self.track,
            "length": self.length,
            "stages": [stage.to_dict() for stage in self.stages],
            "total_budget_s": self.total_budget_s,
            "max_duration_s": self.max_duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InterviewPlan:
        """Rebuild a plan from `to_dict()` output; ValueError when it is malformed."""
        try:
            raw_stages = data["stages"]
            if not isinstance(raw_stages, list) or not raw_stages:
                raise ValueError("a plan needs a non-empty list of stages")
            plan = cls(
                track=_text(data["track"]),
                length=_text(data["length"]),
                stages=tuple(StagePlan.from_dict(stage) for stage in raw_stages),
                total_budget_s=_seconds(data["total_budget_s"]),
                max_duration_s=_seconds(data["max_duration_s"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed plan: {error!r}") from error
        if plan.stages[0].key != "greeting" or plan.stages[-1].key != "closing":
            raise ValueError("a plan starts with greeting and ends with closing")
        if len(set(plan.keys)) != len(plan.keys):
            raise ValueError("a plan's stage keys must be unique")
        return plan


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected whole non-negative seconds, got {value!r}")
    return value


def build_plan(track: str, length: str) -> InterviewPlan:
    """The plan for a track at a length: each stage's budget and limits, the total and the maximum.

    Greeting and closing keep their standard time; the stages between them share what is left of
    the length's minutes, so the standard length uses each track's standard minutes exactly.
    """
    if track not in TRACK_STAGES:
        raise ValueError(f"unknown track {track!r}; choose one of {', '.join(TRACKS)}")
    if length not in LENGTHS:
        raise ValueError(f"unknown length {length!r}; choose one of {', '.join(LENGTHS)}")
    specs = TRACK_STAGES[track]
    fixed_s = sum(spec.standard_minutes * 60 for spec in specs if spec.key in FIXED_STAGES)
    target_s = LENGTHS[length][1] * 60
    scale = (target_s - fixed_s) / (STANDARD_MINUTES * 60 - fixed_s)
    stages = []
    for spec in specs:
        budget = _whole(spec.standard_minutes * 60 * (1 if spec.key in FIXED_STAGES else scale))
        stages.append(
            StagePlan(
                key=spec.key,
                title=spec.title,
                objective=spec.objective,
                budget_s=budget,
                min_s=_whole(budget * spec.min_fraction),
                soft_s=_whole(budget * SOFT_FRACTION),
                hard_s=budget + max(HARD_GRACE_MIN_S, _whole(budget * HARD_GRACE_FRACTION)),
            )
        )
    total = sum(stage.budget_s for stage in stages)
    margin = max(MAX_DURATION_MARGIN_MIN_S, _whole(total * MAX_DURATION_MARGIN_FRACTION))
    return InterviewPlan(
        track=track,
        length=length,
        stages=tuple(stages),
        total_budget_s=total,
        max_duration_s=total + margin,
    )


class Action(StrEnum):
    """What the agent loop should do now."""

    NONE = "none"
    NUDGE = "nudge"  # soft limit passed: start wrapping this stage up (reported once per stage)
    FORCE_TRANSITION = "force_transition"  # hard limit passed: move on now, with reason "timeout"
    END = "end"  # closing's hard limit or the interview's maximum duration passed: end now


@dataclass(frozen=True)
class Verdict:
    """Whether something is allowed now, and why, in words the interviewer LLM can act on."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class Transition:
    """A stage change: `to_stage` is empty when the interview ended. `at` is clock time,
    `elapsed_s` seconds since the interview started."""

    from_stage: str
    to_stage: str
    reason: str
    at: float
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TransitionRefused(Exception):
    """The requested stage change is not allowed now; the message says why."""


@dataclass
class InterviewState:
    """A running interview against its plan. The interview starts when the state is created.

    `clock` returns monotonic seconds; inject a fake one in tests.
    """

    plan: InterviewPlan
    clock: Callable[[], float]
    index: int = field(default=0, init=False)
    started_at: float = field(init=False)
    stage_started_at: dict[str, float] = field(default_factory=dict, init=False)
    transitions: list[Transition] = field(default_factory=list, init=False)
    end_reason: str | None = field(default=None, init=False)
    _nudged: set[int] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        self.stage_started_at[self.current.key] = self.started_at

    @property
    def current(self) -> StagePlan:
        return self.plan.stages[self.index]

    @property
    def in_closing(self) -> bool:
        return self.index == len(self.plan.stages) - 1

    @property
    def finished(self) -> bool:
        return self.end_reason is not None

    def elapsed(self) -> float:
        """Seconds since the interview started."""
        return self.clock() - self.started_at

    def stage_elapsed(self) -> float:
        """Seconds since the current stage started."""
        return self.clock() - self.stage_started_at[self.current.key]

    def stage_deadline(self) -> float:
        """Clock time of the current stage's soft limit, for the candidate's countdown."""
        return self.stage_started_at[self.current.key] + self.current.soft_s

    def next_stage(self) -> StagePlan | None:
        """The stage after the current one, or None in closing."""
        return None if self.in_closing else self.plan.stages[self.index + 1]

    def can_advance(self) -> Verdict:
        """May the interviewer move on now? Only after the stage's minimum time, and never from closing."""
        if self.finished:
            return Verdict(False, "the interview has already ended")
        if self.in_closing:
            return Verdict(
                False,
                "this is the closing stage and there is no next stage; say goodbye, then call end_interview",
            )
        ran = int(self.stage_elapsed())
        minimum = self.current.min_s
        if ran < minimum:
            return Verdict(
                False,
                f"the stage has run {ran} s; stay at least {minimum} s. Keep going with the "
                f"{self.current.title} stage: follow up on the last answer or ask another question",
            )
        return Verdict(True, f"the stage has run {ran} s, past its minimum of {minimum} s")

    def can_end(self) -> Verdict:
        """May the interviewer end the interview now? Only in the closing stage."""
        if self.finished:
            return Verdict(False, "the interview has already ended")
        if not self.in_closing:
            return Verdict(
                False,
                f"the interview is in the {self.current.title} stage; it can only end from the closing "
                "stage, after saying goodbye",
            )
        return Verdict(True, "the interview is in its closing stage")

    def due_action(self) -> Action:
        """What the agent loop should do now. NUDGE is reported once per stage; FORCE_TRANSITION and
        END keep being reported until the agent advances or finishes."""
        if self.finished:
            return Action.NONE
        if self.elapsed() >= self.plan.max_duration_s:
            return Action.END
        ran = self.stage_elapsed()
        if ran >= self.current.hard_s:
            return Action.END if self.in_closing else Action.FORCE_TRANSITION
        if ran >= self.current.soft_s and self.index not in self._nudged:
            self._nudged.add(self.index)
            return Action.NUDGE
        return Action.NONE

    def advance(self, reason: str) -> Transition:
        """Move to the next stage, or straight to closing when `reason` is "end".

        Reason "tool" (the interviewer asked) respects the minimum time; "timeout" (forced) and
        "candidate" (the candidate skipped) do not. Raises TransitionRefused when not allowed.
        """
        if reason not in TRANSITION_REASONS:
            raise ValueError(f"unknown transition reason {reason!r}")
        if self.finished:
            raise TransitionRefused("the interview has already ended")
        if self.in_closing:
            raise TransitionRefused("the closing stage has no next stage; finish the interview instead")
        if reason == "tool":
            verdict = self.can_advance()
            if not verdict.allowed:
                raise TransitionRefused(verdict.reason)
        target = len(self.plan.stages) - 1 if reason == "end" else self.index + 1
        transition = self._record(self.plan.stages[target].key, reason)
        self.index = target
        self.stage_started_at[self.current.key] = transition.at
        return transition

    def finish(self, reason: str = "end") -> Transition | None:
        """Mark the interview ended. The first call wins and returns the record; later calls return None."""
        if reason not in TRANSITION_REASONS:
            raise ValueError(f"unknown transition reason {reason!r}")
        if self.finished:
            return None
        transition = self._record("", reason)
        self.end_reason = reason
        return transition

    def _record(self, to_stage: str, reason: str) -> Transition:
        now = self.clock()
        transition = Transition(self.current.key, to_stage, reason, now, now - self.started_at)
        self.transitions.append(transition)
        return transition
