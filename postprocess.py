"""Transcript post-processing: merging STT fragments, rendering, and speech analytics.

Pure: no I/O, no clock. Input turns are the records the agent writes to the store (plain dicts, or
any object with the same attributes), with times in seconds since the interview started.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

CANDIDATE = "candidate"
INTERVIEWER = "interviewer"
SPEAKER_LABELS = {CANDIDATE: "Candidate", INTERVIEWER: "Interviewer"}

LONG_PAUSE_THRESHOLD_S = 2.0
"""A silence between two words of one answer at least this long counts as a long pause."""

FILLER_NAMES = ("um", "uh", "like", "you know")

# Spelling variants as STT engines write hesitations. "erm" and "hmm" are the nasal (um) family,
# "er" the open (uh) family, following the usual British/American transcription conventions.
_UM_FAMILY = re.compile(r"u+h*m+|e+r+m+|h+m+")
_UH_FAMILY = re.compile(r"u+h+|e+r+")
_NON_WORD_CHARS = re.compile(r"[^\w']+")

# Markdown syntax that can appear mid-line (emphasis, code, links, headings' closing #, tables,
# strikethrough) is backslash-escaped everywhere. ".", ":" and "@" are escaped only inside a token
# (followed by a non-space character), which stops GFM autolinks (www.x.com, http://x, a@b.com) while
# keeping sentence punctuation readable. Line-start syntax (lists, quotes, headings) cannot occur:
# user text is flattened to one line and always follows a label.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~]|[.:@](?=\S))")
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing in seconds since the interview started."""

    word: str
    start: float
    end: float
    confidence: float | None = None
    punctuated_word: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
            "punctuated_word": self.punctuated_word,
        }


@dataclass(frozen=True)
class Turn:
    """One transcript turn: a raw STT fragment or several merged ones."""

    seq: int
    speaker: str
    stage: str
    text: str
    start_s: float
    end_s: float
    words: tuple[Word, ...] = ()
    interrupted: bool = False

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def to_dict(self) -> dict[str, Any]:
        """The turn in the store's plain-dict shape."""
        return {
            "seq": self.seq,
            "speaker": self.speaker,
            "stage": self.stage,
            "text": self.text,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "words": [word.to_dict() for word in self.words],
            "interrupted": self.interrupted,
        }


# A store dict, a Turn, or any object with the same attributes (such as a store row).
TurnRecord = Any


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _to_word(record: Any) -> Word | None:
    """A Word from an STT word record, or None when it lacks text or timing."""
    text, start, end = _field(record, "word"), _field(record, "start"), _field(record, "end")
    if not text or start is None or end is None:
        return None
    confidence = _field(record, "confidence")
    return Word(
        word=str(text),
        start=float(start),
        end=float(end),
        confidence=None if confidence is None else float(confidence),
        punctuated_word=_field(record, "punctuated_word"),
    )


def to_turn(record: TurnRecord) -> Turn:
    """A Turn from a store record (dict or attribute object); a Turn is returned unchanged."""
    if isinstance(record, Turn):
        return record
    words = (_to_word(word) for word in _field(record, "words") or ())
    return Turn(
        seq=int(_field(record, "seq", 0)),
        speaker=str(_field(record, "speaker", "")),
        stage=str(_field(record, "stage", "") or ""),
        text=str(_field(record, "text", "") or ""),
        start_s=float(_field(record, "start_s", 0.0) or 0.0),
        end_s=float(_field(record, "end_s", 0.0) or 0.0),
        words=tuple(word for word in words if word is not None),
        interrupted=bool(_field(record, "interrupted", False)),
    )


# --------------------------------------------------------------------------------------- merging


def merge_turns(turns: Iterable[TurnRecord]) -> list[Turn]:
    """Merge consecutive STT fragments of one speaker within one stage into clean turns.

    Fragments are ordered by seq; empty-text fragments are dropped before merging, so a blank
    fragment never separates two pieces of one answer. A merged turn keeps the first fragment's
    seq and start, the last fragment's end, the texts joined with single spaces, and is
    `interrupted` when any of its fragments was. Words are concatenated in order when every
    fragment has them, and dropped when only some do, so analytics fall back to turn timing
    rather than count a partial set of words. Merging merged turns changes
    nothing, so every function here accepts raw fragments or merged turns alike.
    """
    fragments = sorted((to_turn(record) for record in turns), key=lambda turn: turn.seq)
    merged: list[Turn] = []
    for fragment in fragments:
        text = " ".join(fragment.text.split())
        if not text:
            continue
        previous = merged[-1] if merged else None
        if previous and previous.speaker == fragment.speaker and previous.stage == fragment.stage:
            # Words for only part of the text would skew pace and fillers: keep all or none.
            complete = bool(previous.words) == bool(fragment.words)
            merged[-1] = replace(
                previous,
                text=f"{previous.text} {text}",
                end_s=fragment.end_s,
                words=previous.words + fragment.words if complete else (),
                interrupted=previous.interrupted or fragment.interrupted,
            )
        else:
            merged.append(replace(fragment, text=text))
    return merged


# ------------------------------------------------------------------------------------- rendering


def escape_markdown(text: str) -> str:
    """Make user text literal in Markdown: no links, emphasis, code, headings or raw HTML.

    HTML-significant characters become entities (renderers show them as the plain character and
    never as tags); Markdown punctuation gets a backslash; line breaks become spaces so the text
    cannot start a new block. Meant for inline text that follows other text on its line.
    """
    flat = " ".join(text.split())
    entities = "".join(_HTML_ENTITIES.get(char, char) for char in flat)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", entities)


def format_timestamp(seconds: float) -> str:
    """`[mm:ss]` since the interview started; minutes keep counting past an hour."""
    whole = max(0, int(seconds))
    return f"[{whole // 60:02d}:{whole % 60:02d}]"


def _stage_title(stage: str, stage_titles: Mapping[str, str]) -> str:
    if stage in stage_titles:
        return stage_titles[stage]
    readable = stage.replace("_", " ").strip()
    return readable[:1].upper() + readable[1:] if readable else "Interview"


def _speaker_label(speaker: str) -> str:
    return SPEAKER_LABELS.get(speaker, speaker.capitalize() or "Unknown")


def _meta_lines(meta: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The title and the (label, value) lines under it, each flattened to one line; empty values skipped."""
    title = " ".join(str(meta.get("title") or "").split()) or "Interview transcript"
    details = [
        (" ".join(str(label).split()), " ".join(str(value).split()))
        for label, value in meta.items()
        if label != "title" and value is not None and str(value).strip()
    ]
    return title, details


def to_markdown(
    turns: Iterable[TurnRecord], stage_titles: Mapping[str, str], meta: Mapping[str, Any] | None = None
) -> str:
    """The transcript as Markdown with every piece of user text escaped.

    `meta["title"]` becomes the top heading (default "Interview transcript"); every other entry is
    listed under it as "label: value" in the given order. A level-2 heading starts each run of
    turns in one stage (titles from `stage_titles`, else the humanised stage key).
    """
    title, details = _meta_lines(meta or {})
    lines = [f"# {escape_markdown(title)}", ""]
    if details:
        lines += [f"- **{escape_markdown(label)}:** {escape_markdown(value)}" for label, value in details]
        lines.append("")
    current_stage: str | None = None
    for turn in merge_turns(turns):
        if turn.stage != current_stage:
            current_stage = turn.stage
            lines += [f"## {escape_markdown(_stage_title(turn.stage, stage_titles))}", ""]
        interrupted = " *(interrupted)*" if turn.interrupted else ""
        lines += [
            f"**{escape_markdown(format_timestamp(turn.start_s))} "
            f"{escape_markdown(_speaker_label(turn.speaker))}:** {escape_markdown(turn.text)}{interrupted}",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_plain_text(
    turns: Iterable[TurnRecord], stage_titles: Mapping[str, str], meta: Mapping[str, Any] | None = None
) -> str:
    """The transcript as plain text, laid out like `to_markdown` but without any markup."""
    title, details = _meta_lines(meta or {})
    lines = [title, "=" * len(title)]
    lines += [f"{label}: {value}" for label, value in details]
    current_stage: str | None = None
    for turn in merge_turns(turns):
        if turn.stage != current_stage:
            current_stage = turn.stage
            stage_title = _stage_title(turn.stage, stage_titles)
            lines += ["", stage_title, "-" * len(stage_title)]
        interrupted = " (interrupted)" if turn.interrupted else ""
        label = f"{format_timestamp(turn.start_s)} {_speaker_label(turn.speaker)}"
        lines.append(f"{label}: {turn.text}{interrupted}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- analytics


def _normalise_token(token: str) -> str:
    return _NON_WORD_CHARS.sub("", token.lower()).strip("'")


def _filler_family(token: str) -> str | None:
    if _UM_FAMILY.fullmatch(token):
        return "um"
    if _UH_FAMILY.fullmatch(token):
        return "uh"
    if token == "like":
        return "like"
    return None


def count_fillers(tokens: Sequence[str]) -> dict[str, int]:
    """Filler counts over normalised tokens, literally as the STT reported them.

    um/uh include their spelling variants (umm, erm, hmm / uhh, er). "like" and "you know" are
    counted at every occurrence: telling the filler from the verb needs meaning, not tokens.
    """
    counts = dict.fromkeys(FILLER_NAMES, 0)
    for index, token in enumerate(tokens):
        family = _filler_family(token)
        if family:
            counts[family] += 1
        if token == "you" and index + 1 < len(tokens) and tokens[index + 1] == "know":
            counts["you know"] += 1
    return counts


@dataclass(frozen=True)
class LongPause:
    """A silence of at least LONG_PAUSE_THRESHOLD_S after word `after_word_index` of an answer."""

    after_word_index: int
    after_word: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class _Answer:
    """Raw (unrounded) measurements of one merged candidate turn."""

    turn: Turn
    timing: str
    tokens: tuple[str, ...]
    fillers: dict[str, int]
    length_s: float
    voiced_s: float
    long_pauses: tuple[LongPause, ...] | None
    time_to_answer_s: float | None
    barge_in: bool


def _voiced_time_and_pauses(words: Sequence[Word]) -> tuple[float, tuple[LongPause, ...]]:
    """Voiced time and long pauses of one answer's words, ordered by start (see `compute_analytics`).

    A gap is measured from the latest end so far, so overlapping word timings never make one.
    """
    reached = words[0].end
    pauses: list[LongPause] = []
    for index, word in enumerate(words[1:], start=1):
        if word.start - reached >= LONG_PAUSE_THRESHOLD_S:
            pauses.append(LongPause(index - 1, words[index - 1].word, start_s=reached, end_s=word.start))
        reached = max(reached, word.end)
    span = reached - words[0].start
    return span - sum(pause.duration_s for pause in pauses), tuple(pauses)


def _measure_answer(turn: Turn, previous: Turn | None) -> _Answer:
    if turn.words:
        timing = "words"
        words = sorted(turn.words, key=lambda word: word.start)
        raw_tokens = [word.word for word in words]
        voiced_s, long_pauses = _voiced_time_and_pauses(words)
        first_word_s = words[0].start
        length_s = max(word.end for word in words) - first_word_s
    else:
        timing = "turn"
        raw_tokens = turn.text.split()
        voiced_s, long_pauses = turn.duration_s, None
        first_word_s = turn.start_s
        length_s = turn.duration_s
    tokens = tuple(token for token in map(_normalise_token, raw_tokens) if token)

    time_to_answer_s: float | None = None
    barge_in = False
    if previous is not None and previous.speaker == INTERVIEWER:
        gap = first_word_s - previous.end_s
        barge_in = gap < 0 or previous.interrupted
        time_to_answer_s = max(0.0, gap)
    return _Answer(
        turn=turn,
        timing=timing,
        tokens=tokens,
        fillers=count_fillers(tokens),
        length_s=max(0.0, length_s),
        voiced_s=max(0.0, voiced_s),
        long_pauses=long_pauses,
        time_to_answer_s=time_to_answer_s,
        barge_in=barge_in,
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _pace_wpm(word_count: int, voiced_s: float) -> float | None:
    return word_count / (voiced_s / 60.0) if voiced_s > 0 else None


def _filler_summary(counts: Mapping[str, int], word_count: int) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "counts": dict(counts),
        "total": total,
        "per_100_words": _round(total * 100 / word_count) if word_count else None,
    }


def _answer_dict(answer: _Answer) -> dict[str, Any]:
    word_count = len(answer.tokens)
    if answer.long_pauses is None:
        pauses: dict[str, Any] = {"count": None, "longest_s": None, "positions": []}
    else:
        pauses = {
            "count": len(answer.long_pauses),
            "longest_s": _round(max((pause.duration_s for pause in answer.long_pauses), default=None)),
            "positions": [
                {
                    "after_word_index": pause.after_word_index,
                    "after_word": pause.after_word,
                    "start_s": _round(pause.start_s),
                    "end_s": _round(pause.end_s),
                    "duration_s": _round(pause.duration_s),
                }
                for pause in answer.long_pauses
            ],
        }
    return {
        "seq": answer.turn.seq,
        "stage": answer.turn.stage,
        "timing": answer.timing,
        "start_s": _round(answer.turn.start_s),
        "end_s": _round(answer.turn.end_s),
        "length_s": _round(answer.length_s),
        "word_count": word_count,
        "voiced_s": _round(answer.voiced_s),
        "pace_wpm": _round(_pace_wpm(word_count, answer.voiced_s), 1),
        "fillers": _filler_summary(answer.fillers, word_count),
        "long_pauses": pauses,
        "time_to_answer_s": _round(answer.time_to_answer_s),
        "barge_in": answer.barge_in,
    }


def _talk_time(turns: Sequence[Turn]) -> dict[str, Any]:
    candidate_s = sum(turn.duration_s for turn in turns if turn.speaker == CANDIDATE)
    interviewer_s = sum(turn.duration_s for turn in turns if turn.speaker == INTERVIEWER)
    total_s = candidate_s + interviewer_s
    return {
        "candidate_s": _round(candidate_s),
        "interviewer_s": _round(interviewer_s),
        "candidate_to_interviewer": _round(candidate_s / interviewer_s) if interviewer_s else None,
        "candidate_share": _round(candidate_s / total_s) if total_s else None,
    }


def _aggregate(answers: Sequence[_Answer], turns: Sequence[Turn]) -> dict[str, Any]:
    timings = {answer.timing for answer in answers}
    word_count = sum(len(answer.tokens) for answer in answers)
    voiced_s = sum(answer.voiced_s for answer in answers)
    filler_counts = {name: sum(answer.fillers[name] for answer in answers) for name in FILLER_NAMES}
    pauses = [pause for answer in answers for pause in answer.long_pauses or ()]
    word_timed = any(answer.long_pauses is not None for answer in answers)
    latencies = [answer.time_to_answer_s for answer in answers if answer.time_to_answer_s is not None]
    lengths = [answer.length_s for answer in answers]
    return {
        "timing": timings.pop() if len(timings) == 1 else ("mixed" if timings else None),
        "answer_count": len(answers),
        "word_count": word_count,
        "voiced_s": _round(voiced_s),
        "pace_wpm": _round(_pace_wpm(word_count, voiced_s), 1),
        "fillers": _filler_summary(filler_counts, word_count),
        "long_pauses": {
            "count": len(pauses) if word_timed else None,
            "longest_s": _round(max((pause.duration_s for pause in pauses), default=None)),
        },
        "time_to_answer": {
            "count": len(latencies),
            "mean_s": _round(statistics.fmean(latencies)) if latencies else None,
            "max_s": _round(max(latencies, default=None)),
            "barge_ins": sum(answer.barge_in for answer in answers),
        },
        "answer_length": {
            "total_s": _round(sum(lengths)),
            "mean_s": _round(statistics.fmean(lengths)) if lengths else None,
            "longest_s": _round(max(lengths, default=None)),
            "mean_words": _round(word_count / len(answers)) if answers else None,
        },
        "talk_time": _talk_time(turns),
    }


def compute_analytics(turns: Iterable[TurnRecord]) -> dict[str, Any]:
    """Speech analytics per answer, per stage and overall, as a JSON-serialisable dict.

    An answer is one merged candidate turn. Definitions:
    - pace_wpm = words / voiced minutes. Voiced time is the time covered by the answer's words plus
      every gap between consecutive words shorter than LONG_PAUSE_THRESHOLD_S; equivalently the span
      from the first word's start to the last word's end minus the long pauses. Long pauses are
      silence, not speech, so they do not slow the pace down.
    - fillers: see `count_fillers`; per_100_words = total fillers * 100 / words.
    - long_pauses: gaps >= LONG_PAUSE_THRESHOLD_S between consecutive words, with the index and text
      of the word before each gap and its interview-relative start/end.
    - time_to_answer_s: the first word's start minus the end of the immediately preceding
      interviewer turn; None when the answer does not follow an interviewer turn (the candidate
      spoke first, or kept talking into a new stage). A negative gap is clamped to 0; `barge_in`
      flags it, and also an answer that cut the interviewer off (`interrupted`).
    - length_s: first word start to last word end; word_count: non-empty word tokens.
    - talk_time: candidate and interviewer turn durations (end - start) summed, their ratio
      (candidate / interviewer) and the candidate's share of both.
    Without word timings (`"timing": "turn"`), words come from the text, voiced time and length are
    the turn's duration, and long pauses are unknown (None). Aggregates report `"timing"` as
    "words", "turn" or "mixed"; their pace is total words over total voiced time, not a mean of
    paces, and their long-pause count covers word-timed answers only (None when there are none).
    Floats are rounded to 0.01 (pace to 0.1) after all arithmetic.
    """
    merged = merge_turns(turns)
    answers = [
        _measure_answer(turn, merged[index - 1] if index else None)
        for index, turn in enumerate(merged)
        if turn.speaker == CANDIDATE
    ]
    stage_order = list(dict.fromkeys(turn.stage for turn in merged))
    stages = [
        {
            "stage": stage,
            **_aggregate(
                [answer for answer in answers if answer.turn.stage == stage],
                [turn for turn in merged if turn.stage == stage],
            ),
        }
        for stage in stage_order
    ]
    return {
        "long_pause_threshold_s": LONG_PAUSE_THRESHOLD_S,
        "overall": _aggregate(answers, merged),
        "stages": stages,
        "answers": [_answer_dict(answer) for answer in answers],
    }
