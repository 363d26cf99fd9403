"""The results routes: feedback page and status, regeneration, exports, deletion, the dashboard, and
the user's own data; ownership (404 for anyone else) and cascades on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader
from sqlalchemy import text

import feedback
import results_views
import store
from app import create_app
from conftest import fetch_csrf_token, login_as, make_user
from fakes.fake_openai import CHAT_PATH, DEFAULT_OPENAI_KEY, FakeOpenAI
from test_feedback import BEHAVIORAL_SCRIPT, GOOD_COMPETENCIES, add_interview, assessment, llm_reply

OIDC_CONFIG = {
    "AUTH_MODE": "oidc",
    "OIDC_CLIENT_ID": "x",
    "OIDC_CLIENT_SECRET": "y",
    "OIDC_ISSUER": "http://127.0.0.1:9",
}
GENERATION_TIMEOUT_S = 20
TABLES_BY_INTERVIEW = ("transcript_turns", "stage_events", "feedback")


def sqlite_only(test):
    """Routes and rendering do not depend on the backend; the cascade tests run on both."""
    return pytest.mark.parametrize("backend", ["sqlite"])(test)


def local_user_id(client, app) -> int:
    client.get("/dashboard")  # local mode creates the local user on first request
    with app.extensions["store"].session() as db:
        return store.get_or_create_user(db, "local", "local-user", "", "Local user").id


def save_setting(client, name: str, value: str) -> None:
    response = client.post(f"/settings/{name}", data={"value": value, "csrf_token": fetch_csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)


def set_ready_feedback(app, interview_id: str, competencies=GOOD_COMPETENCIES, **overrides) -> None:
    """Store feedback the way a finished generation does (verified against the transcript)."""
    app_store = app.extensions["store"]
    with app_store.session() as db:
        turns = feedback.postprocess.merge_turns(store.list_turns(db, interview_id))
        store.claim_feedback_generation(db, interview_id)
        reply = feedback.LlmFeedback.model_validate_json(llm_reply(competencies, **overrides))
        store.finish_feedback(db, interview_id, status="ready", model="gpt-4o-mini",
                              result=feedback.build_result("behavioral", reply, turns), error="")


def row_counts(app, interview_id: str) -> dict[str, int]:
    with app.extensions["store"].engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT COUNT(*) FROM {table} WHERE interview_id = :i"),
                                      {"i": interview_id}).scalar_one()
            for table in TABLES_BY_INTERVIEW
        }
        counts["interviews"] = connection.execute(text("SELECT COUNT(*) FROM interviews WHERE id = :i"),
                                                  {"i": interview_id}).scalar_one()
    return counts


# ---------------------------------------------------------------------------- the feedback page


@sqlite_only
def test_opening_an_ended_interview_generates_its_feedback_in_the_background(client, app):
    user_id = local_user_id(client, app)
    interview_id = add_interview(app.extensions["store"], user_id)
    with FakeOpenAI(chat_script=[llm_reply(GOOD_COMPETENCIES)]) as fake:
        save_setting(client, "openai", DEFAULT_OPENAI_KEY)
        save_setting(client, "llm_base_url", fake.base_url)

        first = client.get(f"/interviews/{interview_id}")
        assert first.status_code == 200
        page = first.get_data(as_text=True)
        assert "data-feedback-status-url" in page and "js/feedback.js" in page
        assert feedback.wait_for_generation(app, interview_id, GENERATION_TIMEOUT_S)
        assert len(fake.requests.for_path(CHAT_PATH)) == 1

        status = client.get(f"/api/interviews/{interview_id}/feedback").get_json()
        page = client.get(f"/interviews/{interview_id}").get_data(as_text=True)
        assert client.get(f"/interviews/{interview_id}").status_code == 200
        assert len(fake.requests.for_path(CHAT_PATH)) == 1  # opening it again starts nothing

    assert status == {"status": "ready", "message": results_views.FEEDBACK_MESSAGES["ready"], "done": True}
    assert "3.6</span> / 5" in page
    assert 'href="#turn-7"' in page and 'id="turn-7"' in page  # a quote jumps to its transcript line
    assert "I split the work into smaller releases and, uh, we shipped the rest on time" in page
    assert 'role="img"' in page and 'id="score-chart-desc"' in page
    assert "Star structure" not in page and "STAR structure: 4 of 5" in page  # the chart's text alternative
    assert 'id="pace-chart"' in page and 'id="filler-chart"' in page and 'id="talk-chart"' in page
    assert "Past experience" in page and "Company and role fit" in page  # stage markers
    assert "data-feedback-status-url" not in page and "js/feedback.js" not in page


@sqlite_only
def test_a_failed_generation_shows_the_error_and_a_retry_button_without_scores(client, app):
    user_id = local_user_id(client, app)
    interview_id = add_interview(app.extensions["store"], user_id)
    with FakeOpenAI(chat_script=["not json", "still not json", llm_reply(GOOD_COMPETENCIES)]) as fake:
        save_setting(client, "openai", DEFAULT_OPENAI_KEY)
        save_setting(client, "llm_base_url", fake.base_url)
        client.get(f"/interviews/{interview_id}")
        assert feedback.wait_for_generation(app, interview_id, GENERATION_TIMEOUT_S)
        failed_page = client.get(f"/interviews/{interview_id}").get_data(as_text=True)

        refused = client.post(f"/interviews/{interview_id}/feedback")  # no CSRF token
        retried = client.post(f"/interviews/{interview_id}/feedback",
                              data={"csrf_token": fetch_csrf_token(client)})
        assert feedback.wait_for_generation(app, interview_id, GENERATION_TIMEOUT_S)
        ready_page = client.get(f"/interviews/{interview_id}").get_data(as_text=True)

    assert 'role="alert"' in failed_page and "not valid feedback, twice in a row" in failed_page
    assert ">Retry</button>" in failed_page
    assert "/ 5" not in failed_page and 'id="score-chart"' not in failed_page
    assert refused.status_code == 400
    assert retried.status_code == 302 and retried.headers["Location"] == f"/interviews/{interview_id}"
    assert "3.6</span> / 5" in ready_page


@sqlite_only
def test_an_interview_that_ended_early_says_so_and_shows_what_exists(client, app):
    user_id = local_user_id(client, app)
    interview_id = add_interview(app.extensions["store"], user_id, BEHAVIORAL_SCRIPT[:5],
                                 status="interrupted", reason="time limit")
    set_ready_feedback(app, interview_id, [assessment("communication_clarity", 3, "I own the billing platform")])

    page = client.get(f"/interviews/{interview_id}").get_data(as_text=True)

    assert "This interview ended early (time limit)" in page
    assert "I own the billing platform end to end." in page
    assert page.count("not enough evidence</span>") == 4
    assert "3.0</span> / 5" in page


@sqlite_only
def test_regenerating_a_running_interview_is_refused(client, app):
    interview_id = add_interview(app.extensions["store"], local_user_id(client, app), status="live")

    response = client.post(f"/interviews/{interview_id}/feedback", data={"csrf_token": fetch_csrf_token(client)})

    assert response.status_code == 409
    with app.extensions["store"].session() as db:
        assert store.get_feedback(db, interview_id) is None


# ------------------------------------------------------------------------------------- exports


@sqlite_only
def test_markdown_export_holds_feedback_analytics_and_the_escaped_transcript(client, app):
    script = [*BEHAVIORAL_SCRIPT, ("candidate", "closing", "See <b>this</b> [link](javascript:alert(1)) *now*", 46.0, 49.0)]
    interview_id = add_interview(app.extensions["store"], local_user_id(client, app), script)
    set_ready_feedback(app, interview_id, summary="Great **work** <img src=x onerror=alert(1)>")

    response = client.get(f"/interviews/{interview_id}/export.md")
    body = response.get_data(as_text=True)

    assert response.status_code == 200
    assert response.mimetype == "text/markdown"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=\"mockflow-interview-")
    assert "# Backend engineer interview" in body
    assert "**Overall score:** 3\\.6 of 5" in body
    assert "Great \\*\\*work\\*\\* &lt;img src=x onerror=alert(1)&gt;" in body
    assert "## Speech analytics" in body and "**Pace:**" in body
    assert "## Transcript" in body and "### Past experience" in body
    assert "I own the billing platform end to end." in body
    assert "See &lt;b&gt;this&lt;/b&gt; \\[link\\](javascript\\:alert(1)) \\*now\\*" in body
    assert "<b>" not in body and "<img" not in body and "](javascript:" not in body


@sqlite_only
def test_pdf_export_opens_and_contains_the_transcript(client, app):
    interview_id = add_interview(app.extensions["store"], local_user_id(client, app))
    set_ready_feedback(app, interview_id)

    response = client.get(f"/interviews/{interview_id}/export.pdf")

    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    content = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
    assert "Backend engineer interview" in content
    assert "I own the billing platform end to end." in content
    assert "Tell me about a time you missed a deadline." in content
    assert "A solid interview with concrete examples." in content
    assert "Speech analytics" in content


@sqlite_only
@pytest.mark.parametrize("font_dir", [results_views.UNICODE_FONT_DIR, None], ids=["system-font", "built-in-font"])
def test_pdf_export_survives_text_its_font_cannot_draw(client, app, font_dir):
    script = [("interviewer", "greeting", "Hello!", 0.0, 1.0),
              ("candidate", "greeting", "Zoë said “naïve” — Ελληνικά, Привет, 日本語 and café.", 1.5, 5.0)]
    interview_id = add_interview(app.extensions["store"], local_user_id(client, app), script)
    with app.test_request_context():
        interview = store.get_interview(store.get_db(), interview_id)
        turns = results_views.merged_turns(interview_id)
        pdf = results_views.interview_pdf(interview, turns, font_dir=font_dir)

    content = " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Zoë said" in content and "café" in content  # Latin-1 survives either way
    assert "could not be drawn in this PDF's font" in content  # the CJK (and, built-in, more) replaced, and said
    if font_dir is None:
        assert '"naïve" -' in content  # typographic quotes and dashes in plain form


# ------------------------------------------------------------------------------------ dashboard


@sqlite_only
def test_dashboard_lists_history_filters_by_track_and_charts_progress(client, app):
    user_id = local_user_id(client, app)
    app_store = app.extensions["store"]
    older = add_interview(app_store, user_id)
    set_ready_feedback(app, older)
    newer = add_interview(app_store, user_id, role="Platform engineer")
    set_ready_feedback(app, newer, [assessment("star_structure", 2, "I own the billing platform end to end")])
    technical = add_interview(app_store, user_id, track="technical", status="failed", role="SRE")

    page = client.get("/dashboard").get_data(as_text=True)
    filtered = client.get("/dashboard?track=technical").get_data(as_text=True)
    unknown = client.get("/dashboard?track=<script>").get_data(as_text=True)

    for interview_id in (older, newer, technical):
        assert f'/interviews/{interview_id}"' in page
    assert "3.6 / 5" in page and "2.0 / 5" in page
    assert "Writing feedback…" in page  # the ended interview nobody opened gets its feedback started
    assert feedback.wait_for_generation(app, technical, GENERATION_TIMEOUT_S)
    with app.extensions["store"].session() as db:
        assert store.get_feedback(db, technical).error == feedback.MISSING_KEY_MESSAGE  # no key saved here
    assert 'id="progress-star_structure"' in page
    assert "STAR structure. " in page and "4 of 5; " in page and "2 of 5." in page  # oldest first
    assert 'id="progress-self_awareness"' in page  # scored once, shown as a single point
    assert f'/interviews/{technical}"' in filtered and f'/interviews/{older}"' not in filtered
    assert "Feedback failed" in client.get("/dashboard?track=technical").get_data(as_text=True)
    assert 'option value="technical" selected' in filtered
    assert f'/interviews/{older}"' in unknown and "<script>" not in unknown


# ------------------------------------------------------------------------------------- deletion


def test_deleting_an_interview_cascades_to_turns_events_and_feedback(client, app):
    user_id = local_user_id(client, app)
    doomed = add_interview(app.extensions["store"], user_id)
    kept = add_interview(app.extensions["store"], user_id)
    for interview_id in (doomed, kept):
        set_ready_feedback(app, interview_id)
    assert row_counts(app, doomed) == {"transcript_turns": 10, "stage_events": 5, "feedback": 1, "interviews": 1}

    confirm = client.get(f"/interviews/{doomed}/delete")
    response = client.post(f"/interviews/{doomed}/delete", data={"csrf_token": fetch_csrf_token(client)})

    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert row_counts(app, doomed) == {"transcript_turns": 0, "stage_events": 0, "feedback": 0, "interviews": 0}
    assert row_counts(app, kept) == {"transcript_turns": 10, "stage_events": 5, "feedback": 1, "interviews": 1}
    assert client.get(f"/interviews/{doomed}").status_code == 404


@sqlite_only
def test_a_running_interview_cannot_be_deleted(client, app):
    interview_id = add_interview(app.extensions["store"], local_user_id(client, app), status="live")

    response = client.post(f"/interviews/{interview_id}/delete", data={"csrf_token": fetch_csrf_token(client)})

    assert response.status_code == 409
    assert row_counts(app, interview_id)["interviews"] == 1


@pytest.fixture
def oidc_app(app_config: dict):
    flask_app = create_app({**app_config, **OIDC_CONFIG})
    yield flask_app
    flask_app.extensions["store"].dispose()


def test_deleting_the_account_removes_everything_and_signs_out(oidc_app):
    app_store = oidc_app.extensions["store"]
    ada, grace = make_user(oidc_app, "ada"), make_user(oidc_app, "grace")
    ada_client = oidc_app.test_client()
    login_as(ada_client, oidc_app, ada)
    save_setting(ada_client, "openai", "sk-ada-secret-value-0001")
    ada_interview, grace_interview = add_interview(app_store, ada), add_interview(app_store, grace)
    set_ready_feedback(oidc_app, ada_interview)

    unconfirmed = ada_client.post("/account/delete", data={"csrf_token": fetch_csrf_token(ada_client)})
    assert unconfirmed.status_code == 400 and row_counts(oidc_app, ada_interview)["interviews"] == 1
    response = ada_client.post("/account/delete",
                               data={"csrf_token": fetch_csrf_token(ada_client), "confirm": "yes"})

    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert row_counts(oidc_app, ada_interview) == {"transcript_turns": 0, "stage_events": 0, "feedback": 0,
                                                   "interviews": 0}
    with app_store.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM users WHERE id = :u"), {"u": ada}).scalar_one() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM provider_keys WHERE user_id = :u"),
                                  {"u": ada}).scalar_one() == 0
    assert row_counts(oidc_app, grace_interview)["transcript_turns"] == 10
    assert ada_client.get("/dashboard").headers["Location"].startswith("/login")


@sqlite_only
def test_download_my_data_has_everything_but_the_keys(client, app):
    user_id = local_user_id(client, app)
    secret = "sk-local-secret-value-9876"
    save_setting(client, "openai", secret)
    interview_id = add_interview(app.extensions["store"], user_id)
    set_ready_feedback(app, interview_id)

    response = client.get("/account/data")
    body = response.get_data(as_text=True)
    data = json.loads(body)

    assert response.headers["Content-Disposition"].startswith('attachment; filename="mockflow-data-')
    assert data["account"]["subject"] == "local-user"
    assert data["stored_settings"][0]["name"] == "openai"
    [interview] = data["interviews"]
    assert interview["id"] == interview_id
    assert [turn["text"] for turn in interview["transcript_turns"]] == [row[2] for row in BEHAVIORAL_SCRIPT]
    assert [event["to"] for event in interview["stage_events"]][:2] == ["greeting", "self_introduction"]
    assert interview["feedback"]["result"]["overall_score"] == 3.6
    assert interview["context"]["resume_text"].startswith("RESUME-MARKER")
    with app.extensions["store"].session() as db:
        ciphertext = store.list_provider_keys(db, user_id)["openai"].ciphertext
    assert secret not in body and secret[-4:] not in body and ciphertext not in body


# ------------------------------------------------------------------------------------ ownership

OWNED_ROUTES = [
    ("GET", "/interviews/{id}"),
    ("GET", "/api/interviews/{id}/feedback"),
    ("POST", "/interviews/{id}/feedback"),
    ("GET", "/interviews/{id}/export.md"),
    ("GET", "/interviews/{id}/export.pdf"),
    ("GET", "/interviews/{id}/delete"),
    ("POST", "/interviews/{id}/delete"),
]


@sqlite_only
@pytest.mark.parametrize(("method", "route"), OWNED_ROUTES, ids=[f"{m} {r}" for m, r in OWNED_ROUTES])
def test_another_user_gets_404_and_changes_nothing(oidc_app, method, route):
    owner, stranger = make_user(oidc_app, "ada"), make_user(oidc_app, "grace")
    interview_id = add_interview(oidc_app.extensions["store"], owner)
    set_ready_feedback(oidc_app, interview_id)
    stranger_client = oidc_app.test_client()
    login_as(stranger_client, oidc_app, stranger)
    path = route.format(id=interview_id)

    if method == "GET":
        response = stranger_client.get(path)
    else:
        response = stranger_client.post(path, data={"csrf_token": fetch_csrf_token(stranger_client)})

    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert interview_id not in body and "billing platform" not in body
    assert row_counts(oidc_app, interview_id) == {"transcript_turns": 10, "stage_events": 5, "feedback": 1,
                                                  "interviews": 1}
    with oidc_app.extensions["store"].session() as db:
        assert store.get_feedback(db, interview_id).status == "ready"


@sqlite_only
def test_the_routes_listed_here_are_every_results_route_with_an_interview_id(oidc_app):
    listed = {(method, route.replace("{id}", "<interview_id>")) for method, route in OWNED_ROUTES}
    registered = {
        (method, rule.rule)
        for rule in oidc_app.url_map.iter_rules()
        if rule.endpoint.startswith("results.") and "interview_id" in rule.arguments
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert registered <= listed


def test_charts_scale_their_bars_to_the_values():
    items = [results_views.ChartItem("A", 5, "5 of 5"), results_views.ChartItem("B", 2.5, "2.5", "2½"),
             results_views.ChartItem("C", None, "none")]
    chart = results_views.hbar_chart("c", "Scores", items, 5, ("x", "y"), step=1)

    widths = [rect.width for rect in chart.rects]
    assert len(widths) == 2 and widths[0] == pytest.approx(2 * widths[1])
    assert chart.description == "Scores. A: 5 of 5; B: 2.5; C: none."
    assert [text.text for text in chart.texts if text.css == "chart-tick"] == ["0", "1", "2", "3", "4", "5"]
    assert [text.text for text in chart.texts if text.css == "chart-value"] == ["5 of 5", "2½", "none"]
    assert chart.table_rows == [("A", "5 of 5"), ("B", "2.5"), ("C", "none")]
    assert [results_views.nice_step(value) for value in (173, 5, 0.9, 4000)] == [50, 1, 0.2, 1000]
