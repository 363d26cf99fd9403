"""WCAG 2.2 AA checks with axe-core in Chromium: no serious or critical violations on any page,
and the room usable by keyboard at phone width."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import Page, expect

import store
from app import create_app
from browser_fixtures import LiveServer, run_axe, save_screenshot
from room_helpers import install_recording_launcher, save_keys, start_interview, use_livekit_double

AGENT_LIVE = {
    "mockflow.status": "live",
    "mockflow.stage": "greeting",
    "mockflow.stage_title": "Greeting",
    "mockflow.stage_index": "0",
    "mockflow.stage_count": "5",
    "lk.agent.state": "speaking",
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def signed_out_server(tmp_path) -> Iterator[LiveServer]:
    """The app with sign-in required (OIDC configured, never contacted), so the landing page shows."""
    database_url = f"sqlite:///{tmp_path / 'landing.db'}"
    migration_store = store.Store(database_url)
    migration_store.upgrade()
    migration_store.dispose()
    oidc_app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": tmp_path / "instance",
            "SECRET_KEY": "landing-test-secret",
            "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "AUTH_MODE": "oidc",
            "OIDC_ISSUER": "http://127.0.0.1:9/issuer",
            "OIDC_CLIENT_ID": "landing-client",
            "OIDC_CLIENT_SECRET": "landing-client-secret",
            "RATELIMIT_ENABLED": False,
        }
    )
    with LiveServer(oidc_app) as server:
        yield server
    oidc_app.extensions["store"].dispose()


def assert_no_serious_violations(page: Page, where: str) -> None:
    violations = run_axe(page)
    assert violations == [], f"{where}: {violations}"


def test_landing_page(page: Page, signed_out_server):
    page.goto(signed_out_server.url("/"))
    expect(page.locator("h1")).to_be_visible()
    assert_no_serious_violations(page, "landing")


def test_app_pages(page: Page, live_server, browser_app):
    install_recording_launcher(browser_app)
    for path in ("/dashboard", "/settings", "/interviews/new"):
        page.goto(live_server.url(path))
        assert_no_serious_violations(page, path)
    save_keys(page, live_server.base_url, "wss://lk.example.test")
    start_interview(page, live_server.base_url)
    page.goto(live_server.url("/dashboard"))
    assert_no_serious_violations(page, "dashboard with an interview")


def test_room_before_during_and_after(page: Page, live_server, browser_app):
    install_recording_launcher(browser_app)
    save_keys(page, live_server.base_url, "wss://lk.example.test")
    interview_id = start_interview(page, live_server.base_url)
    use_livekit_double(page)
    page.goto(live_server.url(f"/interviews/{interview_id}"))

    page.get_by_role("button", name="Turn on microphone").click()
    expect(page.locator("#mic-message")).to_contain_text("Microphone on")
    assert_no_serious_violations(page, "room before joining")
    save_screenshot(page, "room-before-1280x800")
    page.set_viewport_size(PHONE)
    save_screenshot(page, "room-before-390x844")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="Join the interview").click()
    expect(page.locator("#connection-status")).to_have_text("Interviewer joining…")
    assert_no_serious_violations(page, "room while the interviewer joins")
    page.evaluate("attrs => window.__livekitDouble.agentJoins(attrs)", AGENT_LIVE)
    page.evaluate("() => window.__livekitDouble.agentSays('seg-1', ['Welcome, tell me about yourself.'])")
    page.evaluate("() => window.__livekitDouble.candidateSays('seg-2', 'I build payment systems', false)")
    expect(page.get_by_role("log")).to_contain_text("Welcome, tell me about yourself.")
    double = "window.__livekitDouble"
    page.evaluate(f"() => {double}.unplugMicrophone()")
    expect(page.get_by_role("alert")).to_contain_text("Your microphone stopped")
    assert_no_serious_violations(page, "room during the interview, with a problem")
    page.set_viewport_size(PHONE)
    save_screenshot(page, "room-problem-390x844")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="End interview").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert_no_serious_violations(page, "end confirmation")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()

    page.evaluate(f"() => {double}.setAgentAttributes({{'mockflow.status': 'completed'}})")
    expect(page.locator("#ended-title")).to_have_text("The interview is complete")
    assert_no_serious_violations(page, "room after the interview")
    save_screenshot(page, "room-ended-1280x800")


def test_room_by_keyboard_alone_at_phone_width(page: Page, live_server, browser_app):
    install_recording_launcher(browser_app)
    save_keys(page, live_server.base_url, "wss://lk.example.test")
    interview_id = start_interview(page, live_server.base_url)
    use_livekit_double(page)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server.url(f"/interviews/{interview_id}"))

    def tab_to(name: str) -> None:
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.textContent.trim()") == name:
                return
        raise AssertionError(f"{name!r} cannot be reached with Tab")

    tab_to("Turn on microphone")
    page.keyboard.press("Enter")
    expect(page.locator("#mic-message")).to_contain_text("Microphone on")
    tab_to("Join the interview")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "the focused button shows no focus ring"
    page.keyboard.press("Enter")
    expect(page.locator("#connection-status")).to_have_text("Interviewer joining…")
    page.evaluate("attrs => window.__livekitDouble.agentJoins(attrs)", AGENT_LIVE)
    expect(page.locator("#connection-status")).to_have_text("You are live with the interviewer.")
    tab_to("End interview")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Keep going")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#ended-title")).to_be_focused()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    methods = page.evaluate("() => window.__livekitDouble.rpcCalls.map(call => call.method)")
    assert methods == ["end_interview"]
