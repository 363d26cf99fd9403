"""Sign-in: the real Authlib OIDC flow against a local provider, logout, and local mode.

The provider (`fake_oidc.py`) runs on 127.0.0.1; Authlib fetches discovery, the JWKS and the token
over real HTTP, and the browser leg (authorize, then back to the callback) is played by the tests.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from sqlalchemy import select

import store
from app import create_app
from auth_helpers import ID_TOKEN_LEEWAY_S, check_local_mode_binding, safe_next_url
from config import GOOGLE_ISSUER, ConfigError, Settings
from conftest import csrf_token_from
from fake_oidc import OMIT, FakeOIDCProvider, pkce_s256_challenge

CLIENT_ID = "mockflow-test-client"
CLIENT_SECRET = "mockflow-test-client-secret"
CALLBACK_URL = "http://localhost/auth/callback"
SIGN_IN_FAILED = "Sign-in failed or expired"
EMAIL_NOT_VERIFIED = "Your email address is not verified"


@pytest.fixture(scope="module")
def oidc_server() -> Iterator[FakeOIDCProvider]:
    provider = FakeOIDCProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(oidc_server: FakeOIDCProvider) -> FakeOIDCProvider:
    """The shared provider, with nothing recorded and no fault pending."""
    oidc_server.reset()
    return oidc_server


@pytest.fixture
def oidc_app(app_config: dict, provider: FakeOIDCProvider) -> Iterator[Flask]:
    """An app that requires sign-in through the local provider (on SQLite and PostgreSQL)."""
    app_config.update(
        AUTH_MODE="oidc",
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    flask_app = create_app(app_config)
    yield flask_app
    flask_app.extensions["store"].dispose()


@pytest.fixture
def browser(oidc_app: Flask) -> FlaskClient:
    return oidc_app.test_client()


def begin_sign_in(client: FlaskClient, next_url: str | None = None) -> str:
    """GET /login?go=1 and return the provider's authorize URL it redirects to."""
    query: dict[str, Any] = {"go": 1}
    if next_url is not None:
        query["next"] = next_url
    response = client.get("/login", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def visit_provider(authorize_url: str) -> str:
    """The browser leg at the provider: return the callback path and query it redirects back to."""
    response = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    callback = urlsplit(response.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == CALLBACK_URL
    return f"{callback.path}?{callback.query}"


def sign_in(client: FlaskClient, next_url: str | None = None):
    """Run the whole sign-in and return the app's answer to the callback."""
    return client.get(visit_provider(begin_sign_in(client, next_url)))


def with_query(url: str, **changes: str | None) -> str:
    """`url` with some query parameters replaced (or removed when None)."""
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return parts._replace(query=urlencode(query)).geturl()


def all_users(app: Flask) -> list[store.User]:
    with app.extensions["store"].session() as db:
        return list(db.scalars(select(store.User).order_by(store.User.id)))


def session_user_id(client: FlaskClient) -> int | None:
    with client.session_transaction() as session:
        return session.get("user_id")


def assert_refused(app: Flask, client: FlaskClient, response, message: str) -> None:
    """The callback answered 400 with `message`, created no account and signed nobody in."""
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert all_users(app) == []
    assert session_user_id(client) is None
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 302
    assert urlsplit(dashboard.headers["Location"]).path == "/login"


# --- a good sign-in ---------------------------------------------------------------------------


def test_good_sign_in_creates_the_account_by_issuer_and_subject_and_follows_next(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider
):
    response = sign_in(browser, next_url="/settings?tab=keys")

    assert response.status_code == 302
    assert response.headers["Location"] == "/settings?tab=keys"
    [user] = all_users(oidc_app)
    assert (user.issuer, user.subject) == (provider.issuer, "subject-1")
    assert (user.email, user.name) == ("candidate@example.test", "Casey Candidate")
    assert session_user_id(browser) == user.id
    dashboard = browser.get("/dashboard")
    assert dashboard.status_code == 200
    assert "Sign out" in dashboard.get_data(as_text=True)


def test_sign_in_sends_state_nonce_and_pkce_s256_and_the_provider_verifies_the_verifier(
    browser: FlaskClient, provider: FakeOIDCProvider
):
    assert sign_in(browser).status_code == 302
    assert sign_in(browser).status_code == 302

    first, second = provider.authorize_requests
    for authorize in (first, second):
        assert authorize["client_id"] == CLIENT_ID
        assert authorize["redirect_uri"] == CALLBACK_URL
        assert authorize["response_type"] == "code"
        assert set(authorize["scope"].split()) == {"openid", "email", "profile"}
        assert authorize["code_challenge_method"] == "S256"
        assert len(authorize["code_challenge"]) >= 43
        assert authorize["state"] and authorize["nonce"]
    assert first["state"] != second["state"]
    assert first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]

    for authorize, exchange in zip((first, second), provider.token_requests, strict=True):
        assert exchange.status == 200
        assert exchange.client_authenticated
        assert exchange.pkce_verified
        assert pkce_s256_challenge(exchange.form["code_verifier"]) == authorize["code_challenge"]


def test_a_code_issued_for_another_pkce_challenge_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider
):
    """An injected code (bound to an attacker's verifier) fails PKCE at the token endpoint."""
    authorize_url = begin_sign_in(browser)
    injected = with_query(authorize_url, code_challenge=pkce_s256_challenge("attacker-verifier-" + "x" * 40))

    response = browser.get(visit_provider(injected))

    [exchange] = provider.token_requests
    assert exchange.status == 400 and not exchange.pkce_verified
    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


# --- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["forged-state", None], ids=["wrong-state", "missing-state"])
def test_a_callback_with_a_wrong_or_missing_state_is_refused_before_any_token_exchange(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider, state: str | None
):
    callback = visit_provider(begin_sign_in(browser))

    response = browser.get(with_query(callback, state=state))

    assert provider.token_requests == []
    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


def test_a_callback_without_a_sign_in_started_in_this_browser_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider
):
    """Login CSRF: a code and state from someone else's sign-in do not sign this browser in."""
    callback = visit_provider(begin_sign_in(oidc_app.test_client()))

    response = browser.get(callback)

    assert provider.token_requests == []
    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


# --- the ID token -----------------------------------------------------------------------------


def _expired(now: int) -> dict[str, Any]:
    return {"iat": now - 3600, "exp": now - ID_TOKEN_LEEWAY_S - 60}


ID_TOKEN_FAULTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "wrong-nonce": lambda now: {"nonce": "not-the-nonce-that-was-sent"},
    "missing-nonce": lambda now: {"nonce": OMIT},
    "wrong-audience": lambda now: {"aud": "another-client"},
    "wrong-audience-naming-us-as-azp": lambda now: {"aud": "another-client", "azp": CLIENT_ID},
    "wrong-issuer": lambda now: {"iss": "https://evil.example"},
    "expired": _expired,
    "issued-in-the-future": lambda now: {"iat": now + 3600, "nbf": now + 3600, "exp": now + 7200},
    "missing-subject": lambda now: {"sub": OMIT},
}


@pytest.mark.parametrize("fault", list(ID_TOKEN_FAULTS))
def test_a_faulty_id_token_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider, fault: str
):
    provider.set_next_id_token(ID_TOKEN_FAULTS[fault](int(time.time())))

    response = sign_in(browser)

    [exchange] = provider.token_requests
    assert exchange.status == 200
    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


def test_an_id_token_signed_by_a_key_outside_the_providers_jwks_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider
):
    impostor_key = RSAKey.generate_key(2048, parameters={"kid": "fake-oidc-key"})
    provider.set_next_id_token({}, signing_key=impostor_key)

    response = sign_in(browser)

    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


def test_a_discovery_document_naming_another_issuer_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider
):
    """OIDC Discovery 4.3: the advertised issuer must be the configured one, even if tokens agree."""
    provider.advertised_issuer = "https://other-issuer.example"
    provider.set_next_id_token({"iss": "https://other-issuer.example"})

    response = sign_in(browser)

    assert_refused(oidc_app, browser, response, SIGN_IN_FAILED)


@pytest.mark.parametrize("email_verified", [False, OMIT, "true"], ids=["false", "missing", "string-true"])
def test_an_unverified_email_is_refused(
    oidc_app: Flask, browser: FlaskClient, provider: FakeOIDCProvider, email_verified: object
):
    provider.set_next_id_token({"email_verified": email_verified})

    response = sign_in(browser)

    assert_refused(oidc_app, browser, response, EMAIL_NOT_VERIFIED)


# --- next URL ---------------------------------------------------------------------------------

OFF_SITE_NEXT_URLS = [
    "//evil.example",
    "https://evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "\\\\evil.example",
    "http:/evil.example",
]


@pytest.mark.parametrize("next_url", OFF_SITE_NEXT_URLS)
def test_an_off_site_next_url_falls_back_to_the_dashboard(
    oidc_app: Flask, browser: FlaskClient, next_url: str
):
    response = sign_in(browser, next_url=next_url)

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert session_user_id(browser) is not None


@pytest.mark.parametrize("next_url", OFF_SITE_NEXT_URLS)
def test_safe_next_url_refuses_off_site_targets(next_url: str):
    assert safe_next_url(next_url) is None


@pytest.mark.parametrize("next_url", ["/dashboard", "/interviews/abc?tab=feedback", "/settings#keys"])
def test_safe_next_url_keeps_paths_on_this_site(next_url: str):
    assert safe_next_url(next_url) == next_url


# --- accounts ---------------------------------------------------------------------------------


def test_a_second_sign_in_of_the_same_subject_reuses_the_account(
    oidc_app: Flask, provider: FakeOIDCProvider
):
    assert sign_in(oidc_app.test_client()).status_code == 302
    [first] = all_users(oidc_app)

    provider.email = "new-address@example.test"
    second_browser = oidc_app.test_client()
    assert sign_in(second_browser).status_code == 302

    [same] = all_users(oidc_app)
    assert same.id == first.id
    assert same.email == "new-address@example.test"
    assert session_user_id(second_browser) == first.id


def test_another_subject_with_the_same_email_gets_its_own_account(
    oidc_app: Flask, provider: FakeOIDCProvider
):
    assert sign_in(oidc_app.test_client()).status_code == 302
    provider.subject = "subject-2"
    assert sign_in(oidc_app.test_client()).status_code == 302

    first, second = all_users(oidc_app)
    assert first.email == second.email
    assert {first.subject, second.subject} == {"subject-1", "subject-2"}
    assert first.id != second.id


# --- logout -----------------------------------------------------------------------------------


def test_logout_is_post_only_and_needs_the_csrf_token(oidc_app: Flask, browser: FlaskClient):
    assert sign_in(browser).status_code == 302
    [user] = all_users(oidc_app)

    assert browser.get("/logout").status_code == 405
    assert browser.post("/logout").status_code == 400
    assert browser.get("/dashboard").status_code == 200
    assert all_users(oidc_app)[0].session_epoch == user.session_epoch

    token = csrf_token_from(browser.get("/dashboard").get_data(as_text=True))
    response = browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert session_user_id(browser) is None
    assert browser.get("/dashboard").status_code == 302
    assert all_users(oidc_app)[0].session_epoch == user.session_epoch + 1


def test_a_cookie_replayed_after_logout_is_refused(oidc_app: Flask, browser: FlaskClient):
    assert sign_in(browser).status_code == 302
    copied_cookie = browser.get_cookie("session").value
    replaying = oidc_app.test_client()
    replaying.set_cookie("session", copied_cookie)
    assert replaying.get("/dashboard").status_code == 200

    token = csrf_token_from(browser.get("/dashboard").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302

    replayed_page = replaying.get("/dashboard")
    assert replayed_page.status_code == 302
    assert urlsplit(replayed_page.headers["Location"]).path == "/login"
    late_replay = oidc_app.test_client()
    late_replay.set_cookie("session", copied_cookie)
    assert late_replay.get("/settings").status_code == 302


# --- configuration ----------------------------------------------------------------------------


def test_google_is_the_default_issuer_found_by_discovery(app_config: dict, monkeypatch):
    """Without OIDC_ISSUER the client asks Google's discovery document (intercepted: no network)."""
    requested_urls: list[str] = []

    def refuse_to_leave_the_machine(_session, prepared_request, **_kwargs):
        requested_urls.append(prepared_request.url)
        raise requests.ConnectionError("tests never reach Google")

    monkeypatch.setattr(requests.Session, "send", refuse_to_leave_the_machine)
    app_config.update(AUTH_MODE="oidc", OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET)
    google_app = create_app(app_config)
    try:
        browser = google_app.test_client()
        page = browser.get("/login")
        assert page.status_code == 200
        assert "Sign in with Google" in page.get_data(as_text=True)
        assert browser.get("/login", query_string={"go": 1}).status_code == 502
        assert requested_urls == [f"{GOOGLE_ISSUER}/.well-known/openid-configuration"]
    finally:
        google_app.extensions["store"].dispose()


def test_an_unreachable_provider_answers_502_without_signing_in(app_config: dict):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app_config.update(
        AUTH_MODE="oidc",
        OIDC_ISSUER=f"http://127.0.0.1:{closed_port}",
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    unreachable_app = create_app(app_config)
    try:
        browser = unreachable_app.test_client()
        response = browser.get("/login", query_string={"go": 1})
        assert response.status_code == 502
        assert "could not be reached" in response.get_data(as_text=True)
        assert session_user_id(browser) is None
    finally:
        unreachable_app.extensions["store"].dispose()


# --- local mode -------------------------------------------------------------------------------


def test_without_an_oidc_client_the_app_runs_in_local_mode(app_config: dict, caplog):
    app_config.update(AUTH_MODE="", OIDC_CLIENT_ID="", OIDC_CLIENT_SECRET="")
    with caplog.at_level(logging.WARNING):
        local_app = create_app(app_config)
    try:
        assert any(
            record.levelno == logging.WARNING and "local mode" in record.getMessage()
            for record in caplog.records
        )
        assert "oidc_client" not in local_app.extensions
        browser = local_app.test_client()

        dashboard = browser.get("/dashboard")
        html = dashboard.get_data(as_text=True)
        assert dashboard.status_code == 200
        assert "Local mode: single local user, no sign-in." in html
        assert "Sign out" not in html and "Sign in" not in html

        login = browser.get("/login")
        assert login.status_code == 302 and login.headers["Location"] == "/dashboard"
        assert browser.get("/login", query_string={"go": 1}).headers["Location"] == "/dashboard"
        assert browser.get("/auth/callback?code=x&state=y").status_code == 404
        [user] = all_users(local_app)
        assert (user.issuer, user.subject) == ("local", "local-user")
    finally:
        local_app.extensions["store"].dispose()


def test_oidc_mode_logs_no_local_mode_warning_and_shows_no_banner(
    app_config: dict, provider: FakeOIDCProvider, caplog
):
    app_config.update(
        AUTH_MODE="", OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET
    )
    with caplog.at_level(logging.WARNING):
        oidc_app = create_app(app_config)
    try:
        assert not any("local mode" in record.getMessage() for record in caplog.records)
        landing = oidc_app.test_client().get("/")
        assert "Local mode" not in landing.get_data(as_text=True)
        assert oidc_app.test_client().get("/dashboard").status_code == 302
    finally:
        oidc_app.extensions["store"].dispose()


def _settings(auth_mode: str, client_id: str = "", client_secret: str = "") -> Settings:
    return Settings(
        _env_file=None, auth_mode=auth_mode, oidc_client_id=client_id, oidc_client_secret=client_secret
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "mockflow.example"])
def test_implied_local_mode_refuses_a_non_loopback_address(host: str):
    with pytest.raises(ConfigError, match="AUTH_MODE=local"):
        check_local_mode_binding(_settings(""), [host])


def test_implied_local_mode_names_the_exposed_address_among_several():
    with pytest.raises(ConfigError, match="0.0.0.0"):
        check_local_mode_binding(_settings(""), ["127.0.0.1", "0.0.0.0"])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_implied_local_mode_accepts_loopback_addresses(host: str):
    check_local_mode_binding(_settings(""), [host])


def test_explicit_auth_mode_local_may_bind_any_address():
    check_local_mode_binding(_settings("local"), ["0.0.0.0", "::"])


def test_a_configured_oidc_client_may_bind_any_address():
    check_local_mode_binding(_settings("", CLIENT_ID, CLIENT_SECRET), ["0.0.0.0"])
