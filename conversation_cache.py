"""The interview context handed to the agent and reused by the feedback: built once per interview.

Resume and job description are trimmed to a token budget by relevance, not by position: the text is
cut into paragraphs, each is scored by how many of the role's and the job description's content words
it shares (plus cues such as "requirements" or "led"), the best paragraphs are kept until the budget
is spent, and the kept ones are put back in their original order so the text still reads naturally.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from prompts import LANGUAGE_NAMES

# The languages that Deepgram nova-3 (speech-to-text) and OpenAI TTS both speak, with the code
# Deepgram expects; the names come from the prompts, which speak them to the LLM.
DEEPGRAM_LANGUAGE_CODES: dict[str, str] = {
    "en": "en-US",
    "es": "es",
    "fr": "fr",
    "de": "de",
    "it": "it",
    "pt": "pt",
    "nl": "nl",
    "hi": "hi",
    "ru": "ru",
    "ja": "ja",
}
INTERVIEW_LANGUAGES: dict[str, tuple[str, str]] = {
    code: (LANGUAGE_NAMES[code], deepgram_code) for code, deepgram_code in DEEPGRAM_LANGUAGE_CODES.items()
}
LEVELS: dict[str, str] = {
    "intern": "Intern",
    "junior": "Junior",
    "mid": "Mid-level",
    "senior": "Senior",
    "staff": "Staff+",
}

CHARS_PER_TOKEN = 4
RESUME_TOKEN_BUDGET = 1500
JOB_DESCRIPTION_TOKEN_BUDGET = 1000
MAX_PARAGRAPH_CHARS = 1200

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]{1,}")
_STOPWORDS = frozenset(
    """a an and are as at be by for from has have in is it its of on or our that the their this to
    was were will with you your we they he she i me my us who what when where which while about into
    over under more most other some such than then there these those through during per via also""".split()
)
_SECTION_CUES = frozenset(
    """requirements required qualifications responsibilities must experience skills led built designed
    launched improved reduced increased owned managed shipped architected mentored delivered""".split()
)


@dataclass(frozen=True)
class InterviewSetup:
    """What the candidate entered on the start form, already validated."""

    candidate_name: str
    role: str
    level: str
    company: str
    track: str
    length: str
    language: str
    resume_text: str = ""
    job_description_text: str = ""


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate (about four characters per token in English)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _content_words(text: str) -> list[str]:
    return [w.lower().strip(".-") for w in _WORD.findall(text) if w.lower() not in _STOPWORDS]


def _paragraphs(text: str) -> list[str]:
    blocks = [block.strip() for block in re.split(r"\n\s*\n|\n(?=\s*[-•*]\s)", text) if block.strip()]
    pieces: list[str] = []
    for block in blocks:
        while len(block) > MAX_PARAGRAPH_CHARS:
            cut = block.rfind(" ", 0, MAX_PARAGRAPH_CHARS)
            cut = cut if cut > 0 else MAX_PARAGRAPH_CHARS
            pieces.append(block[:cut].strip())
            block = block[cut:].strip()
        if block:
            pieces.append(block)
    return pieces


def _score(paragraph: str, focus: Counter[str]) -> float:
    words = _content_words(paragraph)
    if not words:
        return 0.0
    overlap = sum(min(focus[word], 3) for word in set(words) if word in focus)
    cues = sum(1 for word in set(words) if word in _SECTION_CUES)
    has_numbers = 1 if re.search(r"\d", paragraph) else 0
    return (overlap * 2 + cues + has_numbers) / (1 + len(words) ** 0.5)


def trim_by_relevance(text: str, focus_text: str, token_budget: int) -> tuple[str, bool]:
    """Keep the most relevant paragraphs of `text` within `token_budget`; say whether it was cut."""
    text = text.strip()
    if estimate_tokens(text) <= token_budget:
        return text, False
    paragraphs = _paragraphs(text)
    focus = Counter(_content_words(focus_text))
    ranked = sorted(range(len(paragraphs)), key=lambda i: (-_score(paragraphs[i], focus), i))
    kept: set[int] = set()
    remaining = token_budget
    for index in ranked:
        cost = estimate_tokens(paragraphs[index]) + 1
        if cost <= remaining:
            kept.add(index)
            remaining -= cost
    return "\n\n".join(paragraphs[i] for i in sorted(kept)), True


def build_context(setup: InterviewSetup) -> dict:
    """The agent's interview context, as a JSON-ready dict stored with the interview."""
    resume, resume_trimmed = trim_by_relevance(
        setup.resume_text,
        f"{setup.role} {setup.role} {setup.job_description_text}",
        RESUME_TOKEN_BUDGET,
    )
    job_description, jd_trimmed = trim_by_relevance(
        setup.job_description_text,
        f"{setup.role} {setup.role} {setup.level} {setup.resume_text}",
        JOB_DESCRIPTION_TOKEN_BUDGET,
    )
    return {
        "candidate_name": setup.candidate_name,
        "role": setup.role,
        "level": setup.level,
        "company": setup.company,
        "track": setup.track,
        "length": setup.length,
        "language": setup.language,
        "resume_text": resume,
        "job_description_text": job_description,
        "resume_trimmed": resume_trimmed,
        "job_description_trimmed": jd_trimmed,
    }
