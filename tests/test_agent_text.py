"""The interviewer's conversation logic in livekit-agents' text mode (no room, no audio).

The real agent classes run against the real openai LLM plugin, pointed at the local fake OpenAI
server, which plays scripted replies and tool calls and records every request. The store is a
migrated SQLite file; the timing engine runs on a fake clock so stage limits pass on demand.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentSession, APIConnectOptions
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import openai

import agent_worker
import fsm
import prompts
import store
from conversation_cache import InterviewSetup, build_context
from livekit_tokens import candidate_identity
from tests.fakes import DEFAULT_OPENAI_KEY, ErrorReply, FakeOpenAI, tool_call_reply
from tests.fakes.fake_openai import CHAT_PATH, INSUFFICIENT_QUOTA

pytestmark = pytest.mark.anyio

WAIT_S = 10.0
# Background loops that never tick on their own: tests drive the verifier with tick().
MANUAL_TIMINGS = agent_worker.Timings(verifier_interval_s=3600, heartbeat_interval_s=3600)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingPublisher:
    """Stands in for `LocalParticipant.set_attributes`: keeps every publish, lets a test wait for one."""

    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, attributes: dict[str, str]) -> None:
        async with self._changed:
            self.published.append(dict(attributes))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[dict[str, str]], bool]) -> dict[str, str]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: any(predicate(a) for a in self.published)), WAIT_S
            )
        return next(a for a in self.published if predicate(a))


class Conversation:
    """The session's messages as (role, text), in order; a test can wait until there are enough."""

    def __init__(self, session: AgentSession) -> None:
        self.items: list[tuple[str, str]] = []
        self._added = asyncio.Event()
        session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: Any) -> None:
        role = getattr(event.item, "role", None)
        if role in ("user", "assistant"):
            self.items.append((role, event.item.text_content or ""))
            self._added.set()

    async def wait_for_count(self, count: int) -> None:
        async def enough() -> None:
            while len(self.items) < count:
                self._added.clear()
                await self._added.wait()

        await asyncio.wait_for(enough(), WAIT_S)


@dataclass
class Interview:
    controller: agent_worker.InterviewController
    session: AgentSession
    fake: FakeOpenAI
    clock: FakeClock
    publisher: RecordingPublisher
    app_store: store.Store
    conversation: Conversation
    greeting: Any

    @property
    def plan(self) -> fsm.InterviewPlan:
        return self.controller.interview.plan

    @property
    def id(self) -> str:
        return self.controller.interview.id

    def row(self) -> store.Interview:
        with self.app_store.session() as db:
            return store.get_interview(db, self.id)

    def turns(self) -> list[tuple[str, str, str]]:
        with self.app_store.session() as db:
            return [(t.speaker, t.stage, t.text) for t in store.list_turns(db, self.id)]

    def stage_events(self) -> list[tuple[str, str, str]]:
        with self.app_store.session() as db:
            return [(e.from_stage, e.to_stage, e.reason) for e in store.list_stage_events(db, self.id)]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [request.body for request in self.fake.requests.for_path(CHAT_PATH)]

    async def closed(self) -> None:
        await asyncio.wait_for(self.controller.wait_closed(), WAIT_S)


@pytest.fixture
def app_store(tmp_path) -> Iterator[store.Store]:
    test_store = store.Store(f"sqlite:///{tmp_path / 'agent.db'}")
    test_store.upgrade()
    yield test_store
    test_store.dispose()


def create_interview(app_store: store.Store, track: str, length: str = "short") -> str:
    """An interview row as the web app creates it: status `starting`, with its plan and context."""
    setup = InterviewSetup(
        candidate_name="Casey",
        role="Backend engineer",
        level="mid",
        company="Acme",
        track=track,
        length=length,
        language="en",
        resume_text="Built payment systems at Initech for five years.",
    )
    with app_store.session() as db:
        user = store.get_or_create_user(db, "https://issuer.test", "casey", "casey@example.test", "Casey")
        interview = store.create_interview_unless_active(
            db,
            user_id=user.id,
            interview_id=store.new_interview_id(),
            status="starting",
            room_name="mf-" + secrets.token_hex(10),
            track=track,
            length=length,
            role=setup.role,
            level=setup.level,
            company=setup.company,
            candidate_name=setup.candidate_name,
            language="en",
            plan=fsm.build_plan(track, length).to_dict(),
            context=build_context(setup),
        )
        return interview.id


@asynccontextmanager
async def running_interview(
    app_store: store.Store,
    *,
    track: str = "behavioral",
    script: tuple[Any, ...] | list[Any] = (),
    accepted_keys: tuple[str, ...] = (DEFAULT_OPENAI_KEY,),
    timings: agent_worker.Timings = MANUAL_TIMINGS,
    user_away_timeout: float | None = None,
    conn_options: SessionConnectOptions | None = None,
    capture_greeting: bool = True,
) -> AsyncIterator[Interview]:
    """A live interview in text mode: the controller has started and (with `capture_greeting`, which
    raises when the greeting fails) the greeting has been generated."""
    interview_id = create_interview(app_store, track)
    clock, publisher = FakeClock(), RecordingPublisher()
    async with FakeOpenAI(chat_script=list(script), accepted_keys=accepted_keys) as fake:
        llm = openai.LLM(model="gpt-4.1-mini", base_url=fake.base_url, api_key=DEFAULT_OPENAI_KEY)
        extra = {"conn_options": conn_options} if conn_options else {}
        session = AgentSession(
            llm=llm,
            vad=None,
            turn_handling={"turn_detection": None},
            user_away_timeout=user_away_timeout,
            **extra,
        )
        controller = agent_worker.InterviewController(
            agent_worker.load_interview(app_store, interview_id),
            app_store,
            clock=clock,
            timings=timings,
            publish_attributes=publisher,
        )
        conversation = Conversation(session)
        try:
            greeting = await controller.start(session, capture_run=capture_greeting)
            yield Interview(controller, session, fake, clock, publisher, app_store, conversation, greeting)
        finally:
            if not controller.closed:
                await asyncio.wait_for(controller.end("interrupted", reason="test over"), WAIT_S)
            await llm.aclose()


def invocation(caller: str, method: str) -> rtc.RpcInvocationData:
    return rtc.RpcInvocationData(
        request_id="req-1", caller_identity=caller, payload="{}", response_timeout=5.0, method=method
    )


def system_prompt(request: dict[str, Any]) -> str:
    return request["messages"][0]["content"]


@pytest.mark.parametrize("track", sorted(fsm.TRACKS))
async def test_a_whole_interview_moves_through_every_stage_and_completes(app_store, track):
    plan = fsm.build_plan(track, "short")
    script: list[Any] = ["Hello Casey, I'm Alex. Shall we begin?"]
    for stage in plan.stages[1:]:
        script += [tool_call_reply("transition_stage"), f"Let's talk about {stage.title}."]
    script += [tool_call_reply("end_interview")]

    async with running_interview(app_store, track=track, script=script) as interview:
        interview.greeting.expect.next_event().is_agent_handoff()
        interview.greeting.expect.next_event().is_message(role="assistant")
        assert interview.row().status == "live"

        for index, stage in enumerate(plan.stages[:-1]):
            interview.clock.advance(stage.min_s)
            result = await interview.session.run(user_input=f"My answer in {stage.key}.")
            result.expect.next_event().is_function_call(name="transition_stage")
            output = result.expect.next_event().is_function_call_output().event().item.output
            result.expect.next_event().is_message(role="assistant")
            result.expect.no_more_events()
            next_stage = plan.stages[index + 1]
            assert output == prompts.transition_accepted(next_stage)
            assert interview.controller.state.current.key == next_stage.key
            # The reply after the tool already runs on the new stage's instructions.
            assert f"You are now in stage {index + 2}, {next_stage.title}" in system_prompt(
                interview.chat_requests()[-1]
            )

        result = await interview.session.run(user_input="No more questions, thank you. Goodbye!")
        result.expect.next_event().is_function_call(name="end_interview")
        result.expect.next_event().is_function_call_output()
        await interview.closed()

        row = interview.row()
        assert (row.status, row.failure_reason, row.stage) == ("completed", "", "closing")
        keys = plan.keys
        assert interview.stage_events() == [
            *[(keys[i], keys[i + 1], "tool") for i in range(len(keys) - 1)],
            ("closing", "", "tool"),
        ]
        expected_turns = [("interviewer", "greeting", "Hello Casey, I'm Alex. Shall we begin?")]
        for index, stage in enumerate(plan.stages[:-1]):
            following = plan.stages[index + 1]
            expected_turns += [
                ("candidate", stage.key, f"My answer in {stage.key}."),
                ("interviewer", following.key, f"Let's talk about {following.title}."),
            ]
        expected_turns.append(("candidate", "closing", "No more questions, thank you. Goodbye!"))
        assert interview.turns() == expected_turns
        published_stages = [
            a["mockflow.stage"] for a in interview.publisher.published if a["mockflow.status"] == "live"
        ]
        assert list(dict.fromkeys(published_stages)) == list(keys)
        final = interview.publisher.published[-1]
        assert final["mockflow.status"] == "completed" and final["mockflow.stage_deadline_ms"] == ""


async def test_a_transition_before_the_minimum_time_is_refused_with_the_reason(app_store):
    script = ["Hello!", tool_call_reply("transition_stage"), "Sure. Before we move on, how are you today?"]
    async with running_interview(app_store, script=script) as interview:
        greeting = interview.plan.stages[0]
        interview.clock.advance(greeting.min_s - 5)
        result = await interview.session.run(user_input="Can we skip ahead?")
        result.expect.next_event().is_function_call(name="transition_stage")
        output = result.expect.next_event().is_function_call_output().event().item.output
        result.expect.next_event().is_message(role="assistant")

        assert output.startswith("Not yet: ")
        assert f"stay at least {greeting.min_s} s" in output
        assert interview.controller.state.current.key == "greeting"
        await interview.controller.flush()
        assert interview.stage_events() == []
        # The model saw the refusal as the tool's output.
        last_messages = interview.chat_requests()[-1]["messages"]
        assert any(m["role"] == "tool" and "stay at least" in m["content"] for m in last_messages)


async def test_end_interview_is_refused_outside_the_closing_stage(app_store):
    script = ["Hello!", tool_call_reply("end_interview"), "Of course. Let's carry on."]
    async with running_interview(app_store, script=script) as interview:
        result = await interview.session.run(user_input="I want to stop.")
        result.expect.next_event().is_function_call(name="end_interview")
        output = result.expect.next_event().is_function_call_output().event().item.output
        assert "it can only end from the closing stage" in output
        assert not interview.controller.closed
        assert interview.row().status == "live"


async def test_the_verifier_nudges_then_forces_the_stage_on_with_a_bridge(app_store):
    script = ["Hello Casey!", "Thanks, Casey. Let's move on: tell me about yourself."]
    async with running_interview(app_store, script=script) as interview:
        controller = interview.controller
        greeting = interview.plan.stages[0]
        nudge = prompts.wrap_up_nudge(greeting)
        interview.clock.advance(greeting.soft_s)
        assert await controller.tick() is fsm.Action.NUDGE
        assert nudge in controller.agent.instructions
        assert await controller.tick() is fsm.Action.NONE  # a nudge comes once per stage

        interview.clock.advance(greeting.hard_s - greeting.soft_s)
        assert await controller.tick() is fsm.Action.FORCE_TRANSITION
        await interview.conversation.wait_for_count(2)
        await controller.flush()

        assert interview.stage_events() == [("greeting", "self_introduction", "timeout")]
        bridge = prompts.forced_transition_line(greeting, interview.plan.stages[1])
        bridge_request = interview.chat_requests()[-1]
        assert any(m["role"] == "system" and m["content"] == bridge for m in bridge_request["messages"])
        assert "You are now in stage 2, Self-introduction" in system_prompt(bridge_request)
        assert nudge not in system_prompt(bridge_request)
        assert interview.turns()[-1] == (
            "interviewer",
            "self_introduction",
            "Thanks, Casey. Let's move on: tell me about yourself.",
        )


async def test_the_background_verifier_forces_a_transition_when_the_hard_limit_passes(app_store):
    timings = agent_worker.Timings(verifier_interval_s=0.01, heartbeat_interval_s=3600)
    async with running_interview(
        app_store, script=["Hello!", "Let's move on."], timings=timings
    ) as interview:
        interview.clock.advance(interview.plan.stages[0].hard_s)
        attributes = await interview.publisher.wait_for(
            lambda a: a.get("mockflow.stage") == "self_introduction"
        )
        assert attributes["mockflow.stage_index"] == "1"
        assert attributes["mockflow.stage_count"] == str(len(interview.plan.stages))
        assert attributes["mockflow.stage_title"] == "Self-introduction"
        await interview.controller.flush()
        assert interview.stage_events() == [("greeting", "self_introduction", "timeout")]


async def test_the_verifier_ends_the_interview_at_its_maximum_duration(app_store):
    timings = agent_worker.Timings(verifier_interval_s=0.01, heartbeat_interval_s=3600)
    async with running_interview(
        app_store, script=["Hello!", "Thank you for your time, goodbye."], timings=timings
    ) as interview:
        interview.clock.advance(interview.plan.max_duration_s)
        await interview.closed()
        row = interview.row()
        assert row.status == "completed"
        assert interview.stage_events() == [("greeting", "", "timeout")]
        goodbye_request = interview.chat_requests()[-1]
        assert goodbye_request["messages"][-1]["content"] == prompts.goodbye(
            interview.controller.interview.context
        )
        assert interview.turns()[-1] == ("interviewer", "greeting", "Thank you for your time, goodbye.")


async def test_the_candidate_can_skip_a_stage_by_rpc_and_nobody_else_can(app_store):
    async with running_interview(
        app_store, script=["Hello!", "Sure, let's move on. Tell me about yourself."]
    ) as interview:
        controller = interview.controller
        with pytest.raises(rtc.RpcError) as refused:
            await controller.rpc_skip_stage(invocation("intruder", agent_worker.RPC_SKIP_STAGE))
        assert refused.value.code == agent_worker.RPC_ERROR_FORBIDDEN
        assert controller.state.current.key == "greeting"

        answer = await controller.rpc_skip_stage(
            invocation(candidate_identity(interview.id), agent_worker.RPC_SKIP_STAGE)
        )
        assert json.loads(answer) == {"ok": True, "stage": "self_introduction"}
        await interview.conversation.wait_for_count(2)
        await controller.flush()
        assert interview.stage_events() == [("greeting", "self_introduction", "candidate")]
        assert interview.row().stage == "self_introduction"
        assert interview.turns()[-1][:2] == ("interviewer", "self_introduction")


async def test_skipping_the_closing_stage_is_refused(app_store):
    async with running_interview(app_store, script=["Hello!"]) as interview:
        caller = candidate_identity(interview.id)
        for _ in interview.plan.stages[1:]:
            interview.controller.state.advance("timeout")
        with pytest.raises(rtc.RpcError) as refused:
            await interview.controller.rpc_skip_stage(invocation(caller, agent_worker.RPC_SKIP_STAGE))
        assert refused.value.code == agent_worker.RPC_ERROR_REFUSED
        assert "closing stage has no next stage" in refused.value.message


async def test_the_candidate_can_end_by_rpc_and_nobody_else_can(app_store):
    async with running_interview(app_store, script=["Hello!", "Thank you, Casey. Goodbye!"]) as interview:
        controller = interview.controller
        with pytest.raises(rtc.RpcError):
            await controller.rpc_end_interview(
                invocation("candidate-somebodyelse", agent_worker.RPC_END_INTERVIEW)
            )
        assert not controller.closed

        answer = await controller.rpc_end_interview(
            invocation(candidate_identity(interview.id), agent_worker.RPC_END_INTERVIEW)
        )
        assert json.loads(answer)["ok"] is True
        await interview.closed()
        assert interview.row().status == "completed"
        assert interview.stage_events() == [("greeting", "", "candidate")]
        assert interview.turns()[-1] == ("interviewer", "greeting", "Thank you, Casey. Goodbye!")
        assert interview.publisher.published[-1]["mockflow.status"] == "completed"


async def test_a_silent_candidate_gets_two_check_ins_then_the_interview_ends(app_store):
    script = ["Hello!", "Take your time.", "I can't hear you.", "Goodbye for now."]
    async with running_interview(app_store, script=script, user_away_timeout=0.05) as interview:
        await interview.closed()
        row = interview.row()
        assert (row.status, row.failure_reason) == ("interrupted", agent_worker.SILENCE_END_REASON)
        instructions = [request["messages"][-1]["content"] for request in interview.chat_requests()[1:]]
        assert instructions == [
            prompts.silence_check_in(1),
            prompts.silence_check_in(2),
            prompts.goodbye(interview.controller.interview.context),
        ]
        assert [text for _, _, text in interview.turns()] == script
        assert interview.stage_events() == [("greeting", "", "end")]


async def test_a_rejected_openai_key_fails_the_interview_with_a_readable_reason(app_store):
    async with running_interview(
        app_store, accepted_keys=("sk-another-key",), capture_greeting=False
    ) as interview:
        await interview.closed()
        row = interview.row()
        assert row.status == "failed"
        assert (
            row.failure_reason
            == "Your OpenAI key was rejected. Check it in Settings, then start a new interview."
        )
        final = interview.publisher.published[-1]
        assert (final["mockflow.status"], final["mockflow.failure_reason"]) == ("failed", row.failure_reason)
        # The apology is spoken with text-to-speech only, and kept in the transcript.
        assert interview.turns() == [
            ("interviewer", "greeting", prompts.provider_key_rejected_line("OpenAI"))
        ]
        assert len(interview.chat_requests()) == 1  # a rejected key is not retried


async def test_an_exhausted_quota_is_retried_then_reported(app_store):
    retries = SessionConnectOptions(
        llm_conn_options=APIConnectOptions(max_retry=1, retry_interval=0.0, timeout=5.0)
    )
    script = [INSUFFICIENT_QUOTA, INSUFFICIENT_QUOTA]
    async with running_interview(
        app_store, script=script, conn_options=retries, capture_greeting=False
    ) as interview:
        await interview.closed()
        row = interview.row()
        assert row.status == "failed"
        assert row.failure_reason.startswith("Your OpenAI account hit its rate limit or ran out of quota.")
        assert len(interview.chat_requests()) == 2


async def test_a_server_error_after_retries_is_reported_without_blaming_the_key(app_store):
    retries = SessionConnectOptions(
        llm_conn_options=APIConnectOptions(max_retry=1, retry_interval=0.0, timeout=5.0)
    )
    outage = ErrorReply(status=503, message="The server is overloaded")
    async with running_interview(
        app_store, script=[outage, outage], conn_options=retries, capture_greeting=False
    ) as interview:
        await interview.closed()
        row = interview.row()
        assert (row.status, row.failure_reason) == (
            "failed",
            "The OpenAI service answered with an error (HTTP 503). Please try again later.",
        )
        assert interview.turns() == []


async def test_a_candidate_who_leaves_gets_a_grace_period_then_the_interview_is_interrupted(app_store):
    timings = agent_worker.Timings(
        verifier_interval_s=3600, heartbeat_interval_s=3600, reconnect_grace_s=0.05
    )
    async with running_interview(app_store, script=["Hello!"], timings=timings) as interview:
        controller = interview.controller
        controller.on_candidate_left()
        controller.on_candidate_returned()
        controller.on_candidate_left()
        await interview.closed()
        assert (interview.row().status, interview.row().failure_reason) == (
            "interrupted",
            agent_worker.LEFT_END_REASON,
        )
