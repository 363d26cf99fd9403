"""End of turn for interviews: wait through thinking pauses, answer quickly after a finished answer.

Silence alone cannot tell "I led the migration." (done) from "so the main thing I did was, um..."
(thinking). The words can: a candidate who stops on a filler, a trailing comma or ellipsis, a
conjunction or an article has not finished the clause. This module reads the final transcript
that the STT hands over (Deepgram with punctuation and filler words on) and says how likely the
turn is over. The session then waits the short endpointing delay after a likely end and the long
one after an unlikely end; the candidate resuming within the long delay cancels the turn end.

Rules, first match wins (English word lists; other languages use the punctuation rules only):
1. The text ends in a filler ("um", "uh", ...) or in a comma, ellipsis or dash: unfinished.
2. The last word is a conjunction, article or possessive ("and", "because", "the", "my"): unfinished,
   even when the STT put a full stop after it, unless it closes a set phrase ("I think so.").
3. The text ends in "?" or "!": finished.
4. The text ends in ".": finished.
5. No closing punctuation: probably unfinished. A punctuating STT closes finished sentences, so an
   open fragment is more often a pause mid-thought.

Why rules and not a model: the end-of-turn model bundled with livekit-local-inference
(turn-detector-v1-mini) scores the last 1.2 s of audio, not the words, and on our simulated
interviews it both interrupted thinking pauses and held finished answers for its long delay
(figures in BENCHMARKS.md). These rules cost microseconds and need nothing downloaded.

Pure: no I/O, no clock. `TranscriptTurnDetector` adapts `end_of_turn_probability` to the turn
detector protocol of livekit-agents (`turn_handling={"turn_detection": ...}`) without importing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

UNLIKELY_THRESHOLD = 0.5


class Ending(StrEnum):
    FINISHED = "finished"
    UNFINISHED = "unfinished"


@dataclass(frozen=True)
class TurnVerdict:
    """How a transcript ends: the probability that the turn is over, and the rule that decided."""

    probability: float
    reason: str

    @property
    def ending(self) -> Ending:
        return Ending.FINISHED if self.probability >= UNLIKELY_THRESHOLD else Ending.UNFINISHED


@dataclass(frozen=True)
class TurnTimings:
    """The session's turn settings that go with the detector (seconds).

    `min_delay` follows a likely end, `max_delay` an unlikely one; `max_delay` must outlast the
    longest thinking pause worth waiting for (2.0 s in the simulator's set) plus the time the VAD
    needs to notice the candidate speaking again.
    """

    vad_min_silence_s: float = 0.25
    min_delay_s: float = 0.3
    max_delay_s: float = 2.6


DEFAULT_TIMINGS = TurnTimings()

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "mm", "ah", "eh"})
# Words after which an English clause cannot end.
CONTINUATIONS = frozenset({
    "and", "but", "or", "nor", "so", "because", "cause", "although", "though", "whereas", "unless",
    "if", "whether", "than", "a", "an", "the", "my", "our", "your", "their", "his", "her", "its",
})
# Set phrases that end on one of those words and still close a sentence.
CLOSED_PHRASES = frozenset({
    ("think", "so"), ("hope", "so"), ("guess", "so"), ("believe", "so"), ("said", "so"),
    ("or", "so"), ("even", "so"), ("not", "so"), ("so", "so"), ("more", "than"),
})
OPEN_ENDINGS = (",", "...", "\u2026", "-", "\u2013", "\u2014", ";", ":")

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)

PROBABILITY_FILLER = 0.05
PROBABILITY_OPEN_PUNCTUATION = 0.1
PROBABILITY_CONTINUATION = 0.15
PROBABILITY_NO_PUNCTUATION = 0.3
PROBABILITY_STATEMENT = 0.9
PROBABILITY_QUESTION = 0.95


def _is_english(language: str | None) -> bool:
    return not language or language.lower().split("-")[0] == "en"


def end_of_turn_verdict(transcript: str, language: str | None = "en") -> TurnVerdict:
    """Decide from the candidate's transcript so far whether their turn is likely over."""
    text = transcript.strip()
    if not text:
        return TurnVerdict(PROBABILITY_STATEMENT, "empty")
    words = [word.lower() for word in _WORD.findall(text)]
    english = _is_english(language)
    if english and words and words[-1] in FILLERS:
        return TurnVerdict(PROBABILITY_FILLER, "filler")
    if text.endswith(OPEN_ENDINGS):
        return TurnVerdict(PROBABILITY_OPEN_PUNCTUATION, "open punctuation")
    if english and words and words[-1] in CONTINUATIONS and tuple(words[-2:]) not in CLOSED_PHRASES:
        return TurnVerdict(PROBABILITY_CONTINUATION, "continuation word")
    if text.endswith(("?", "!", "\u00bf", "\u00a1")):
        return TurnVerdict(PROBABILITY_QUESTION, "question or exclamation")
    if text.endswith((".", "\u3002")):
        return TurnVerdict(PROBABILITY_STATEMENT, "full stop")
    return TurnVerdict(PROBABILITY_NO_PUNCTUATION, "no closing punctuation")


def end_of_turn_probability(transcript: str, language: str | None = "en") -> float:
    """The probability that the turn is over (below UNLIKELY_THRESHOLD the session waits longer)."""
    return end_of_turn_verdict(transcript, language).probability


def last_user_text(items: list[Any]) -> str:
    """The text of the last user message in a chat context's items (duck-typed), or ''."""
    for item in reversed(items):
        if getattr(item, "type", None) == "message" and getattr(item, "role", None) == "user":
            return getattr(item, "text_content", None) or ""
    return ""


class TranscriptTurnDetector:
    """livekit-agents' turn-detector protocol over `end_of_turn_probability`.

    The session adds the candidate's transcript so far as the last user message of the chat
    context it passes in, then compares the probability with `unlikely_threshold`.
    """

    def __init__(self, language: str = "en", threshold: float = UNLIKELY_THRESHOLD) -> None:
        self.language = language
        self.threshold = threshold

    @property
    def model(self) -> str:
        return "mockflow-transcript-rules"

    @property
    def provider(self) -> str:
        return "mockflow"

    async def unlikely_threshold(self, language: str | None) -> float:
        return self.threshold

    async def supports_language(self, language: str | None) -> bool:
        return True

    async def predict_end_of_turn(self, chat_ctx: Any, *, timeout: float | None = None) -> float:
        return end_of_turn_probability(last_user_text(list(chat_ctx.items)), self.language)


def session_turn_handling(language: str = "en", timings: TurnTimings = DEFAULT_TIMINGS) -> dict[str, Any]:
    """The `turn_handling` argument of AgentSession for an interview (the VAD is set separately)."""
    return {
        "turn_detection": TranscriptTurnDetector(language),
        "endpointing": {"mode": "fixed", "min_delay": timings.min_delay_s, "max_delay": timings.max_delay_s},
    }
