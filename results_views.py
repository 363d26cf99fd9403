"""After the interview: the feedback page and its status API, regeneration, Markdown and PDF exports,
deleting an interview, the dashboard's history and progress, and the user's own data (download,
account deletion).

Every route with an interview id loads it through `auth_helpers.load_owned_interview` (404 for
anyone else). Charts are inline SVG computed here and drawn by `templates/_charts.html`; each has a
title, a description that states every value, and a data table, so nothing is shown only as a
picture. LLM and user text is rendered by Jinja's autoescaping, or escaped for Markdown by
`postprocess.escape_markdown`.
"""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from fpdf import FPDF
from fpdf.enums import XPos, YPos

import feedback
import fsm
import postprocess
import store
from auth_helpers import current_user, load_owned_interview, login_required
from security import error_response, limiter
from settings_views import decrypted_values

bp = Blueprint("results", __name__)

ACTIVE_STATUSES = frozenset({"starting", "live"})
STATUS_LABELS = {
    "created": "Not started",
    "starting": "Starting",
    "live": "In progress",
    "completed": "Completed",
    "interrupted": "Ended early",
    "failed": "Failed",
}
FEEDBACK_MESSAGES = {
    "pending": "Waiting to start writing your feedback…",
    "measuring": "Measuring your speech…",
    "generating": (
        "Writing your feedback and checking every quote against the transcript. "
        "This usually takes under a minute."
    ),
    "ready": "Your feedback is ready.",
}
UNICODE_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core


# ------------------------------------------------------------------------------------- helpers


def ended(interview: store.Interview) -> bool:
    return interview.status in store.INTERVIEW_FINAL_STATUSES


def duration_text(seconds: float | None) -> str:
    """Like "12 min 05 s" or "42 s"; "—" when unknown."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


def interview_duration_s(interview: store.Interview) -> float | None:
    if interview.started_at is None or interview.ended_at is None:
        return None
    return (interview.ended_at - interview.started_at).total_seconds()


def _date_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _length_text(interview: store.Interview) -> str:
    name, minutes = fsm.LENGTHS.get(interview.length, (interview.length, None))
    planned = f"{name} ({minutes} min)" if minutes else name
    taken = interview_duration_s(interview)
    return planned if taken is None else f"{planned}, took {duration_text(taken)}"


def interview_meta(interview: store.Interview) -> list[tuple[str, str]]:
    """(label, value) lines describing an interview, for the page and the exports."""
    lines = [
        ("Date", _date_text(interview.created_at)),
        ("Track", fsm.TRACKS.get(interview.track, interview.track)),
        ("Role", interview.role),
        ("Level", interview.level),
        ("Length", _length_text(interview)),
        ("Status", STATUS_LABELS.get(interview.status, interview.status)),
    ]
    if interview.company:
        lines.insert(3, ("Company", interview.company))
    return lines


def ended_early_notice(interview: store.Interview) -> str | None:
    if interview.status not in ("interrupted", "failed"):
        return None
    reason = f" ({interview.failure_reason.rstrip('.')})" if interview.failure_reason else ""
    return (f"This interview ended early{reason}. The transcript, analytics and feedback cover what was "
            "said before it stopped.")


def merged_turns(interview_id: str) -> list[postprocess.Turn]:
    return postprocess.merge_turns(store.list_turns(store.get_db(), interview_id))


@dataclass(frozen=True)
class TranscriptStage:
    key: str
    title: str
    turns: list[postprocess.Turn]


def transcript_by_stage(turns: Sequence[postprocess.Turn], titles: Mapping[str, str]) -> list[TranscriptStage]:
    """Consecutive turns grouped under their stage, in the order they happened."""
    groups: list[TranscriptStage] = []
    for turn in turns:
        if not groups or groups[-1].key != turn.stage:
            title = titles.get(turn.stage) or turn.stage.replace("_", " ").capitalize() or "Interview"
            groups.append(TranscriptStage(turn.stage, title, []))
        groups[-1].turns.append(turn)
    return groups


# ---------------------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class SvgText:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = "chart-label"


@dataclass(frozen=True)
class SvgRect:
    x: float
    y: float
    width: float
    height: float
    css: str = "chart-bar"


@dataclass(frozen=True)
class SvgLine:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "chart-gridline"


@dataclass
class Chart:
    """An inline SVG chart and its text alternatives: the description and the data table."""

    id: str
    title: str
    description: str
    width: int
    height: int
    table_headers: tuple[str, str]
    table_rows: list[tuple[str, str]]
    rects: list[SvgRect] = field(default_factory=list)
    lines: list[SvgLine] = field(default_factory=list)
    texts: list[SvgText] = field(default_factory=list)
    polylines: list[str] = field(default_factory=list)
    dots: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ChartItem:
    """One value: `text` states it in words (description, table); `short`, if set, labels it on the chart."""

    label: str
    value: float | None  # None: nothing to draw
    text: str
    short: str = ""


# Charts are drawn small (their text is sized for this width) so they stay readable when a phone
# scales them down; feedback.css caps them at this width on wide screens.
CHART_WIDTH = 480
LABEL_CHARS = 22


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def nice_step(maximum: float, target_ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target_ticks` ticks."""
    if maximum <= 0:
        return 1.0
    raw = maximum / target_ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= raw)


def _chart(chart_id: str, title: str, items: Sequence[ChartItem], width: int, height: int,
           headers: tuple[str, str]) -> Chart:
    description = f"{title}. " + "; ".join(f"{item.label}: {item.text}" for item in items) + "."
    return Chart(chart_id, title, description, width, height, headers, [(item.label, item.text) for item in items])


def hbar_chart(
    chart_id: str, title: str, items: Sequence[ChartItem], maximum: float, headers: tuple[str, str],
    step: float | None = None,
) -> Chart:
    """Horizontal bars, one row per item, labels on the left and the value after each bar."""
    label_w, value_w, row_h, bar_h, top, axis_h = 190, 70, 32, 20, 6, 22
    plot_w = CHART_WIDTH - label_w - value_w
    height = top + row_h * len(items) + axis_h
    step = step or nice_step(maximum)
    chart = _chart(chart_id, title, items, CHART_WIDTH, height, headers)
    tick = 0.0
    while tick <= maximum + 1e-9:
        x = label_w + tick / maximum * plot_w
        chart.lines.append(SvgLine(x, top, x, top + row_h * len(items)))
        chart.texts.append(SvgText(x, height - 6, f"{tick:g}", "middle", "chart-tick"))
        tick += step
    for index, item in enumerate(items):
        y = top + index * row_h
        middle = y + row_h / 2 + 5
        chart.texts.append(SvgText(label_w - 8, middle, _short(item.label), "end"))
        width = 0.0 if item.value is None else max(0.0, min(item.value, maximum)) / maximum * plot_w
        if width:
            chart.rects.append(SvgRect(label_w, y + (row_h - bar_h) / 2, width, bar_h))
        chart.texts.append(SvgText(label_w + width + 6, middle, item.short or item.text, "start", "chart-value"))
    return chart


def column_chart(
    chart_id: str, title: str, items: Sequence[ChartItem], headers: tuple[str, str], unit: str
) -> Chart:
    """Vertical columns along the x axis (e.g. pace per answer), with a labelled y axis."""
    left, right, top, bottom, plot_h = 44, 8, 22, 26, 160
    plot_w = CHART_WIDTH - left - right
    height = top + plot_h + bottom
    highest = max((item.value for item in items if item.value is not None), default=1.0) * 1.1
    step = nice_step(highest)
    maximum = step * math.ceil(highest / step)
    chart = _chart(chart_id, title, items, CHART_WIDTH, height, headers)
    tick = 0.0
    while tick <= maximum + 1e-9:
        y = top + plot_h - tick / maximum * plot_h
        chart.lines.append(SvgLine(left, y, CHART_WIDTH - right, y))
        chart.texts.append(SvgText(left - 6, y + 4, f"{tick:g}", "end", "chart-tick"))
        tick += step
    chart.texts.append(SvgText(left - 6, top - 8, unit, "end", "chart-tick"))
    slot = plot_w / max(1, len(items))
    show_values = len(items) <= 10
    label_every = 1 if show_values else math.ceil(len(items) / 10)
    for index, item in enumerate(items):
        x = left + index * slot
        if item.value is not None:
            bar_h = item.value / maximum * plot_h
            chart.rects.append(SvgRect(x + slot * 0.2, top + plot_h - bar_h, slot * 0.6, bar_h))
            if show_values:
                chart.texts.append(SvgText(x + slot / 2, top + plot_h - bar_h - 5, item.short, "middle",
                                           "chart-value"))
        if index % label_every == 0:
            chart.texts.append(SvgText(x + slot / 2, height - 8, item.label, "middle", "chart-tick"))
    return chart


def score_line_chart(chart_id: str, title: str, points: Sequence[tuple[str, int | None]]) -> Chart:
    """One competency's scores (1–5) over successive interviews, for the dashboard."""
    width, left, right, top, bottom, plot_h = 300, 26, 14, 10, 24, 100
    plot_w = width - left - right
    height = top + plot_h + bottom
    items = [ChartItem(date, score, f"{score} of 5" if score else "not scored") for date, score in points]
    chart = _chart(chart_id, title, items, width, height, ("Interview", "Score"))
    for score in range(1, 6):
        y = top + plot_h - (score - 1) / 4 * plot_h
        chart.lines.append(SvgLine(left, y, width - right, y))
        chart.texts.append(SvgText(left - 6, y + 4, str(score), "end", "chart-tick"))
    step = plot_w / max(1, len(points) - 1)
    segment: list[tuple[float, float]] = []
    for index, (_date, score) in enumerate([*points, ("", None)]):
        if score is None:
            # An unscored interview breaks the line, so no trend is drawn across it.
            if len(segment) > 1:
                chart.polylines.append(" ".join(f"{x},{y}" for x, y in segment))
            segment = []
            continue
        x = left + (index * step if len(points) > 1 else plot_w / 2)
        segment.append((round(x, 1), round(top + plot_h - (score - 1) / 4 * plot_h, 1)))
        chart.dots.append(segment[-1])
    if points:
        chart.texts.append(SvgText(left, height - 6, points[0][0], "start", "chart-tick"))
        if len(points) > 1:
            chart.texts.append(SvgText(width - right, height - 6, points[-1][0], "end", "chart-tick"))
    return chart


def score_chart(result: Mapping[str, Any]) -> Chart:
    items = [
        ChartItem(item["title"], item["score"],
                  f"{item['score']} of 5" if item["score"] is not None else "not enough evidence")
        for item in result.get("competencies", [])
    ]
    return hbar_chart("score-chart", "Scores per competency (out of 5)", items, 5, ("Competency", "Score"), step=1)


def analytics_charts(analytics: Mapping[str, Any], titles: Mapping[str, str]) -> list[Chart]:
    """Pace per answer, fillers per stage and talk ratio, from `postprocess.compute_analytics`."""
    charts = []
    answers = analytics.get("answers", [])
    if answers:
        pace_items = [
            ChartItem(f"A{number}", answer["pace_wpm"],
                      f"{answer['pace_wpm']:g} words per minute" if answer["pace_wpm"] is not None else "no timing",
                      f"{answer['pace_wpm']:.0f}" if answer["pace_wpm"] is not None else "")
            for number, answer in enumerate(answers, start=1)
        ]
        charts.append(column_chart("pace-chart", "Speaking pace per answer (words per minute)", pace_items,
                                   ("Answer", "Pace"), "wpm"))
    stages = [stage for stage in analytics.get("stages", []) if stage["answer_count"]]
    if stages:
        filler_items = []
        for stage in stages:
            fillers = stage["fillers"]
            per_100 = f", {fillers['per_100_words']:g} per 100 words" if fillers["per_100_words"] is not None else ""
            filler_items.append(ChartItem(titles.get(stage["stage"], stage["stage"]), fillers["total"],
                                          f"{fillers['total']} fillers{per_100}", str(fillers["total"])))
        maximum = max(4, max(item.value or 0 for item in filler_items))
        charts.append(hbar_chart("filler-chart", "Filler words per stage", filler_items, maximum,
                                 ("Stage", "Fillers"), step=nice_step(maximum, 4)))
    talk = analytics.get("overall", {}).get("talk_time", {})
    if talk.get("candidate_share") is not None:
        you = round(talk["candidate_share"] * 100)
        talk_items = [
            ChartItem("You", you, f"{you}% ({duration_text(talk['candidate_s'])})", f"{you}%"),
            ChartItem("Interviewer", 100 - you, f"{100 - you}% ({duration_text(talk['interviewer_s'])})",
                      f"{100 - you}%"),
        ]
        charts.append(hbar_chart("talk-chart", "Talk time: share of the conversation", talk_items, 100,
                                 ("Speaker", "Share"), step=25))
    return charts


def analytics_summary(analytics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The overall speech measurements as (label, text) lines; empty when the candidate never spoke."""
    overall = analytics.get("overall", {})
    if not overall.get("answer_count"):
        return []
    fillers, pauses = overall["fillers"], overall["long_pauses"]
    latency, lengths = overall["time_to_answer"], overall["answer_length"]
    filler_counts = ", ".join(f"{name} {count}" for name, count in fillers["counts"].items())
    per_100 = f" ({fillers['per_100_words']:g} per 100 words)" if fillers["per_100_words"] is not None else ""
    lines = [
        ("Answers", f"{overall['answer_count']}, {overall['word_count']} words"),
        ("Pace", f"{overall['pace_wpm']:g} words per minute" if overall["pace_wpm"] is not None else "unknown"),
        ("Filler words", f"{fillers['total']}{per_100}: {filler_counts}"),
    ]
    if pauses["count"] is not None:
        longest = f", longest {pauses['longest_s']:g} s" if pauses["longest_s"] is not None else ""
        lines.append((f"Pauses of {analytics['long_pause_threshold_s']:g} s or more", f"{pauses['count']}{longest}"))
    if latency["mean_s"] is not None:
        lines.append(("Time to answer", f"{latency['mean_s']:g} s on average, longest {latency['max_s']:g} s"))
    if lengths["mean_s"] is not None:
        average, longest_answer = duration_text(lengths["mean_s"]), duration_text(lengths["longest_s"])
        lines.append(("Answer length", f"{average} on average, longest {longest_answer}"))
    return lines


# ----------------------------------------------------------------------------- the feedback page


def _llm_settings(user_id: int) -> feedback.LlmSettings | None:
    values, _unreadable = decrypted_values(user_id)
    return feedback.llm_settings_from(values)


def start_feedback(interview: store.Interview, force: bool = False) -> bool:
    """Start the interview's feedback in the background with its owner's LLM settings (see
    `feedback.start_generation`); needs an app context. Returns whether it started."""
    return feedback.start_generation(
        current_app._get_current_object(), interview.id, _llm_settings(interview.user_id), force=force
    )


@dataclass(frozen=True)
class FeedbackState:
    status: Literal["pending", "measuring", "generating", "ready", "failed"]
    message: str
    result: dict[str, Any]


def feedback_state(row: store.Feedback | None) -> FeedbackState:
    if row is None:
        return FeedbackState("pending", FEEDBACK_MESSAGES["pending"], {})
    if row.status == "failed":
        return FeedbackState("failed", row.error or "Your feedback could not be written. Retry.", {})
    if row.status == "generating":
        step = "generating" if row.analytics else "measuring"
        return FeedbackState(step, FEEDBACK_MESSAGES[step], {})
    if row.status == "ready":
        return FeedbackState("ready", FEEDBACK_MESSAGES["ready"], row.result or {})
    return FeedbackState("pending", FEEDBACK_MESSAGES["pending"], {})


def feedback_page(interview: store.Interview):
    """The results of an interview: feedback (started here when missing), analytics, transcript.

    `interviews.room` serves this at /interviews/<id> once the interview has ended. Opening it
    starts generation when none exists yet, because the agent process, not the web app, ends most
    interviews; the claim in `store.claim_feedback_generation` makes that idempotent.
    """
    row = store.get_feedback(store.get_db(), interview.id)
    if (row is None or row.status in ("pending", "generating")) and (start_feedback(interview) or row is None):
        # Started here, or claimed by another request since `row` was read.
        state = FeedbackState("measuring", FEEDBACK_MESSAGES["measuring"], {})
    else:
        state = feedback_state(row)
    titles = feedback.stage_titles(interview.plan or {})
    turns = merged_turns(interview.id)
    analytics = postprocess.compute_analytics(turns)
    return render_template(
        "feedback.html",
        interview=interview,
        meta=interview_meta(interview),
        ended_early=ended_early_notice(interview),
        state=state,
        result=state.result,
        model=row.model if row is not None and state.status == "ready" else "",
        score_chart=score_chart(state.result) if state.result.get("competencies") else None,
        analytics_lines=analytics_summary(analytics),
        analytics_charts=analytics_charts(analytics, titles),
        stages=transcript_by_stage(turns, titles),
        speaker_labels=postprocess.SPEAKER_LABELS,
        timestamp=postprocess.format_timestamp,
    )


@bp.get("/api/interviews/<interview_id>/feedback")
@login_required
def feedback_status(interview_id: str):
    """The feedback's status, for the page's poller."""
    interview = load_owned_interview(interview_id)
    state = feedback_state(store.get_feedback(store.get_db(), interview.id))
    response = jsonify(status=state.status, message=state.message,
                       done=state.status in ("ready", "failed"))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/interviews/<interview_id>/feedback")
@login_required
@limiter.limit("10 per minute")
def regenerate(interview_id: str):
    """Write the feedback again (or retry after a failure) with the current LLM settings."""
    interview = load_owned_interview(interview_id)
    if not ended(interview):
        return error_response(409, "Feedback is written once the interview has ended.")
    if start_feedback(interview, force=True):
        flash("Writing new feedback. This page updates when it is ready.")
    else:
        flash("Your feedback is already being written.")
    return redirect(url_for("interviews.room", interview_id=interview.id))


# --------------------------------------------------------------------------------------- exports


@dataclass(frozen=True)
class Block:
    """One piece of an exported document: a heading, a paragraph, a list item, a quote or a turn."""

    kind: Literal["h1", "h2", "h3", "p", "item", "quote", "turn"]
    text: str
    label: str = ""


def feedback_blocks(row: store.Feedback | None) -> list[Block]:
    state = feedback_state(row)
    blocks = [Block("h2", "Feedback")]
    if state.status != "ready":
        return blocks + [Block("p", state.message, "Status")]
    result = state.result
    overall = result.get("overall_score")
    blocks.append(Block("p", f"{overall:.1f} of 5" if overall is not None else "not scored", "Overall score"))
    if result.get("summary"):
        blocks.append(Block("p", result["summary"]))
    blocks.append(Block("h3", "Competencies"))
    for item in result.get("competencies", []):
        score = f"{item['score']} of 5" if item["score"] is not None else "not enough evidence"
        blocks.append(Block("item", f"{score}. {item['rationale']}", item["title"]))
        blocks += [Block("quote", quote["text"], postprocess.format_timestamp(quote["start_s"]))
                   for quote in item["quotes"]]
    sections = [
        ("Strengths", [Block("item", text) for text in result.get("strengths", [])]),
        ("Improvements", [Block("item", i["technique"], i["area"]) for i in result.get("improvements", [])]),
        ("Notes per stage", [Block("item", n["note"], n["stage"]) for n in result.get("stage_notes", [])]),
        ("Practice plan", [Block("item", s["activity"], s["when"]) for s in result.get("practice_plan", [])]),
    ]
    for title, items in sections:
        if items:
            blocks += [Block("h3", title), *items]
    rewritten = result.get("rewritten_answer")
    if rewritten:
        blocks += [Block("h3", "A stronger answer"), Block("p", rewritten["question"], "Question")]
        if rewritten.get("original"):
            blocks.append(Block("p", rewritten["original"]["text"], "You said"))
        blocks.append(Block("p", rewritten["improved_answer"], "Stronger answer"))
    return blocks


def analytics_blocks(analytics: Mapping[str, Any], titles: Mapping[str, str]) -> list[Block]:
    lines = analytics_summary(analytics)
    if not lines:
        return [Block("h2", "Speech analytics"), Block("p", "No answers were recorded.")]
    blocks = [Block("h2", "Speech analytics"), *(Block("item", text, label) for label, text in lines)]
    for chart in analytics_charts(analytics, titles):
        blocks.append(Block("h3", chart.title))
        blocks += [Block("item", text, label) for label, text in chart.table_rows]
    return blocks


def export_blocks(interview: store.Interview, turns: Sequence[postprocess.Turn]) -> list[Block]:
    """Everything but the transcript, which each format renders its own way."""
    titles = feedback.stage_titles(interview.plan or {})
    blocks = [Block("h1", f"{interview.role} interview")]
    blocks += [Block("item", value, label) for label, value in interview_meta(interview)]
    notice = ended_early_notice(interview)
    if notice:
        blocks.append(Block("p", notice))
    blocks += feedback_blocks(store.get_feedback(store.get_db(), interview.id))
    blocks += analytics_blocks(postprocess.compute_analytics(turns), titles)
    return blocks


def blocks_to_markdown(blocks: Sequence[Block]) -> str:
    """Markdown with every piece of text escaped (no links, markup or HTML can come from it)."""
    escape = postprocess.escape_markdown
    lines: list[str] = []
    for block in blocks:
        label = f"**{escape(block.label)}:** " if block.label and block.kind != "quote" else ""
        if block.kind in ("h1", "h2", "h3"):
            lines += ["", "#" * int(block.kind[1]) + " " + escape(block.text), ""]
        elif block.kind == "item":
            lines.append(f"- {label}{escape(block.text)}")
        elif block.kind == "quote":
            lines.append(f"  - “{escape(block.text)}” {escape(block.label)}")
        else:
            lines += ["", f"{label}{escape(block.text)}", ""]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def interview_markdown(interview: store.Interview, turns: Sequence[postprocess.Turn]) -> str:
    """The Markdown export: details, feedback, analytics, then `postprocess.to_markdown`'s transcript."""
    transcript = postprocess.to_markdown(turns, feedback.stage_titles(interview.plan or {}))
    # Its first line is its own title; its stage headings move one level down, under "Transcript".
    transcript_lines = [
        "#" + line if line.startswith("## ") else line for line in transcript.split("\n")[1:]
    ]
    return (blocks_to_markdown(export_blocks(interview, turns)) + "\n## Transcript\n"
            + "\n".join(transcript_lines).rstrip() + "\n")


# Typographic characters outside Latin-1 and their plain equivalents, for the built-in PDF font.
_PLAIN_EQUIVALENTS = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"', "–": "-", "—": "-",
    "‐": "-", "‑": "-", "−": "-", "…": "...", "•": "-", "→": "->", "←": "<-", "€": "EUR",
    "\u2009": " ", "\u202f": " ", "\u200b": "",
})


class PdfText:
    """Makes text drawable in the PDF's font, counting what had to be replaced.

    With DejaVu Sans (Debian's fonts-dejavu-core, Latin, Greek and Cyrillic among others), text is
    kept as it is and only characters the font lacks (e.g. CJK) become "?". Without it the PDF
    falls back to the built-in Helvetica, which covers Latin-1 only: typographic punctuation is
    replaced by its plain form, accents outside Latin-1 are dropped (ő -> o) and anything else
    becomes "?". The Markdown export always keeps the original text.
    """

    def __init__(self, covered: set[int] | None) -> None:
        self.covered = covered
        self.replaced = 0

    def __call__(self, text: str) -> str:
        if self.covered is not None:
            return "".join(self._keep_or_mark(char) for char in text)
        plain = text.translate(_PLAIN_EQUIVALENTS)
        return "".join(self._latin1(char) for char in plain)

    def _keep_or_mark(self, char: str) -> str:
        if ord(char) in self.covered or char in "\n\t":
            return char
        self.replaced += 1
        return "?"

    def _latin1(self, char: str) -> str:
        if ord(char) < 256:
            return char
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if base and all(ord(c) < 256 for c in base):
            return base
        self.replaced += 1
        return "?"


def _pdf_with_font(font_dir: Path | None) -> tuple[FPDF, str, PdfText]:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    regular = font_dir / "DejaVuSans.ttf" if font_dir else None
    if regular is None or not regular.is_file():
        return pdf, "Helvetica", PdfText(None)
    bold = font_dir / "DejaVuSans-Bold.ttf"
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold if bold.is_file() else regular))
    pdf.set_font("DejaVu", size=11)
    return pdf, "DejaVu", PdfText(set(pdf.current_font.cmap))


def interview_pdf(
    interview: store.Interview, turns: Sequence[postprocess.Turn], font_dir: Path | None = UNICODE_FONT_DIR
) -> bytes:
    """The PDF export (fpdf2, pure Python): details, feedback, analytics and the transcript."""
    pdf, family, drawable = _pdf_with_font(font_dir)
    pdf.set_title(drawable(f"{interview.role} interview"))
    pdf.set_creator("MockFlow")
    pdf.add_page()
    sizes = {"h1": 18, "h2": 14, "h3": 12}
    titles = feedback.stage_titles(interview.plan or {})
    transcript = [Block("h2", "Transcript")]
    for stage in transcript_by_stage(turns, titles):
        transcript.append(Block("h3", stage.title))
        for turn in stage.turns:
            speaker = postprocess.SPEAKER_LABELS.get(turn.speaker, turn.speaker.capitalize())
            suffix = " (interrupted)" if turn.interrupted else ""
            transcript.append(Block("turn", turn.text + suffix, f"{postprocess.format_timestamp(turn.start_s)} {speaker}"))

    def paragraph(label: str, text: str, indent: float = 0.0) -> None:
        pdf.set_x(pdf.l_margin + indent)
        if label:
            pdf.set_font(family, "B", 11)
            pdf.write(6, drawable(label) + ": ")
        pdf.set_font(family, "", 11)
        pdf.write(6, drawable(text))
        pdf.ln(8)

    for block in [*export_blocks(interview, turns), *transcript]:
        if block.kind in sizes:
            pdf.ln(2)
            pdf.set_font(family, "B", sizes[block.kind])
            pdf.multi_cell(0, sizes[block.kind] * 0.55, drawable(block.text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif block.kind == "item":
            paragraph(block.label, block.text if block.label else "- " + block.text)
        elif block.kind == "quote":
            paragraph("", f'"{block.text}" {block.label}', indent=6)
        else:
            paragraph(block.label, block.text)
    if drawable.replaced:
        pdf.ln(4)
        pdf.set_font(family, "", 9)
        pdf.multi_cell(0, 5, f"{drawable.replaced} characters could not be drawn in this PDF's font and are "
                             "shown as ?. The Markdown export keeps the original text.")
    return bytes(pdf.output())


def _download_name(interview: store.Interview, extension: str) -> str:
    return f"mockflow-interview-{interview.created_at:%Y%m%d}-{interview.id[:8]}.{extension}"


def _attachment(body: bytes | str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/interviews/<interview_id>/export.md")
@login_required
@limiter.limit("30 per minute")
def export_markdown(interview_id: str):
    interview = load_owned_interview(interview_id)
    body = interview_markdown(interview, merged_turns(interview.id))
    return _attachment(body, "text/markdown; charset=utf-8", _download_name(interview, "md"))


@bp.get("/interviews/<interview_id>/export.pdf")
@login_required
@limiter.limit("30 per minute")
def export_pdf(interview_id: str):
    interview = load_owned_interview(interview_id)
    body = interview_pdf(interview, merged_turns(interview.id))
    return _attachment(body, "application/pdf", _download_name(interview, "pdf"))


# -------------------------------------------------------------------------------------- deletion


@bp.get("/interviews/<interview_id>/delete")
@login_required
def confirm_delete(interview_id: str):
    interview = load_owned_interview(interview_id)
    return render_template("confirm_delete.html", interview=interview, meta=interview_meta(interview),
                           running=interview.status in ACTIVE_STATUSES)


@bp.post("/interviews/<interview_id>/delete")
@login_required
def delete_interview(interview_id: str):
    """Delete an interview with its transcript, stage events and feedback."""
    interview = load_owned_interview(interview_id)
    if interview.status in ACTIVE_STATUSES:
        return error_response(409, "This interview is still running. End it before deleting it.")
    db = store.get_db()
    store.delete_interview(db, interview.id, current_user().id)
    db.commit()
    flash("The interview, its transcript and its feedback were deleted.")
    return redirect(url_for("pages.dashboard"))


# ------------------------------------------------------------------------------------ dashboard


@dataclass(frozen=True)
class HistoryRow:
    id: str
    date: str
    track: str
    role: str
    duration: str
    status: str
    score: str


def _history_row(interview: store.Interview, row: store.Feedback | None) -> HistoryRow:
    overall = (row.result or {}).get("overall_score") if row is not None and row.status == "ready" else None
    if overall is not None:
        score = f"{overall:.1f} / 5"
    elif row is not None and row.status == "ready":
        score = "Not scored"
    elif row is not None and row.status == "failed":
        score = "Feedback failed"
    elif ended(interview):
        score = "Writing feedback…"
    else:
        score = "—"
    taken = interview_duration_s(interview)
    duration = duration_text(taken) if taken is not None else fsm.LENGTHS.get(interview.length, (interview.length,))[0]
    return HistoryRow(
        id=interview.id,
        date=interview.created_at.strftime("%Y-%m-%d %H:%M"),
        track=fsm.TRACKS.get(interview.track, interview.track),
        role=interview.role,
        duration=duration,
        status=STATUS_LABELS.get(interview.status, interview.status),
        score=score,
    )


def progress_charts(rows: Sequence[tuple[store.Interview, store.Feedback | None]]) -> list[Chart]:
    """One small chart per competency: its scores across the interviews that have feedback, oldest first."""
    scored = [
        (interview, fb.result) for interview, fb in reversed(rows)
        if fb is not None and fb.status == "ready" and (fb.result or {}).get("competencies")
    ]
    titles: dict[str, str] = {}
    for _interview, result in scored:
        for item in result["competencies"]:
            titles.setdefault(item["key"], item["title"])
    charts = []
    for key, title in titles.items():
        points = []
        for interview, result in scored:
            item = next((c for c in result["competencies"] if c["key"] == key), None)
            if item is not None:
                points.append((interview.created_at.strftime("%m-%d"), item["score"]))
        if any(score is not None for _date, score in points):
            charts.append(score_line_chart(f"progress-{key}", title, points))
    return charts


DASHBOARD_STARTS_AT_MOST = 3


def dashboard_context(user_id: int, track: str) -> dict[str, Any]:
    """What the dashboard shows: history (optionally one track), progress charts and the filter.

    Ended interviews that have no feedback yet (the agent ended them, and nobody opened their page)
    get it started here, the newest few at a time.
    """
    track = track if track in fsm.TRACKS else ""
    rows = store.list_interviews_with_feedback(store.get_db(), user_id, track or None)
    unstarted = [interview for interview, row in rows if row is None and ended(interview)]
    for interview in unstarted[:DASHBOARD_STARTS_AT_MOST]:
        start_feedback(interview)
    return {
        "history": [_history_row(interview, row) for interview, row in rows],
        "progress": progress_charts(rows),
        "tracks": fsm.TRACKS,
        "track": track,
    }


# -------------------------------------------------------------------------------- the user's data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_data(user_id: int) -> dict[str, Any]:
    """Everything stored about a user, except the values of their keys and settings."""
    db = store.get_db()
    user = store.get_user(db, user_id)
    interviews = []
    for interview in reversed(store.list_interviews(db, user_id)):
        row = store.get_feedback(db, interview.id)
        interviews.append({
            "id": interview.id,
            "created_at": _iso(interview.created_at),
            "started_at": _iso(interview.started_at),
            "ended_at": _iso(interview.ended_at),
            "track": interview.track,
            "length": interview.length,
            "role": interview.role,
            "level": interview.level,
            "company": interview.company,
            "candidate_name": interview.candidate_name,
            "language": interview.language,
            "status": interview.status,
            "stage": interview.stage,
            "failure_reason": interview.failure_reason,
            "plan": interview.plan,
            "context": interview.context,
            "transcript_turns": [
                {"seq": t.seq, "speaker": t.speaker, "stage": t.stage, "text": t.text, "start_s": t.start_s,
                 "end_s": t.end_s, "words": t.words, "interrupted": t.interrupted, "created_at": _iso(t.created_at)}
                for t in store.list_turns(db, interview.id)
            ],
            "stage_events": [
                {"from": e.from_stage, "to": e.to_stage, "reason": e.reason, "elapsed_s": e.elapsed_s,
                 "at": _iso(e.at)}
                for e in store.list_stage_events(db, interview.id)
            ],
            "feedback": None if row is None else {
                "status": row.status, "model": row.model, "result": row.result, "analytics": row.analytics,
                "error": row.error, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
            },
        })
    return {
        "exported_at": _iso(store.utcnow()),
        "account": {"issuer": user.issuer, "subject": user.subject, "email": user.email, "name": user.name,
                    "created_at": _iso(user.created_at)},
        "stored_settings": [
            {"name": name, "updated_at": _iso(row.updated_at)}
            for name, row in sorted(store.list_provider_keys(db, user_id).items())
        ],
        "stored_settings_note": "The values of your keys and settings are not included.",
        "interviews": interviews,
    }


@bp.get("/account/data")
@login_required
@limiter.limit("10 per minute")
def download_data():
    """"Download my data": one JSON file."""
    body = json.dumps(user_data(current_user().id), ensure_ascii=False, indent=2)
    return _attachment(body, "application/json", f"mockflow-data-{store.utcnow():%Y%m%d}.json")


@bp.get("/account/delete")
@login_required
def confirm_delete_account():
    return render_template("confirm_delete_account.html", error=None)


@bp.post("/account/delete")
@login_required
@limiter.limit("5 per minute")
def delete_account():
    """Delete the account and everything stored with it, then sign out."""
    user = current_user()
    if request.form.get("confirm") != "yes":
        return render_template("confirm_delete_account.html",
                               error="Tick the box to confirm that everything should be deleted."), 400
    db = store.get_db()
    if any(interview.status in ACTIVE_STATUSES for interview in store.list_interviews(db, user.id)):
        return render_template("confirm_delete_account.html",
                               error="An interview is still running. End it, then delete your account."), 409
    store.delete_user(db, user.id)
    db.commit()
    session.clear()
    flash("Your account and everything stored with it were deleted.")
    return redirect(url_for("pages.landing"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # fpdf2's font subsetter (fontTools) logs every glyph list at INFO on each PDF export.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
