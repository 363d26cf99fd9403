"""The results pages in the real browser (Debian's Chromium): feedback written in the background and
shown without a reload, quotes that jump to the transcript, charts with text alternatives, hostile
transcript and LLM text rendered inert, the dashboard's history and progress, deletion, and axe."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

import feedback
import store
from auth_helpers import LOCAL_ISSUER, LOCAL_SUBJECT
from browser_fixtures import run_axe, save_screenshot
from fakes.fake_openai import DEFAULT_OPENAI_KEY, FakeOpenAI
from test_feedback import BEHAVIORAL_SCRIPT, GOOD_COMPETENCIES, add_interview, assessment, llm_reply

WAIT_MS = 20_000
HOSTILE = '<script>window.__xss = "script"</script><img src=x onerror="window.__xss = \'img\'"> javascript:alert(1)'
HOSTILE_LINK = "[click me](javascript:window.__xss='link') <a href=\"javascript:window.__xss='a'\">open</a>"


@pytest.fixture
def local_user(browser_app) -> int:
    with browser_app.extensions["store"].session() as db:
        return store.get_or_create_user(db, LOCAL_ISSUER, LOCAL_SUBJECT, "", "Local user").id


@pytest.fixture
def fake_llm(browser_app, local_user):
    """The fake OpenAI-compatible server, stored as the local user's LLM endpoint and key."""
    with FakeOpenAI() as fake:
        vault = browser_app.extensions["key_vault"]
        with browser_app.extensions["store"].session() as db:
            for name, value in (("openai", DEFAULT_OPENAI_KEY), ("llm_base_url", fake.base_url)):
                store.put_provider_key(db, local_user, name, vault.encrypt(local_user, value), value[-4:])
        yield fake


def generate_now(browser_app, interview_id: str, fake: FakeOpenAI) -> None:
    app_store = browser_app.extensions["store"]
    with app_store.session() as db:
        assert store.claim_feedback_generation(db, interview_id)
    llm = feedback.LlmSettings(api_key=DEFAULT_OPENAI_KEY, base_url=fake.base_url, model="gpt-4o-mini")
    assert feedback.generate_feedback(app_store, interview_id, llm) == "ready"


def test_a_completed_interview_shows_feedback_analytics_charts_and_transcript(page: Page, live_server, browser_app,
                                                                              local_user, fake_llm):
    interview_id = add_interview(browser_app.extensions["store"], local_user)
    fake_llm.llm_first_token_delay_s = 1.0  # long enough to see the progress first
    fake_llm.chat_script.append(llm_reply(GOOD_COMPETENCIES))

    page.goto(live_server.url(f"/interviews/{interview_id}"))
    expect(page.get_by_role("progressbar", name="Writing your feedback")).to_be_visible()
    expect(page.locator("[data-feedback-message]")).to_have_text(re.compile("Measuring your speech|Writing your feedback"))
    # feedback.js polls the status API and reloads once the feedback is ready.
    expect(page.get_by_role("heading", name="Rubric")).to_be_visible(timeout=WAIT_MS)

    expect(page.locator(".overall-number")).to_have_text("3.6")
    score_chart = page.get_by_role("img", name="Scores per competency (out of 5)")
    expect(score_chart).to_be_visible()
    assert "STAR structure: 4 of 5" in score_chart.locator("desc").text_content()
    assert page.locator("#score-chart rect.chart-bar").count() == 5
    for name in ("Speaking pace per answer (words per minute)", "Filler words per stage",
                 "Talk time: share of the conversation"):
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.locator(".stage-marker")).to_have_text(
        ["Greeting", "Self-introduction", "Past experience", "Company and role fit", "Closing"])

    star = page.locator(".competency").filter(has_text="STAR structure")
    expect(star.locator("blockquote")).to_have_text(
        "“I split the work into smaller releases and, uh, we shipped the rest on time”")
    star.get_by_role("link", name="Go to [00:19] in the transcript").click()
    assert page.url.endswith("#turn-7")
    target = page.locator("#turn-7")
    expect(target).to_be_in_viewport()
    expect(target).to_contain_text("our billing migration slipped by two weeks")
    assert page.evaluate("document.querySelector(':target').id") == "turn-7"

    page.evaluate("window.scrollTo(0, 0)")
    assert run_axe(page) == []
    save_screenshot(page, "feedback-page")
    page.set_viewport_size({"width": 390, "height": 844})
    save_screenshot(page, "feedback-page-phone")


def test_hostile_transcript_and_llm_text_render_inert(page: Page, live_server, browser_app, local_user, fake_llm):
    script = [
        ("interviewer", "greeting", f"Welcome {HOSTILE}", 0.0, 2.0),
        ("candidate", "greeting", f"My answer is {HOSTILE} and {HOSTILE_LINK} thanks", 2.5, 6.0),
        *BEHAVIORAL_SCRIPT[2:],
    ]
    interview_id = add_interview(browser_app.extensions["store"], local_user, script, role="Engineer")
    competencies = [
        assessment("star_structure", 3, f"My answer is {HOSTILE}", rationale=f"Rationale {HOSTILE}"),
        assessment("communication_clarity", 3, HOSTILE_LINK, rationale=HOSTILE_LINK),
    ]
    fake_llm.chat_script.append(llm_reply(
        competencies,
        summary=f"Summary {HOSTILE} {HOSTILE_LINK}",
        strengths=[HOSTILE, HOSTILE_LINK],
        improvements=[{"area": HOSTILE, "technique": HOSTILE_LINK}],
        stage_notes=[{"stage": HOSTILE, "note": HOSTILE_LINK}],
        practice_plan=[{"when": HOSTILE, "activity": HOSTILE_LINK}],
    ))
    generate_now(browser_app, interview_id, fake_llm)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(live_server.url(f"/interviews/{interview_id}"))
    expect(page.get_by_role("heading", name="Rubric")).to_be_visible()

    expect(page.locator(".summary")).to_contain_text('<script>window.__xss = "script"</script><img src=x onerror=')
    expect(page.locator(".competency").first.locator("blockquote")).to_contain_text("<img src=x onerror=")
    expect(page.locator("#turn-2")).to_contain_text("[click me](javascript:window.__xss='link') <a href=")
    assert page.locator("main img, main script, main b, main iframe").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.getAttribute('href'))")
    assert hrefs and not [href for href in hrefs if "javascript" in href.lower()]
    assert page.evaluate("typeof window.__xss") == "undefined"
    # Clicking through every link the page offers still runs nothing.
    for link in page.locator("main a[href^='#turn-']").all():
        link.click()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    save_screenshot(page, "feedback-page-hostile-text")


def test_dashboard_history_progress_filter_and_delete(page: Page, live_server, browser_app, local_user, fake_llm):
    app_store = browser_app.extensions["store"]
    first = add_interview(app_store, local_user)
    fake_llm.chat_script.append(llm_reply([
        assessment("star_structure", 2, "I split the work into smaller releases"),
        assessment("communication_clarity", 3, "I own the billing platform end to end"),
        assessment("role_fit", 2, "Your payments team solves the problems I enjoy most"),
    ]))
    generate_now(browser_app, first, fake_llm)
    second = add_interview(app_store, local_user, role="Platform engineer")
    fake_llm.chat_script.append(llm_reply(GOOD_COMPETENCIES))
    generate_now(browser_app, second, fake_llm)
    technical = add_interview(app_store, local_user, BEHAVIORAL_SCRIPT[:3], track="technical", status="interrupted",
                              reason="time limit", role="Site reliability engineer")

    page.goto(live_server.url("/dashboard"))
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Site reliability engineer")
    expect(rows.nth(0)).to_contain_text("Writing feedback…")
    # Opening the dashboard started the feedback nobody had asked for yet (the fake's default reply
    # is not feedback, so it fails).
    assert feedback.wait_for_generation(browser_app, technical, 20)
    expect(rows.nth(1)).to_contain_text("3.6 / 5")
    expect(rows.nth(2)).to_contain_text("2.3 / 5")
    star_progress = page.get_by_role("img", name="STAR structure")
    expect(star_progress).to_be_visible()
    assert re.fullmatch(r"STAR structure\. \d\d-\d\d: 2 of 5; \d\d-\d\d: 4 of 5\.",
                        star_progress.locator("desc").text_content())
    assert star_progress.locator("polyline").count() == 1
    assert run_axe(page) == []
    save_screenshot(page, "dashboard-history")
    page.set_viewport_size({"width": 390, "height": 844})
    save_screenshot(page, "dashboard-history-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_label("Track").select_option("technical")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ended early")
    expect(rows.first).to_contain_text("Feedback failed")
    assert page.url.endswith("/dashboard?track=technical")

    rows.first.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete this interview?")).to_be_visible()
    page.get_by_role("button", name="Delete interview").click()
    expect(page.get_by_role("status").filter(has_text="were deleted")).to_be_visible()
    expect(rows).to_have_count(2)
    with app_store.session() as db:
        assert store.get_interview(db, technical) is None
        assert store.list_turns(db, technical) == []


def test_downloaded_data_is_the_users_json(page: Page, live_server, browser_app, local_user, fake_llm):
    interview_id = add_interview(browser_app.extensions["store"], local_user)

    page.goto(live_server.url("/dashboard"))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download my data").click()
    data = json.loads(download_info.value.path().read_text(encoding="utf-8"))

    assert [interview["id"] for interview in data["interviews"]] == [interview_id]
    assert {setting["name"] for setting in data["stored_settings"]} == {"openai", "llm_base_url"}
    assert DEFAULT_OPENAI_KEY not in json.dumps(data)
