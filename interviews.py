"""Interview setup and start: the form with resume and job-description intake, the start API,
and the candidate's LiveKit token.

The form works without JavaScript: "Extract text" posts the files, and the page comes back with the
extracted text in editable boxes (the files themselves are never kept); "Start interview" posts the
edited text. `POST /api/interviews` is the same start as JSON.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, jsonify, redirect, render_template, request, url_for

import fsm
import results_views
import store
from auth_helpers import current_user, load_owned_interview, login_required
from conversation_cache import INTERVIEW_LANGUAGES, LEVELS, InterviewSetup, build_context
from document_processor import DocumentRejected, extract_text
from key_vault import FIELDS_BY_NAME
from livekit_tokens import candidate_identity, candidate_token
from security import error_response, limiter
from settings_views import decrypted_values
from worker_manager import ROOMS_FULL_MESSAGE

bp = Blueprint("interviews", __name__)

NAME_MAX = 80
ROLE_MAX = 120
COMPANY_MAX = 120
PASTED_TEXT_MAX = 40_000
_CLEAN_TEXT = re.compile(r"^[\w .,'&()/+#:\-]+$", re.UNICODE)
_URL_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
TOKEN_STATUSES = frozenset({"created", "starting", "live"})
REFUSALS = {
    store.StartRefused.USER_BUSY: (409, "You already have an interview in progress. Finish or end it before starting another."),
    store.StartRefused.ROOMS_FULL: (503, ROOMS_FULL_MESSAGE),
    store.StartRefused.DAILY_LIMIT: (429, "You have used today's interview minutes. Try again tomorrow."),
}


@dataclass(frozen=True)
class StartResult:
    interview: store.Interview | None
    errors: dict[str, str]
    status: int


def required_key_names(values: dict[str, str]) -> list[str]:
    """The provider values an interview needs: LiveKit, the LLM key, and an STT key unless
    a Whisper-compatible STT endpoint stands in for Deepgram."""
    needed = ["livekit_url", "livekit_api_key", "livekit_api_secret", "openai"]
    if not values.get("stt_base_url"):
        needed.append("deepgram")
    return needed


def missing_labels(values: dict[str, str]) -> list[str]:
    """Labels of the keys still to add in Settings before an interview can start."""
    return [FIELDS_BY_NAME[name].label for name in required_key_names(values) if not values.get(name)]


def _clean_line(value: str, limit: int, label: str, required: bool) -> tuple[str, str | None]:
    value = " ".join(value.split())
    if not value:
        return "", (f"Enter the {label}." if required else None)
    if len(value) > limit:
        return value, f"The {label} is too long (at most {limit} characters)."
    if not _CLEAN_TEXT.match(value):
        return value, f"The {label} may use letters, digits, spaces and . , ' & ( ) / + # : - only."
    return value, None


def validate_setup(form: dict[str, str]) -> tuple[InterviewSetup | None, dict[str, str]]:
    """Check every field server-side; the errors are keyed by field name."""
    errors: dict[str, str] = {}
    name, error = _clean_line(form.get("candidate_name", ""), NAME_MAX, "name", required=True)
    if error:
        errors["candidate_name"] = error
    role, error = _clean_line(form.get("role", ""), ROLE_MAX, "target role", required=True)
    if error:
        errors["role"] = error
    company, error = _clean_line(form.get("company", ""), COMPANY_MAX, "company", required=False)
    if error:
        errors["company"] = error
    choices = {"level": LEVELS, "track": fsm.TRACKS, "length": fsm.LENGTHS, "language": INTERVIEW_LANGUAGES}
    for field, allowed in choices.items():
        if form.get(field, "") not in allowed:
            errors[field] = f"Choose one of the listed {field} options."
    texts = {}
    for field in ("resume_text", "job_description_text"):
        texts[field] = form.get(field, "").replace("\r\n", "\n").strip()
        if len(texts[field]) > PASTED_TEXT_MAX:
            errors[field] = f"That text is too long (at most {PASTED_TEXT_MAX:,} characters)."
    if errors:
        return None, errors
    return (
        InterviewSetup(
            candidate_name=name,
            role=role,
            level=form["level"],
            company=company,
            track=form["track"],
            length=form["length"],
            language=form["language"],
            resume_text=texts["resume_text"],
            job_description_text=texts["job_description_text"],
        ),
        {},
    )


def start_interview(user_id: int, form: dict[str, str]) -> StartResult:
    """Validate, then create the interview (status `created`) with its plan and context."""
    setup, errors = validate_setup(form)
    if setup is None:
        return StartResult(None, errors, 400)
    values, _unreadable = decrypted_values(user_id)
    missing = missing_labels(values)
    if missing:
        return StartResult(None, {"keys": "Add these in Settings first: " + ", ".join(missing) + "."}, 400)
    plan = fsm.build_plan(setup.track, setup.length)
    settings = current_app.config["SETTINGS"]
    db = store.get_db()
    outcome = store.create_interview_unless_active(
        db,
        user_id=user_id,
        status="starting",
        max_concurrent=current_app.extensions["max_concurrent_interviews"],
        daily_minutes_cap=settings.daily_interview_minutes,
        planned_minutes=plan.max_duration_s / 60,
        interview_id=store.new_interview_id(),
        room_name="mf-" + secrets.token_hex(10),
        track=setup.track,
        length=setup.length,
        role=setup.role,
        level=setup.level,
        company=setup.company,
        candidate_name=setup.candidate_name,
        language=setup.language,
        plan=plan.to_dict(),
        context=build_context(setup),
    )
    if isinstance(outcome, store.StartRefused):
        db.rollback()
        status, message = REFUSALS[outcome]
        return StartResult(None, {"interview": message}, status)
    db.commit()
    try:
        current_app.extensions["worker_launcher"](outcome, values)
    except Exception:
        current_app.logger.exception("could not start the agent for interview %s", outcome.id)
        store.set_interview_status(db, outcome.id, "failed", "The interviewer could not be started. Please try again.")
        db.commit()
    db.refresh(outcome)
    return StartResult(outcome, {}, 201)


def _extract_uploads(form: dict[str, str], errors: dict[str, str], notices: dict[str, str]) -> dict[str, str]:
    """Replace the text boxes with the text of the uploaded files; the files are not kept."""
    for upload_field, text_field in (("resume_file", "resume_text"), ("job_description_file", "job_description_text")):
        upload = request.files.get(upload_field)
        if upload is None or not upload.filename:
            continue
        try:
            extraction = extract_text(upload.read(), upload.filename)
        except DocumentRejected as rejection:
            errors[text_field] = str(rejection)
            continue
        form[text_field] = extraction.text
        if extraction.notice:
            notices[text_field] = extraction.notice
    return form


def _render_form(form: dict[str, str], errors: dict[str, str], status: int = 200, notices: dict[str, str] | None = None):
    return (
        render_template(
            "interview_new.html",
            form=form,
            errors=errors,
            notices=notices or {},
            missing=missing_labels(decrypted_values(current_user().id)[0]),
            tracks=fsm.TRACKS,
            lengths=fsm.LENGTHS,
            levels=LEVELS,
            languages=INTERVIEW_LANGUAGES,
        ),
        status,
    )


@bp.get("/interviews/new")
@login_required
def new():
    defaults = {"level": "mid", "track": "behavioral", "length": "standard", "language": "en"}
    return _render_form(defaults, {})


@bp.post("/interviews/new")
@login_required
@limiter.limit("20 per minute")
def submit():
    """Extract uploaded documents into the editable boxes, or start the interview."""
    form = {key: value for key, value in request.form.items() if key != "csrf_token"}
    if form.get("action") == "extract":
        errors: dict[str, str] = {}
        notices: dict[str, str] = {}
        form = _extract_uploads(form, errors, notices)
        return _render_form(form, errors, 400 if errors else 200, notices)
    result = start_interview(current_user().id, form)
    if result.interview is None:
        return _render_form(form, result.errors, result.status)
    return redirect(url_for("interviews.room", interview_id=result.interview.id))


@bp.post("/api/interviews")
@login_required
@limiter.limit("20 per minute")
def api_start():
    """Start an interview from JSON; answers at once with its id."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return error_response(400, "Send the interview setup as a JSON object.")
    form = {key: str(value) for key, value in payload.items() if isinstance(value, (str, int))}
    result = start_interview(current_user().id, form)
    if result.interview is None:
        message = next(iter(result.errors.values()))
        return jsonify(error=message, fields=result.errors), result.status
    return jsonify(id=result.interview.id, status=result.interview.status,
                   url=url_for("interviews.room", interview_id=result.interview.id)), 201


def livekit_connect_sources(livekit_url: str) -> str:
    """The CSP `connect-src` entries for a LiveKit URL: its WebSocket and HTTP(S) origins.

    livekit-client signals over the WebSocket and checks failed joins over HTTP, so both are allowed;
    anything that is not a plain origin (spaces, paths smuggled into the host) allows nothing.
    """
    parts = urlsplit(livekit_url.strip())
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.scheme not in ("wss", "ws", "https", "http") or not _URL_HOST.match(host):
        return ""
    secure = parts.scheme in ("wss", "https")
    return f"{'wss' if secure else 'ws'}://{host} {'https' if secure else 'http'}://{host}"


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def room_page_data(interview: store.Interview) -> dict[str, Any]:
    """What the room script needs, embedded as a JSON data block (never as inline script)."""
    return {
        "status": interview.status,
        "failure_reason": interview.failure_reason,
        "started_at": _isoformat(interview.started_at),
        "urls": {
            "status": url_for("interviews.api_status", interview_id=interview.id),
            "token": url_for("interviews.api_token", interview_id=interview.id),
        },
    }


@bp.get("/interviews/<interview_id>")
@login_required
def room(interview_id: str):
    """The interview room while it runs; for an ended interview, its results (feedback page)."""
    interview = load_owned_interview(interview_id)
    if interview.status in store.INTERVIEW_FINAL_STATUSES:
        return results_views.feedback_page(interview)
    values, _unreadable = decrypted_values(current_user().id)
    g.csp_connect_src = livekit_connect_sources(values.get("livekit_url", ""))
    return render_template("interview.html", interview=interview, room_data=room_page_data(interview))


@bp.get("/api/interviews/<interview_id>")
@login_required
def api_status(interview_id: str):
    """The interview's lifecycle status, for the room page to follow."""
    interview = load_owned_interview(interview_id)
    return jsonify(
        id=interview.id,
        status=interview.status,
        stage=interview.stage,
        failure_reason=interview.failure_reason,
        plan=interview.plan,
        started_at=_isoformat(interview.started_at),
    )


@bp.get("/api/interviews/<interview_id>/token")
@login_required
@limiter.limit("30 per minute")
def api_token(interview_id: str):
    """A fresh ten-minute candidate token, so a reload can rejoin while the interview runs."""
    interview = load_owned_interview(interview_id)
    if interview.status not in TOKEN_STATUSES:
        return error_response(409, "This interview has ended; it can no longer be joined.")
    values, _unreadable = decrypted_values(current_user().id)
    if not all(values.get(name) for name in ("livekit_url", "livekit_api_key", "livekit_api_secret")):
        return error_response(400, "Your LiveKit settings are missing or unreadable. Check Settings.")
    token = candidate_token(values["livekit_api_key"], values["livekit_api_secret"], interview.room_name, interview.id)
    response = jsonify(url=values["livekit_url"], token=token, identity=candidate_identity(interview.id))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
