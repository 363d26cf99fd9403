"""Feedback generation: quote verification, the structured request, and every failure, against the
local OpenAI-compatible fake with the real `openai` client.

The interview builders here write interviews the way the agent does (store.append_turn per final
fragment, stage events, status changes); the other feedback test modules import them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

import feedback
import fsm
import postprocess
import store
from fakes.fake_openai import (
    CHAT_PATH,
    DEFAULT_OPENAI_KEY,
    INSUFFICIENT_QUOTA,
    INVALID_API_KEY,
    FakeOpenAI,
)

RESUME = "RESUME-MARKER Led the billing rewrite at Acme."
JOB_DESCRIPTION = "JD-MARKER Own our payments platform."

# (speaker, stage, text, start_s, end_s): final fragments as the agent writes them, a candidate
# answer split in two fragments and one with filler words.
BEHAVIORAL_SCRIPT: list[tuple[str, str, str, float, float]] = [
    ("interviewer", "greeting", "Hi, I'm Alex. Shall we begin?", 0.0, 3.0),
    ("candidate", "greeting", "Yes, I'm ready.", 3.6, 4.8),
    ("interviewer", "self_introduction", "Tell me about yourself.", 5.5, 7.0),
    ("candidate", "self_introduction", "I'm a backend engineer with six years at Acme.", 8.0, 11.0),
    ("candidate", "self_introduction", "I own the billing platform end to end.", 11.2, 14.0),
    ("interviewer", "past_experience", "Tell me about a time you missed a deadline.", 15.0, 18.0),
    ("candidate", "past_experience",
     ("Um, last year our billing migration slipped by two weeks. I split the work into smaller releases "
      "and, uh, we shipped the rest on time. Looking back, I didn't raise the risk early enough."), 19.5, 34.0),
    ("interviewer", "company_fit", "Why do you want to join us?", 35.0, 37.0),
    ("candidate", "company_fit", "Your payments team solves the problems I enjoy most.", 38.0, 42.0),
    ("interviewer", "closing", "Thanks, that's all from me.", 43.0, 45.0),
]


def add_user(app_store: store.Store, subject: str = "candidate") -> int:
    with app_store.session() as db:
        return store.get_or_create_user(db, "https://issuer.test", subject, f"{subject}@example.test", subject).id


def add_interview(
    app_store: store.Store,
    user_id: int,
    script: list[tuple[str, str, str, float, float]] = BEHAVIORAL_SCRIPT,
    *,
    track: str = "behavioral",
    status: str = "completed",
    reason: str = "",
    role: str = "Backend engineer",
) -> str:
    """An interview run to `status` with `script` written turn by turn, as the agent writes it."""
    interview_id = store.new_interview_id()
    plan = fsm.build_plan(track, "short")
    with app_store.session() as db:
        db.add(store.Interview(
            id=interview_id, user_id=user_id, room_name="mf-" + interview_id[:12], track=track, length="short",
            role=role, level="senior", company="Acme", candidate_name="Ada", language="en", plan=plan.to_dict(),
            context={"resume_text": RESUME, "job_description_text": JOB_DESCRIPTION, "role": role},
            status="starting",
        ))
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, "live")
    stage = ""
    for speaker, turn_stage, text, start_s, end_s in script:
        with app_store.session() as db:
            if turn_stage != stage:
                store.record_stage_event(db, interview_id, stage, turn_stage, "tool", start_s)
                stage = turn_stage
            store.append_turn(db, interview_id, speaker=speaker, stage=turn_stage, text=text,
                              start_s=start_s, end_s=end_s)
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, status, reason)
    return interview_id


def assessment(key: str, score: int | None, *quotes: str, rationale: str = "Clear and specific.") -> dict[str, Any]:
    return {"key": key, "score": score, "rationale": rationale, "evidence_quotes": list(quotes)}


def llm_reply(competencies: list[dict[str, Any]], **overrides: Any) -> str:
    """A reply in the schema `feedback.LlmFeedback` describes."""
    reply = {
        "competencies": competencies,
        "strengths": ["Owns outcomes and says so."],
        "improvements": [{"area": "Raising risks", "technique": "Name the risk in the first stand-up it appears."}],
        "rewritten_answer": {
            "question": "Tell me about a time you missed a deadline.",
            "original_quote": "last year our billing migration slipped by two weeks",
            "improved_answer": "Last year our billing migration slipped by two weeks; I re-planned it in three releases.",
        },
        "stage_notes": [{"stage": "Past experience", "note": "A real example with a clear result."}],
        "practice_plan": [{"when": "Days 1-3", "activity": "Record three STAR answers and time them."}],
        "summary": "A solid interview with concrete examples.",
        **overrides,
    }
    return json.dumps(reply)


GOOD_COMPETENCIES = [
    assessment("star_structure", 4, "I split the work into smaller releases and, uh, we shipped the rest on time."),
    assessment("impact_ownership", 4, "I own the billing platform end to end"),
    assessment("self_awareness", 3, "Looking back, I didn’t raise the risk early enough"),
    assessment("communication_clarity", 4, "I'm a backend engineer with six years at Acme."),
    assessment("role_fit", 3, "your payments team solves the problems I enjoy most"),
]


@pytest.fixture
def app_store(tmp_path):
    """A migrated SQLite store (the LLM paths do not depend on the backend)."""
    migrated = store.Store(f"sqlite:///{tmp_path / 'feedback.db'}")
    migrated.upgrade()
    yield migrated
    migrated.dispose()


def llm_for(fake: FakeOpenAI, key: str = DEFAULT_OPENAI_KEY, model: str = "gpt-4o-mini") -> feedback.LlmSettings:
    return feedback.LlmSettings(api_key=key, base_url=fake.base_url, model=model)


def run_generation(app_store: store.Store, interview_id: str, llm: feedback.LlmSettings | None) -> store.Feedback:
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id)
    feedback.generate_feedback(app_store, interview_id, llm)
    with app_store.session() as db:
        return store.get_feedback(db, interview_id)


def candidate_turns(script=BEHAVIORAL_SCRIPT) -> list[postprocess.Turn]:
    records = [
        {"seq": seq, "speaker": speaker, "stage": stage, "text": text, "start_s": start, "end_s": end}
        for seq, (speaker, stage, text, start, end) in enumerate(script, start=1)
    ]
    return [turn for turn in postprocess.merge_turns(records) if turn.speaker == "candidate"]


# ------------------------------------------------------------------------------ quote matching


@pytest.mark.parametrize(
    "quote",
    [
        "last year our billing migration slipped by two weeks",  # exact words
        "LAST YEAR, our billing migration -- slipped by two weeks!",  # case, punctuation, spacing
        "I didn’t raise the risk early enough",  # curly apostrophe for the transcript's straight one
        "Um, last year our billing migration slipped",  # hesitations skipped on either side
        "slipped by two weeks. I split the work",  # across sentences inside one answer
    ],
)
def test_a_quote_matches_the_candidates_words_despite_case_punctuation_and_hesitations(quote):
    found = feedback.find_quote(quote, candidate_turns())

    assert found is not None
    assert found.seq == 7
    assert found.text in BEHAVIORAL_SCRIPT[6][2]


def test_the_kept_quote_is_the_transcripts_own_text_and_spans_merged_fragments():
    found = feedback.find_quote("with six years at acme I own the billing platform", candidate_turns())

    assert found is not None
    assert found.text == "with six years at Acme. I own the billing platform"
    assert found.seq == 4  # the merged turn keeps its first fragment's seq: the transcript's anchor
    assert found.start_s == 8.0


@pytest.mark.parametrize(
    "quote",
    [
        "Tell me about a time you missed a deadline",  # the interviewer's words
        "our billing migration slipped by three weeks",  # a changed word
        "our migration slipped by two weeks",  # a dropped word
        "billing migration slipped ... on time",  # an ellipsis joining distant words
        "I'm ready",  # too short to prove anything
        "",
    ],
)
def test_a_quote_that_is_not_a_verbatim_span_of_the_candidate_is_not_found(quote):
    assert feedback.find_quote(quote, candidate_turns()) is None


# ------------------------------------------------------------------------ generation, good path


def test_a_good_structured_reply_is_stored_with_verified_quotes(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    with FakeOpenAI(chat_script=[llm_reply(GOOD_COMPETENCIES)]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake, model="my-model"))
        request = fake.requests.last(CHAT_PATH)

    assert row.status == "ready" and row.error == "" and row.model == "my-model"
    scores = {item["key"]: item["score"] for item in row.result["competencies"]}
    assert scores == {"star_structure": 4, "impact_ownership": 4, "self_awareness": 3,
                      "communication_clarity": 4, "role_fit": 3}
    assert row.result["overall_score"] == 3.6
    star = row.result["competencies"][0]
    # The transcript's own words, from the first to the last quoted word.
    assert star["quotes"] == [{"text": "I split the work into smaller releases and, uh, we shipped the rest on time",
                               "seq": 7, "start_s": 19.5}]
    assert row.result["rewritten_answer"]["original"]["seq"] == 7
    assert row.result["summary"] == "A solid interview with concrete examples."
    assert row.analytics["overall"]["answer_count"] == 4  # the two fragments of one answer are merged
    assert row.analytics["overall"]["fillers"]["counts"]["um"] == 1

    assert request.authorization == f"Bearer {DEFAULT_OPENAI_KEY}"
    assert request.body["model"] == "my-model"
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["$defs"]["CompetencyAssessment"]["properties"]["key"]["enum"] == [
        "star_structure", "impact_ownership", "self_awareness", "communication_clarity", "role_fit"]
    system_prompt = request.body["messages"][0]["content"]
    assert RESUME in system_prompt and JOB_DESCRIPTION in system_prompt
    assert "Backend engineer" in system_prompt
    assert "I own the billing platform end to end." in system_prompt


def test_openai_and_its_default_model_are_used_when_nothing_else_is_set():
    llm = feedback.llm_settings_from({"openai": "sk-x"})

    assert llm == feedback.LlmSettings(api_key="sk-x", base_url="https://api.openai.com/v1", model="gpt-4o-mini")
    assert feedback.llm_settings_from({"llm_model": "x"}) is None


# ------------------------------------------------------------------------ evidence is enforced


def test_an_unfound_quote_is_dropped_and_a_competency_left_without_evidence_is_not_scored(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    competencies = [
        assessment("star_structure", 5, "I led a team of forty engineers through the outage",  # invented
                   "I split the work into smaller releases"),  # real
        assessment("impact_ownership", 5, "I single-handedly saved the company millions"),  # invented only
        assessment("self_awareness", 4, "Tell me about a time you missed a deadline"),  # the interviewer's
        assessment("communication_clarity", 4),  # a score with no quote at all
        assessment("role_fit", None, "Your payments team solves the problems I enjoy most",
                   rationale="The model declined to score."),
    ]
    with FakeOpenAI(chat_script=[llm_reply(competencies)]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))

    by_key = {item["key"]: item for item in row.result["competencies"]}
    assert by_key["star_structure"]["score"] == 5
    assert [quote["text"] for quote in by_key["star_structure"]["quotes"]] == ["I split the work into smaller releases"]
    assert by_key["star_structure"]["dropped_quotes"] == 1
    for key in ("impact_ownership", "self_awareness", "communication_clarity", "role_fit"):
        assert by_key[key]["score"] is None, key
        assert by_key[key]["status"] == "not_enough_evidence", key
        assert by_key[key]["quotes"] == [], key
        assert by_key[key]["rationale"] == feedback.NOT_ENOUGH_EVIDENCE, key
    assert [by_key[key]["dropped_quotes"] for key in by_key] == [1, 1, 1, 0, 0]  # role_fit's quote was real
    assert row.result["overall_score"] == 5.0
    assert row.result["dropped_quotes"] == 3


def test_missing_and_unknown_competencies_are_never_scored(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    competencies = [assessment("leadership", 5, "I own the billing platform end to end")]
    with FakeOpenAI(chat_script=[llm_reply(competencies, rewritten_answer=None)]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))

    assert row.status == "ready"
    assert [item["key"] for item in row.result["competencies"]] == [c.key for c in feedback.prompts.RUBRICS["behavioral"]]
    assert all(item["score"] is None for item in row.result["competencies"])
    assert row.result["overall_score"] is None
    assert row.result["rewritten_answer"] is None


def test_an_interview_without_answers_gets_no_scores_and_no_llm_call(app_store):
    interview_id = add_interview(app_store, add_user(app_store), BEHAVIORAL_SCRIPT[:1], status="interrupted")
    with FakeOpenAI() as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))
        assert fake.requests.for_path(CHAT_PATH) == []

    assert row.status == "ready"
    assert row.result["summary"] == feedback.NO_ANSWERS_SUMMARY
    assert all(item["score"] is None for item in row.result["competencies"])


# ------------------------------------------------------------------------------------ failures


def test_invalid_json_twice_fails_with_a_clear_error_and_no_scores(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    not_feedback = json.dumps({"competencies": [{"key": "star_structure", "score": 9}]})
    with FakeOpenAI(chat_script=["Sure! Here is your feedback: great job", not_feedback]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))
        assert len(fake.requests.for_path(CHAT_PATH)) == 2

    assert row.status == "failed"
    assert row.error == feedback.INVALID_REPLY_MESSAGE
    assert row.result == {}
    assert row.analytics["overall"]["answer_count"] == 4  # the two fragments of one answer are merged


def test_one_invalid_reply_is_retried(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    with FakeOpenAI(chat_script=["{not json", llm_reply(GOOD_COMPETENCIES)]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))
        assert len(fake.requests.for_path(CHAT_PATH)) == 2

    assert row.status == "ready"
    assert row.result["overall_score"] == 3.6


def test_a_rejected_key_shows_the_key_message(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    with FakeOpenAI() as fake:
        row = run_generation(app_store, interview_id, llm_for(fake, key="sk-wrong-key-1234"))
        assert fake.requests.last(CHAT_PATH).authorization == "Bearer sk-wrong-key-1234"

    assert row.status == "failed"
    assert "refused the API key (401)" in row.error
    assert "Settings" in row.error
    assert "sk-wrong" not in row.error and INVALID_API_KEY.message not in row.error
    assert row.result == {}


def test_an_exhausted_quota_says_so(app_store):
    interview_id = add_interview(app_store, add_user(app_store))
    with FakeOpenAI(chat_script=[INSUFFICIENT_QUOTA, INSUFFICIENT_QUOTA]) as fake:
        row = run_generation(app_store, interview_id, llm_for(fake))

    assert row.status == "failed"
    assert "no quota left (429" in row.error


def test_no_key_fails_with_the_settings_message_but_keeps_the_analytics(app_store):
    interview_id = add_interview(app_store, add_user(app_store))

    row = run_generation(app_store, interview_id, None)

    assert row.status == "failed"
    assert row.error == feedback.MISSING_KEY_MESSAGE
    assert row.analytics["overall"]["answer_count"] == 4  # the two fragments of one answer are merged


# ------------------------------------------------------------------------ claiming, both backends


def test_generation_is_claimed_once_and_reclaimed_only_when_allowed(app):
    app_store = app.extensions["store"]
    interview_id = add_interview(app_store, add_user(app_store))
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id) is True
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id) is False  # already generating
        later = store.utcnow() + store.FEEDBACK_STALE_AFTER + timedelta(seconds=1)
        assert store.claim_feedback_generation(db, interview_id, now=later) is True  # its process died
    with app_store.session() as db:
        store.finish_feedback(db, interview_id, status="ready", model="m", result={"summary": "x"}, error="")
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id) is False  # ready stays ready
        assert store.claim_feedback_generation(db, interview_id, force=True) is True  # unless regenerated
    with app_store.session() as db:
        row = store.get_feedback(db, interview_id)
        assert (row.status, row.result) == ("generating", {})
        store.finish_feedback(db, interview_id, status="failed", model="m", result={}, error="boom")
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id) is True  # a failure may be retried
