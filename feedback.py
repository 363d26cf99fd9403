"""Structured, evidence-checked interview feedback, generated with the user's own LLM settings.

When an interview has ended, `start_generation` claims its feedback row and runs `generate_feedback`
in a background thread: the speech analytics are computed by code (`postprocess.compute_analytics`,
never asked of the LLM); the LLM is asked for feedback in a strict JSON schema and its reply is
validated by the pydantic model `LlmFeedback` (one retry when the reply is not valid); every
evidence quote is then checked against the candidate's own turns. A quote that is not found is
dropped, and a competency left without a verified quote gets no score: it is marked "not enough
evidence". Scores are only ever the LLM's, for competencies whose evidence holds.

Quote matching (`find_quote`) compares words, not characters: both texts are split into words
(letters and digits, with inner apostrophes), Unicode-normalised (NFKC), case-folded and with
apostrophes removed, so "Don’t" matches "dont". Punctuation and spacing never matter, and
hesitation sounds (um, uh, erm, hmm) are skipped on both sides, because speech-to-text engines write
them inconsistently. Everything else must appear as one contiguous run of words in a single
candidate turn, and a quote must have at least MIN_QUOTE_WORDS words (shorter ones, such as "yes",
are present in almost any transcript and prove nothing). The quote kept is the transcript's own
text for that run, so what the page shows is exactly what was said.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import openai
from flask import Flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import postprocess
import prompts
import store

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
# Explicit, so that an OPENAI_BASE_URL in the server's environment never receives a user's key.
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MIN_QUOTE_WORDS = 3
LLM_TIMEOUT_S = 120.0
# The openai client retries connection errors, 429 and 5xx itself; one retry is enough for a
# transient error and keeps a hopeless one (no quota) from stalling the page for long.
LLM_TRANSPORT_RETRIES = 1
LLM_ATTEMPTS = 2  # an invalid reply is asked for once more
MAX_TEXT_CHARS = 1500
MAX_LIST_ITEMS = 8
MAX_QUOTES_PER_COMPETENCY = 3
RESULT_VERSION = 1

NOT_ENOUGH_EVIDENCE = "Not enough evidence in the transcript to score this."
NO_ANSWERS_SUMMARY = (
    "The interview ended before you answered any question, so there is nothing to score yet. "
    "The transcript below shows what was recorded."
)
HESITATIONS = frozenset({"um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm", "hm", "mm", "mhm"})
_WORD = re.compile(r"[^\W_]+(?:['’ʼ][^\W_]+)*")
_APOSTROPHES = str.maketrans("", "", "'’ʼ")


# ------------------------------------------------------------------------------ the typed reply


class _Strict(BaseModel):
    """Every field required and no extra keys: what OpenAI's strict structured output expects."""

    model_config = ConfigDict(extra="forbid")


class CompetencyAssessment(_Strict):
    key: str
    score: Annotated[int, Field(ge=1, le=5)] | None = Field(
        description="1 to 5, or null when the transcript holds no evidence for this competency"
    )
    rationale: str = Field(description="One sentence explaining the score")
    evidence_quotes: list[str] = Field(
        description="Quotes copied word for word from the candidate's own turns, each one sentence or less"
    )


class Improvement(_Strict):
    area: str
    technique: str = Field(description="A concrete technique to practise")


class RewrittenAnswer(_Strict):
    question: str = Field(description="The interviewer's question")
    original_quote: str = Field(description="The start of the candidate's answer, word for word")
    improved_answer: str


class StageNote(_Strict):
    stage: str = Field(description="The stage title as it appears in the transcript")
    note: str


class PracticeStep(_Strict):
    when: str = Field(description="When to do it, e.g. Days 1-2")
    activity: str


class LlmFeedback(_Strict):
    """Coaching feedback on one practice interview."""

    competencies: list[CompetencyAssessment]
    strengths: list[str]
    improvements: list[Improvement]
    rewritten_answer: RewrittenAnswer | None
    stage_notes: list[StageNote]
    practice_plan: list[PracticeStep]
    summary: str = Field(description="Two or three sentences")


def response_format(track: str) -> dict[str, Any]:
    """The chat request's `response_format`: `LlmFeedback`'s JSON schema (which also validates the
    reply), with the competency keys pinned to the track's rubric."""
    schema = LlmFeedback.model_json_schema()
    schema["$defs"]["CompetencyAssessment"]["properties"]["key"]["enum"] = [
        competency.key for competency in prompts.RUBRICS[track]
    ]
    return {"type": "json_schema", "json_schema": {"name": "interview_feedback", "strict": True, "schema": schema}}


# ---------------------------------------------------------------------------- quote verification


@dataclass(frozen=True)
class VerifiedQuote:
    """A quote found in the transcript: the turn's own words and the merged turn's seq (its anchor)."""

    text: str
    seq: int
    start_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "seq": self.seq, "start_s": self.start_s}


@dataclass(frozen=True)
class _Token:
    norm: str
    start: int
    end: int


def _tokens(text: str) -> list[_Token]:
    """Words of `text` in comparable form, with their character span; hesitations left out."""
    tokens = []
    for match in _WORD.finditer(text):
        norm = unicodedata.normalize("NFKC", match.group()).casefold().translate(_APOSTROPHES)
        if norm and norm not in HESITATIONS:
            tokens.append(_Token(norm, match.start(), match.end()))
    return tokens


def find_quote(quote: str, candidate_turns: Sequence[postprocess.Turn]) -> VerifiedQuote | None:
    """The span of one candidate turn that says `quote` word for word (see the module docstring)."""
    wanted = [token.norm for token in _tokens(quote)]
    if len(wanted) < MIN_QUOTE_WORDS:
        return None
    for turn in candidate_turns:
        tokens = _tokens(turn.text)
        norms = [token.norm for token in tokens]
        for index in range(len(norms) - len(wanted) + 1):
            if norms[index : index + len(wanted)] == wanted:
                span = turn.text[tokens[index].start : tokens[index + len(wanted) - 1].end]
                return VerifiedQuote(text=span, seq=turn.seq, start_s=turn.start_s)
    return None


# ----------------------------------------------------------------------------- building a result


def _clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _competency_result(
    competency: prompts.Competency, assessment: CompetencyAssessment | None, candidate_turns: Sequence[postprocess.Turn]
) -> dict[str, Any]:
    offered = assessment.evidence_quotes if assessment else []
    found = [quote for quote in (find_quote(text, candidate_turns) for text in offered) if quote is not None]
    quotes = list(dict.fromkeys(found))[:MAX_QUOTES_PER_COMPETENCY]
    scored = assessment is not None and assessment.score is not None and bool(quotes)
    return {
        "key": competency.key,
        "title": competency.title,
        "score": assessment.score if scored else None,
        "status": "scored" if scored else "not_enough_evidence",
        "rationale": _clip(assessment.rationale) if scored else NOT_ENOUGH_EVIDENCE,
        "quotes": [quote.to_dict() for quote in quotes] if scored else [],
        "dropped_quotes": len(offered) - len(found),
    }


def overall_score(competencies: Sequence[Mapping[str, Any]]) -> float | None:
    """The mean of the scored competencies, to one decimal; None when none could be scored."""
    scores = [item["score"] for item in competencies if item.get("score") is not None]
    return round(sum(scores) / len(scores), 1) if scores else None


def build_result(track: str, reply: LlmFeedback, turns: Sequence[postprocess.Turn]) -> dict[str, Any]:
    """The stored feedback: the LLM's reply with every quote verified and unsupported scores removed."""
    candidate_turns = [turn for turn in turns if turn.speaker == postprocess.CANDIDATE]
    by_key: dict[str, CompetencyAssessment] = {}
    for assessment in reply.competencies:
        by_key.setdefault(assessment.key, assessment)
    competencies = [
        _competency_result(competency, by_key.get(competency.key), candidate_turns)
        for competency in prompts.RUBRICS[track]
    ]
    rewritten = None
    if reply.rewritten_answer is not None and reply.rewritten_answer.improved_answer.strip():
        original = find_quote(reply.rewritten_answer.original_quote, candidate_turns)
        rewritten = {
            "question": _clip(reply.rewritten_answer.question),
            "original": original.to_dict() if original else None,
            "improved_answer": _clip(reply.rewritten_answer.improved_answer, 3 * MAX_TEXT_CHARS),
        }
    return {
        "version": RESULT_VERSION,
        "competencies": competencies,
        "overall_score": overall_score(competencies),
        "dropped_quotes": sum(item["dropped_quotes"] for item in competencies),
        "strengths": [_clip(text) for text in reply.strengths[:MAX_LIST_ITEMS] if text.strip()],
        "improvements": [
            {"area": _clip(item.area), "technique": _clip(item.technique)}
            for item in reply.improvements[:MAX_LIST_ITEMS]
        ],
        "rewritten_answer": rewritten,
        "stage_notes": [
            {"stage": _clip(item.stage, 120), "note": _clip(item.note)} for item in reply.stage_notes[:MAX_LIST_ITEMS]
        ],
        "practice_plan": [
            {"when": _clip(item.when, 120), "activity": _clip(item.activity)}
            for item in reply.practice_plan[: 2 * MAX_LIST_ITEMS]
        ],
        "summary": _clip(reply.summary),
    }


def result_without_answers(track: str) -> dict[str, Any]:
    """The feedback of an interview in which the candidate never spoke: nothing scored, no LLM call."""
    competencies = [
        {"key": c.key, "title": c.title, "score": None, "status": "not_enough_evidence",
         "rationale": NOT_ENOUGH_EVIDENCE, "quotes": [], "dropped_quotes": 0}
        for c in prompts.RUBRICS[track]
    ]
    return {
        "version": RESULT_VERSION,
        "competencies": competencies,
        "overall_score": None,
        "dropped_quotes": 0,
        "strengths": [],
        "improvements": [],
        "rewritten_answer": None,
        "stage_notes": [],
        "practice_plan": [],
        "summary": NO_ANSWERS_SUMMARY,
    }


# ------------------------------------------------------------------------------- the LLM request


@dataclass(frozen=True)
class LlmSettings:
    """Where and how to ask for feedback: the user's key, optional OpenAI-compatible URL, model."""

    api_key: str
    base_url: str
    model: str


def llm_settings_from(values: Mapping[str, str]) -> LlmSettings | None:
    """The user's LLM settings from their decrypted stored values; None without an API key."""
    api_key = values.get("openai", "")
    if not api_key:
        return None
    return LlmSettings(api_key=api_key, base_url=values.get("llm_base_url") or DEFAULT_BASE_URL,
                       model=values.get("llm_model") or DEFAULT_MODEL)


class FeedbackFailed(Exception):
    """Generation failed; the message is written for the candidate and is safe to show."""


MISSING_KEY_MESSAGE = "Add your OpenAI API key in Settings, then retry."
INVALID_REPLY_MESSAGE = (
    "The model's reply was not valid feedback, twice in a row. Retry, or choose a model that supports "
    "structured output (JSON schema) in Settings."
)


def _explain_api_error(error: openai.OpenAIError, model: str) -> str:
    """A clear message for a failed LLM call. Never the provider's own text: it can echo part of the key."""
    if isinstance(error, openai.AuthenticationError):
        return "Your LLM provider refused the API key (401). Check the OpenAI API key in Settings, then retry."
    if isinstance(error, openai.RateLimitError):
        if error.code == "insufficient_quota":
            return ("Your LLM account has no quota left (429, insufficient quota). Add credit or use another "
                    "key, then retry.")
        return "Your LLM provider is rate-limiting your key (429). Wait a minute, then retry."
    if isinstance(error, openai.PermissionDeniedError):
        return f"Your API key may not use the model {model} (403). Choose another model in Settings, then retry."
    if isinstance(error, openai.NotFoundError):
        return f"The model {model} was not found at your LLM provider (404). Check the LLM model in Settings."
    if isinstance(error, openai.BadRequestError):
        return (f"Your LLM provider rejected the request (400). The model {model} may not support structured "
                "output; choose another model in Settings, then retry.")
    if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError)):
        return "Your LLM provider could not be reached. Check the LLM base URL in Settings, then retry."
    if isinstance(error, openai.APIStatusError):
        return f"Your LLM provider answered with an error ({error.status_code}). Try again later."
    return "The request to your LLM provider failed. Try again later."


ClientFactory = Callable[..., openai.OpenAI]


def request_feedback(
    llm: LlmSettings, system_prompt: str, track: str, client_factory: ClientFactory = openai.OpenAI
) -> LlmFeedback:
    """Ask the LLM for structured feedback; one more attempt when the reply does not validate."""
    client = client_factory(api_key=llm.api_key, base_url=llm.base_url, timeout=LLM_TIMEOUT_S,
                            max_retries=LLM_TRANSPORT_RETRIES)
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": "Write the feedback for this interview now, as JSON in the given schema."},
    ]
    try:
        for attempt in range(1, LLM_ATTEMPTS + 1):
            completion = client.chat.completions.create(
                model=llm.model, messages=messages, response_format=response_format(track)
            )
            choice = completion.choices[0] if completion.choices else None
            content = choice.message.content if choice else None
            if choice is not None and choice.finish_reason != "length" and content:
                try:
                    return LlmFeedback.model_validate_json(content)
                except ValidationError as error:
                    logger.warning("feedback reply %d of %d did not validate: %d errors",
                                   attempt, LLM_ATTEMPTS, error.error_count())
            else:
                logger.warning("feedback reply %d of %d was empty, refused or cut off", attempt, LLM_ATTEMPTS)
    except openai.OpenAIError as error:
        logger.warning("feedback request failed: %s", type(error).__name__)
        raise FeedbackFailed(_explain_api_error(error, llm.model)) from error
    finally:
        client.close()
    raise FeedbackFailed(INVALID_REPLY_MESSAGE)


# ----------------------------------------------------------------------------------- generation


def stage_titles(plan: Mapping[str, Any]) -> dict[str, str]:
    """Stage key -> title from an interview's stored plan."""
    return {stage["key"]: stage["title"] for stage in plan.get("stages", []) if "key" in stage and "title" in stage}


def generate_feedback(
    app_store: store.Store,
    interview_id: str,
    llm: LlmSettings | None,
    client_factory: ClientFactory = openai.OpenAI,
) -> str:
    """Compute the analytics, ask for feedback, verify it and store it; returns the final status.

    The caller has claimed the row (`store.claim_feedback_generation`). Failures are stored with a
    message for the candidate and without scores; the analytics are stored either way.
    """
    with app_store.session() as db:
        interview = store.get_interview(db, interview_id)
        if interview is None:
            return "gone"
        track, role, level = interview.track, interview.role, interview.level
        language, context, plan = interview.language, dict(interview.context or {}), dict(interview.plan or {})
        turns = postprocess.merge_turns(store.list_turns(db, interview_id))
    analytics = postprocess.compute_analytics(turns)
    with app_store.session() as db:
        store.save_feedback_analytics(db, interview_id, analytics)

    model = llm.model if llm else ""
    if not any(turn.speaker == postprocess.CANDIDATE for turn in turns):
        return _finish(app_store, interview_id, "ready", model, result_without_answers(track))
    if llm is None:
        return _finish(app_store, interview_id, "failed", model, error=MISSING_KEY_MESSAGE)
    transcript = postprocess.to_plain_text(turns, stage_titles(plan), {"title": "Transcript"})
    system_prompt = prompts.build_feedback_prompt(
        track,
        role,
        level,
        transcript,
        resume_text=str(context.get("resume_text", "")),
        job_description_text=str(context.get("job_description_text", "")),
        language=language,
    )
    try:
        reply = request_feedback(llm, system_prompt, track, client_factory)
    except FeedbackFailed as failure:
        return _finish(app_store, interview_id, "failed", model, error=str(failure))
    return _finish(app_store, interview_id, "ready", model, build_result(track, reply, turns))


def _finish(
    app_store: store.Store, interview_id: str, status: str, model: str,
    result: dict[str, Any] | None = None, error: str = "",
) -> str:
    with app_store.session() as db:
        store.finish_feedback(db, interview_id, status=status, model=model, result=result or {}, error=error)
    return status


# ------------------------------------------------------------------------- background threads


def _generate_in_background(app_store: store.Store, interview_id: str, llm: LlmSettings | None) -> None:
    """The thread body: generate, and never let an unexpected error escape unrecorded."""
    try:
        generate_feedback(app_store, interview_id, llm)
    except Exception:
        logger.exception("feedback generation failed unexpectedly")
        _finish(app_store, interview_id, "failed", "", error="Something went wrong while writing your feedback. Retry.")


def _threads(app: Flask) -> dict[str, threading.Thread]:
    return app.extensions.setdefault("feedback_threads", {})


def start_generation(app: Flask, interview_id: str, llm: LlmSettings | None, *, force: bool = False) -> bool:
    """Generate an ended interview's feedback in a background thread, off the request path.

    `llm` holds the interview owner's settings (None when they have no key: the failure is stored).
    Starts only when the feedback is missing, pending, failed or stuck (or ready, with `force`), so
    concurrent calls from several requests or processes start it once. Returns whether it started.
    """
    with app.extensions["store"].session() as db:
        if not store.claim_feedback_generation(db, interview_id, force=force):
            return False
    threads = _threads(app)
    for finished in [key for key, thread in threads.items() if not thread.is_alive()]:
        threads.pop(finished, None)
    thread = threading.Thread(
        target=_generate_in_background, args=(app.extensions["store"], interview_id, llm), name="feedback-generation", daemon=True
    )
    threads[interview_id] = thread
    thread.start()
    return True


def wait_for_generation(app: Flask, interview_id: str, timeout_s: float) -> bool:
    """Block until this process's generation thread for the interview ends; True when none is running."""
    thread = _threads(app).get(interview_id)
    if thread is not None:
        thread.join(timeout_s)
        return not thread.is_alive()
    return True
