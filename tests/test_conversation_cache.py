"""The interview context: relevance-ranked trimming of resume and job description, built once."""

from __future__ import annotations

from conversation_cache import (
    JOB_DESCRIPTION_TOKEN_BUDGET,
    RESUME_TOKEN_BUDGET,
    InterviewSetup,
    build_context,
    estimate_tokens,
    trim_by_relevance,
)

FILLER = "Enjoyed hiking, photography and cooking with friends on weekends in the mountains."


def setup(**changes) -> InterviewSetup:
    values = dict(candidate_name="Ada", role="Payments engineer", level="senior", company="Acme",
                  track="behavioral", length="standard", language="en",
                  resume_text="", job_description_text="")
    values.update(changes)
    return InterviewSetup(**values)


def test_short_texts_are_kept_whole():
    text = "Built the payments ledger.\n\nLed a team of four."
    assert trim_by_relevance(text, "payments", 1000) == (text, False)


def test_relevant_paragraphs_win_over_earlier_ones():
    hobbies = "\n\n".join(f"{FILLER} ({n})" for n in range(60))
    relevant = "Led the Kafka payments ledger migration, cutting settlement time by 40%."
    resume = hobbies + "\n\n" + relevant
    trimmed, was_cut = trim_by_relevance(resume, "payments engineer kafka ledger settlement", 200)
    assert was_cut
    assert relevant in trimmed
    assert estimate_tokens(trimmed) <= 200


def test_kept_paragraphs_stay_in_their_original_order():
    paragraphs = [f"Payments project {n}: built ledger service {n}." for n in range(5)]
    noise = [f"{FILLER} {n}" for n in range(40)]
    text = "\n\n".join(paragraphs[:2] + noise + paragraphs[2:])
    trimmed, _ = trim_by_relevance(text, "payments ledger", 120)
    positions = [trimmed.find(p) for p in paragraphs if p in trimmed]
    assert len(positions) >= 2
    assert positions == sorted(positions)


def test_context_holds_the_setup_and_fits_the_budgets():
    resume = "\n\n".join(f"{FILLER} {n}" for n in range(400))
    jd = "\n\n".join(f"Requirement {n}: payments experience with ledgers." for n in range(400))
    context = build_context(setup(resume_text=resume, job_description_text=jd))
    assert context["role"] == "Payments engineer" and context["language"] == "en"
    assert context["resume_trimmed"] and context["job_description_trimmed"]
    assert estimate_tokens(context["resume_text"]) <= RESUME_TOKEN_BUDGET
    assert estimate_tokens(context["job_description_text"]) <= JOB_DESCRIPTION_TOKEN_BUDGET


def test_an_oversized_single_paragraph_is_split_not_dropped():
    wall = " ".join(["payments"] * 3000)
    trimmed, was_cut = trim_by_relevance(wall, "payments", 300)
    assert was_cut and trimmed
    assert estimate_tokens(trimmed) <= 300
