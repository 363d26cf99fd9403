"""Helpers for the browser tests of the interview room: keys, a started interview, the SDK double."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page

import store

LIVEKIT_DOUBLE = Path(__file__).with_name("livekit_client_double.js")
VENDOR_LIVEKIT = "**/static/vendor/livekit-client.umd.js"
LIVEKIT_KEY = "APIbrowsertest"
LIVEKIT_SECRET = "browser-test-livekit-secret-" + "s" * 20
INTERVIEW_SETUP = {
    "candidate_name": "Ada Lovelace",
    "role": "Backend engineer",
    "level": "senior",
    "company": "Acme",
    "track": "behavioral",
    "length": "standard",
    "language": "en",
    "resume_text": "Led the billing rewrite.",
    "job_description_text": "Owns payments.",
}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class RecordingLauncher:
    """Stands in for the agent launcher (no agent can run here): records the interviews it got."""

    launched: list[str] = field(default_factory=list)

    def __call__(self, interview, _values) -> None:
        self.launched.append(interview.id)

    def close(self) -> None:
        return None


def install_recording_launcher(app) -> RecordingLauncher:
    launcher = RecordingLauncher()
    app.extensions["worker_launcher"] = launcher
    return launcher


def provider_values(livekit_url: str) -> dict[str, str]:
    return {
        "livekit_url": livekit_url,
        "livekit_api_key": LIVEKIT_KEY,
        "livekit_api_secret": LIVEKIT_SECRET,
        "openai": "sk-browser-test-openai-key",
        "deepgram": "deepgram-browser-test-key",
    }


def csrf_token(page: Page, url: str) -> str:
    match = CSRF_META.search(page.request.get(url).text())
    assert match, "the page carries no CSRF token"
    return match.group(1)


def save_keys(page: Page, base_url: str, livekit_url: str) -> None:
    """Store the provider keys through the Settings endpoints, in the page's browser session."""
    token = csrf_token(page, base_url + "/settings")
    for name, value in provider_values(livekit_url).items():
        response = page.request.post(f"{base_url}/settings/{name}", form={"value": value, "csrf_token": token},
                                     max_redirects=0)
        assert response.status == 302, response.text()


def save_keys_with_settings_form(page: Page, base_url: str, livekit_url: str) -> None:
    """Store the provider keys by filling the Settings page as a user would."""
    for name, value in provider_values(livekit_url).items():
        page.goto(base_url + "/settings")
        page.fill(f"#field-{name}", value)
        page.locator(f"form:has(#field-{name}) button[type=submit]").click()
        page.wait_for_url(base_url + "/settings")
        assert page.locator(f"form:has(#field-{name}) .masked").count() == 1


def start_interview(page: Page, base_url: str) -> str:
    """Start an interview through the JSON API and return its id."""
    token = csrf_token(page, base_url + "/interviews/new")
    response = page.request.post(base_url + "/api/interviews", data=INTERVIEW_SETUP, headers={"X-CSRFToken": token})
    assert response.status == 201, response.text()
    return response.json()["id"]


def use_livekit_double(page: Page) -> None:
    """Serve the SDK test double in place of the pinned livekit-client bundle."""
    page.route(VENDOR_LIVEKIT, lambda route: route.fulfill(path=LIVEKIT_DOUBLE, content_type="text/javascript"))


def set_status(app, interview_id: str, status: str, reason: str = "") -> None:
    with app.extensions["store"].session() as db:
        assert store.set_interview_status(db, interview_id, status, reason)
