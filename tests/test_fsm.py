"""The interview plans and the timing engine, driven by a fake clock through every track and length."""

from __future__ import annotations

import json
from itertools import product

import pytest

import fsm
from fsm import Action, InterviewPlan, InterviewState, TransitionRefused, build_plan

ALL_PLANS = list(product(fsm.TRACKS, fsm.LENGTHS))
POLL_EVERY_S = 2.0


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_state(track: str = "behavioral", length: str = "standard") -> tuple[InterviewState, FakeClock]:
    clock = FakeClock()
    return InterviewState(build_plan(track, length), clock), clock


def test_standard_behavioral_plan_matches_the_classic_flow():
    plan = build_plan("behavioral", "standard")

    assert [(stage.key, stage.budget_s) for stage in plan.stages] == [
        ("greeting", 90),
        ("self_introduction", 180),
        ("past_experience", 300),
        ("company_fit", 240),
        ("closing", 60),
    ]
    assert plan.stage("self_introduction").title == "Self-introduction"
    assert plan.total_budget_s == 870
    assert plan.max_duration_s > plan.total_budget_s


def test_tracks_and_lengths_are_ordered_with_titles_and_minutes():
    assert list(fsm.TRACKS) == ["intro", "behavioral", "technical"]
    assert fsm.TRACKS["intro"] == "Intro call"
    assert list(fsm.LENGTHS) == ["short", "standard", "long"]
    assert [minutes for _title, minutes in fsm.LENGTHS.values()] == [8, 15, 25]


@pytest.mark.parametrize(("track", "length"), ALL_PLANS)
def test_every_plan_is_well_formed(track, length):
    plan = build_plan(track, length)

    assert plan.keys[0] == "greeting" and plan.keys[-1] == "closing"
    assert len(set(plan.keys)) == len(plan.keys)
    for stage in plan.stages:
        assert stage.title and stage.objective.endswith(".")
        limits = (stage.budget_s, stage.min_s, stage.soft_s, stage.hard_s)
        assert all(isinstance(value, int) for value in limits)
        assert 0 <= stage.min_s < stage.soft_s < stage.budget_s < stage.hard_s
    assert plan.total_budget_s == sum(stage.budget_s for stage in plan.stages)
    target_s = fsm.LENGTHS[length][1] * 60
    assert abs(plan.total_budget_s - target_s) <= 60
    assert plan.max_duration_s > plan.total_budget_s


@pytest.mark.parametrize("track", fsm.TRACKS)
def test_longer_lengths_give_the_middle_stages_more_time(track):
    short, standard, long = (build_plan(track, length) for length in fsm.LENGTHS)

    for index, key in enumerate(standard.keys[1:-1], start=1):
        budgets = [plan.stages[index].budget_s for plan in (short, standard, long)]
        assert budgets == sorted(set(budgets)), key
    assert short.stage("greeting") == standard.stage("greeting") == long.stage("greeting")


@pytest.mark.parametrize(("track", "length"), [("nope", "standard"), ("behavioral", "medium"), ("", "")])
def test_unknown_track_or_length_is_refused(track, length):
    with pytest.raises(ValueError, match="unknown"):
        build_plan(track, length)


@pytest.mark.parametrize(("track", "length"), ALL_PLANS)
def test_plan_round_trips_through_json(track, length):
    plan = build_plan(track, length)

    restored = InterviewPlan.from_dict(json.loads(json.dumps(plan.to_dict())))

    assert restored == plan
    assert plan.to_dict()["max_duration_s"] == plan.max_duration_s


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data.pop("stages"),
        lambda data: data.update(stages=[]),
        lambda data: data["stages"][1].update(budget_s=12.5),
        lambda data: data["stages"][1].update(min_s=-1),
        lambda data: data["stages"][1].update(soft_s=10_000),
        lambda data: data["stages"][0].pop("title"),
        lambda data: data.update(stages=data["stages"][1:]),
        lambda data: data["stages"].append(data["stages"][1]),
        lambda data: data.update(track=None),
    ],
)
def test_malformed_plan_dicts_are_refused(corrupt):
    data = build_plan("behavioral", "standard").to_dict()
    corrupt(data)

    with pytest.raises(ValueError):
        InterviewPlan.from_dict(data)


@pytest.mark.parametrize(("track", "length"), ALL_PLANS)
def test_nobody_advancing_still_moves_every_stage_and_ends_in_time(track, length):
    state, clock = new_state(track, length)
    plan = state.plan
    visited, nudged = [state.current.key], []

    while True:
        clock.advance(POLL_EVERY_S)
        action = state.due_action()
        if action is Action.NUDGE:
            nudged.append(state.current.key)
        elif action is Action.FORCE_TRANSITION:
            state.advance("timeout")
            visited.append(state.current.key)
        elif action is Action.END:
            state.finish("timeout")
            break
        assert state.elapsed() <= plan.max_duration_s + POLL_EVERY_S

    assert visited == list(plan.keys)
    assert nudged == list(plan.keys)
    assert [t.reason for t in state.transitions] == ["timeout"] * len(plan.stages)
    assert state.transitions[-1].to_stage == ""
    assert plan.total_budget_s <= state.elapsed() <= plan.max_duration_s
    assert state.due_action() is Action.NONE


@pytest.mark.parametrize(("track", "length"), ALL_PLANS)
def test_a_normal_interview_moves_by_tool_after_each_minimum(track, length):
    state, clock = new_state(track, length)

    for stage in state.plan.stages[:-1]:
        clock.advance(stage.min_s)
        assert state.can_advance().allowed
        transition = state.advance("tool")
        assert (transition.from_stage, transition.reason) == (stage.key, "tool")

    assert state.in_closing and state.next_stage() is None
    assert state.can_end().allowed
    ended = state.finish("tool")
    assert ended is not None and ended.from_stage == "closing"
    assert state.finished


@pytest.mark.parametrize(("track", "length"), ALL_PLANS)
def test_advancing_before_the_minimum_is_refused_with_a_reason(track, length):
    state, clock = new_state(track, length)
    state.advance("candidate")
    stage = state.current
    clock.advance(stage.min_s - 1)

    verdict = state.can_advance()

    assert not verdict.allowed
    assert f"the stage has run {stage.min_s - 1} s; stay at least {stage.min_s} s" in verdict.reason
    with pytest.raises(TransitionRefused, match=f"stay at least {stage.min_s} s"):
        state.advance("tool")
    assert state.current == stage
    clock.advance(1)
    assert state.advance("tool").to_stage == state.current.key != stage.key


def test_the_greeting_is_forced_along_when_it_never_ends():
    state, clock = new_state()
    greeting = state.current

    clock.advance(greeting.soft_s - 1)
    assert state.due_action() is Action.NONE
    clock.advance(1)
    assert state.due_action() is Action.NUDGE
    clock.advance(greeting.hard_s - greeting.soft_s)
    assert state.due_action() is Action.FORCE_TRANSITION
    assert state.due_action() is Action.FORCE_TRANSITION

    transition = state.advance("timeout")
    assert (transition.from_stage, transition.to_stage) == ("greeting", "self_introduction")
    assert transition.reason == "timeout"
    assert transition.elapsed_s == greeting.hard_s
    assert state.due_action() is Action.NONE


def test_nudge_is_reported_once_per_stage():
    state, clock = new_state()
    clock.advance(state.current.soft_s)

    actions = [state.due_action() for _ in range(5)]

    assert actions == [Action.NUDGE] + [Action.NONE] * 4
    state.advance("tool")
    clock.advance(state.current.soft_s)
    assert state.due_action() is Action.NUDGE
    assert state.due_action() is Action.NONE


def test_candidate_can_skip_before_the_minimum():
    state, clock = new_state()
    state.advance("candidate")
    clock.advance(5)

    assert not state.can_advance().allowed
    transition = state.advance("candidate")

    assert (transition.from_stage, transition.to_stage, transition.reason) == (
        "self_introduction",
        "past_experience",
        "candidate",
    )
    assert state.stage_started_at["past_experience"] == clock.now


def test_reason_end_jumps_straight_to_closing():
    state, clock = new_state("technical", "long")
    clock.advance(30)

    transition = state.advance("end")

    assert (transition.from_stage, transition.to_stage) == ("greeting", "closing")
    assert state.in_closing


def test_closing_has_no_next_stage_and_ends_at_its_hard_limit():
    state, clock = new_state()
    state.advance("end")
    closing = state.current

    assert state.next_stage() is None
    assert not state.can_advance().allowed
    assert "end_interview" in state.can_advance().reason
    with pytest.raises(TransitionRefused):
        state.advance("timeout")
    clock.advance(closing.hard_s - 1)
    assert state.due_action() is Action.NUDGE
    clock.advance(1)
    assert state.due_action() is Action.END


def test_max_duration_ends_the_interview_in_any_stage():
    state, clock = new_state()
    state.advance("candidate")
    clock.advance(state.plan.max_duration_s)

    assert state.due_action() is Action.END
    assert state.current.key == "self_introduction"


def test_ending_is_only_allowed_in_closing():
    state, _clock = new_state()

    verdict = state.can_end()

    assert not verdict.allowed
    assert "closing" in verdict.reason
    state.advance("end")
    assert state.can_end().allowed


def test_after_finish_nothing_is_due_and_advance_refuses():
    state, clock = new_state()
    first = state.finish("candidate")

    assert first is not None
    assert (first.from_stage, first.to_stage, first.reason) == ("greeting", "", "candidate")
    assert state.finish("timeout") is None
    assert state.end_reason == "candidate"
    clock.advance(state.plan.max_duration_s * 2)
    assert state.due_action() is Action.NONE
    assert not state.can_advance().allowed and not state.can_end().allowed
    with pytest.raises(TransitionRefused, match="ended"):
        state.advance("timeout")
    assert len(state.transitions) == 1


def test_unknown_reasons_are_rejected():
    state, _clock = new_state()

    with pytest.raises(ValueError):
        state.advance("because")
    with pytest.raises(ValueError):
        state.finish("because")


def test_stage_deadline_and_elapsed_follow_the_clock():
    state, clock = new_state()
    clock.advance(40)
    state.advance("candidate")
    clock.advance(25)

    assert state.elapsed() == 65
    assert state.stage_elapsed() == 25
    assert state.stage_deadline() == clock.now - 25 + state.current.soft_s
    assert [t.to_dict() for t in state.transitions] == [
        {
            "from_stage": "greeting",
            "to_stage": "self_introduction",
            "reason": "candidate",
            "at": 1040.0,
            "elapsed_s": 40.0,
        }
    ]
