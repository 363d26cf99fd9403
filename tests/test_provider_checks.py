"""The Settings page's "Test" buttons against local servers that speak the providers' APIs.

Every answer must be plain words: no provider error text, no HTTP jargon beyond an unexpected code,
and never the key itself.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

import provider_checks
from conftest import fetch_csrf_token
from fakes import (
    DEFAULT_DEEPGRAM_KEY,
    DEFAULT_LIVEKIT_API_KEY,
    DEFAULT_LIVEKIT_API_SECRET,
    DEFAULT_OPENAI_KEY,
    FakeDeepgram,
    FakeLiveKit,
    FakeOpenAI,
    twirp_path,
)
from fakes.fake_livekit import TwirpError
from fakes.fake_openai import MODELS_PATH

CHECK_TIMEOUT_S = 5.0
DEEPGRAM_PROJECTS_PATH = "/v1/projects"
LIST_ROOMS_PATH = twirp_path("RoomService", "ListRooms")
PROVIDER_JARGON = ("invalid_api_key", "Incorrect API key", "INVALID_AUTH", "unauthenticated", "Traceback",
                   "insufficient_quota", "TOO_MANY_REQUESTS", "resource_exhausted", "Errno", "HTTP 4")

ACCEPTED = {
    "openai": "OpenAI accepted the key.",
    "deepgram": "Deepgram accepted the key.",
    "livekit": "LiveKit accepted the URL, key and secret.",
}
REJECTED = "{title} rejected the key. Check that you copied all of it."
QUOTA = "{title} says the quota is used up or too many requests were made. Try later."
UNREACHABLE = "{title} could not be reached. Check the URL and your server's network."
TITLES = {"openai": "OpenAI", "deepgram": "Deepgram", "livekit": "LiveKit"}


class RateLimitedLiveKit(FakeLiveKit):
    """The LiveKit fake answering every call with Twirp's `resource_exhausted` (HTTP 429)."""

    def _authorize(self, request, required_grant: str) -> None:
        super()._authorize(request, required_grant)
        raise TwirpError(429, "resource_exhausted", "rate limit exceeded")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening, so connecting is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def check(provider: str, values: dict[str, str], **kwargs) -> provider_checks.CheckResult:
    return provider_checks.check_provider(provider, values, timeout=CHECK_TIMEOUT_S, **kwargs)


def assert_plain_words(result: provider_checks.CheckResult, *secrets: str) -> None:
    for jargon in PROVIDER_JARGON:
        assert jargon not in result.message
    for secret in secrets:
        assert secret not in result.message


# --- OpenAI: GET /v1/models with a Bearer key ------------------------------------------------------


def openai_values(base_url: str, key: str = DEFAULT_OPENAI_KEY) -> dict[str, str]:
    return {"openai": key, "llm_base_url": base_url}


def test_openai_accepts_a_good_key():
    with FakeOpenAI() as fake:
        result = check("openai", openai_values(fake.base_url))
        request = fake.requests.last(MODELS_PATH)

    assert result == provider_checks.CheckResult(True, ACCEPTED["openai"])
    assert request.method == "GET"
    assert request.authorization == f"Bearer {DEFAULT_OPENAI_KEY}"


def test_openai_rejects_a_bad_key():
    with FakeOpenAI() as fake:
        result = check("openai", openai_values(fake.base_url, key="sk-wrong-key-0000"))
        assert fake.requests.last(MODELS_PATH).authorization == "Bearer sk-wrong-key-0000"

    assert result == provider_checks.CheckResult(False, REJECTED.format(title="OpenAI"))
    assert_plain_words(result, "sk-wrong-key-0000")


def test_openai_reports_an_exhausted_quota():
    with FakeOpenAI(quota_exceeded=True) as fake:
        result = check("openai", openai_values(fake.base_url))

    assert result == provider_checks.CheckResult(False, QUOTA.format(title="OpenAI"))
    assert_plain_words(result, DEFAULT_OPENAI_KEY)


def test_openai_unreachable(closed_port):
    result = check("openai", openai_values(f"http://127.0.0.1:{closed_port}/v1"))

    assert result == provider_checks.CheckResult(False, UNREACHABLE.format(title="OpenAI"))
    assert_plain_words(result, DEFAULT_OPENAI_KEY)


# --- Deepgram: GET /v1/projects with a Token key --------------------------------------------------


def test_deepgram_accepts_a_good_key():
    with FakeDeepgram() as fake:
        result = check("deepgram", {"deepgram": DEFAULT_DEEPGRAM_KEY}, deepgram_base_url=fake.base_url)
        request = fake.requests.last(DEEPGRAM_PROJECTS_PATH)

    assert result == provider_checks.CheckResult(True, ACCEPTED["deepgram"])
    assert request.authorization == f"Token {DEFAULT_DEEPGRAM_KEY}"


def test_deepgram_rejects_a_bad_key():
    bad_key = "0" * 40
    with FakeDeepgram() as fake:
        result = check("deepgram", {"deepgram": bad_key}, deepgram_base_url=fake.base_url)
        assert fake.requests.last(DEEPGRAM_PROJECTS_PATH).authorization == f"Token {bad_key}"

    assert result == provider_checks.CheckResult(False, REJECTED.format(title="Deepgram"))
    assert_plain_words(result, bad_key)


def test_deepgram_reports_too_many_requests():
    with FakeDeepgram(quota_exceeded=True) as fake:
        result = check("deepgram", {"deepgram": DEFAULT_DEEPGRAM_KEY}, deepgram_base_url=fake.base_url)

    assert result == provider_checks.CheckResult(False, QUOTA.format(title="Deepgram"))
    assert_plain_words(result, DEFAULT_DEEPGRAM_KEY)


def test_deepgram_unreachable(closed_port):
    result = check("deepgram", {"deepgram": DEFAULT_DEEPGRAM_KEY},
                   deepgram_base_url=f"http://127.0.0.1:{closed_port}/v1")

    assert result == provider_checks.CheckResult(False, UNREACHABLE.format(title="Deepgram"))


# --- LiveKit: Twirp RoomService/ListRooms with a JWT signed by the secret --------------------------


def livekit_values(url: str, secret: str = DEFAULT_LIVEKIT_API_SECRET) -> dict[str, str]:
    return {"livekit_url": url, "livekit_api_key": DEFAULT_LIVEKIT_API_KEY, "livekit_api_secret": secret}


def test_livekit_accepts_the_url_key_and_secret():
    with FakeLiveKit() as fake:
        result = check("livekit", livekit_values(fake.ws_url))
        request = fake.requests.last(LIST_ROOMS_PATH)

    assert result == provider_checks.CheckResult(True, ACCEPTED["livekit"])
    assert request.method == "POST"
    assert request.authorization.startswith("Bearer ")


def test_livekit_rejects_a_wrong_secret():
    wrong_secret = "not-the-secret-of-this-livekit-server-00"
    with FakeLiveKit() as fake:
        result = check("livekit", livekit_values(fake.ws_url, secret=wrong_secret))
        fake.requests.last(LIST_ROOMS_PATH)

    assert result == provider_checks.CheckResult(False, REJECTED.format(title="LiveKit"))
    assert_plain_words(result, wrong_secret)


def test_livekit_reports_rate_limiting():
    with RateLimitedLiveKit() as fake:
        result = check("livekit", livekit_values(fake.ws_url))

    assert result == provider_checks.CheckResult(False, QUOTA.format(title="LiveKit"))
    assert_plain_words(result, DEFAULT_LIVEKIT_API_SECRET)


def test_livekit_unreachable(closed_port):
    result = check("livekit", livekit_values(f"ws://127.0.0.1:{closed_port}"))

    assert result == provider_checks.CheckResult(False, UNREACHABLE.format(title="LiveKit"))


# --- Missing or unreadable values: no call is made -----------------------------------------------


@pytest.mark.parametrize(
    ("provider", "values", "message"),
    [
        ("openai", {}, "OpenAI API key is missing. Add it above first."),
        ("deepgram", {"openai": DEFAULT_OPENAI_KEY}, "Deepgram API key is missing. Add it above first."),
        ("livekit", {}, "LiveKit URL is missing. Add it above first."),
        ("livekit", {"livekit_url": "wss://x.livekit.cloud", "livekit_api_key": "APIx"},
         "LiveKit API secret is missing. Add it above first."),
        ("livekit", {"livekit_url": "wss://x.livekit.cloud", "livekit_api_secret": "s"},
         "LiveKit API key is missing. Add it above first."),
    ],
)
def test_a_missing_value_is_named_and_nothing_is_called(provider, values, message):
    with FakeOpenAI() as fake:
        result = check(provider, {**values, "llm_base_url": fake.base_url}, deepgram_base_url=fake.base_url)
        assert len(fake.requests) == 0

    assert result == provider_checks.CheckResult(False, message)


def test_an_unreadable_value_asks_to_reenter_it():
    with FakeOpenAI() as fake:
        result = check("openai", openai_values(fake.base_url), unreadable=["openai"])
        assert len(fake.requests) == 0

    assert result == provider_checks.CheckResult(
        False, "OpenAI API key could not be read. Re-enter this key."
    )


# --- Through the Settings page ---------------------------------------------------------------------


def _check_result_box(page: str) -> tuple[str, str]:
    match = re.search(
        r'<div class="check-result (ok|error)" role="status" id="check-result">(.*?)</div>', page, re.S
    )
    assert match, "the page shows no test result"
    return match.group(1), " ".join(match.group(2).split())


def _save(client, name: str, value: str) -> None:
    response = client.post(f"/settings/{name}", data={"value": value, "csrf_token": fetch_csrf_token(client)})
    assert response.status_code == 302


def test_the_test_button_checks_the_stored_openai_key(client):
    with FakeOpenAI() as fake:
        _save(client, "llm_base_url", fake.base_url)
        _save(client, "openai", DEFAULT_OPENAI_KEY)
        response = client.post("/settings/test/openai", data={"csrf_token": fetch_csrf_token(client)})
        request = fake.requests.last(MODELS_PATH)

    assert response.status_code == 200
    assert request.authorization == f"Bearer {DEFAULT_OPENAI_KEY}"
    page = response.get_data(as_text=True)
    assert _check_result_box(page) == ("ok", "<strong>OpenAI test:</strong> OpenAI accepted the key.")
    assert DEFAULT_OPENAI_KEY not in page


def test_the_test_button_reports_a_rejected_livekit_secret(client):
    with FakeLiveKit() as fake:
        _save(client, "livekit_url", fake.ws_url)
        _save(client, "livekit_api_key", DEFAULT_LIVEKIT_API_KEY)
        _save(client, "livekit_api_secret", "a-secret-this-server-does-not-know-000")
        response = client.post("/settings/test/livekit", data={"csrf_token": fetch_csrf_token(client)})
        fake.requests.last(LIST_ROOMS_PATH)

    assert response.status_code == 200
    assert _check_result_box(response.get_data(as_text=True)) == (
        "error", "<strong>LiveKit test:</strong> " + REJECTED.format(title="LiveKit"))
