"""Security headers, session cookie flags, error pages without exception text, the health check and
rate limits."""

from __future__ import annotations

import socket

import pytest
from cryptography.fernet import Fernet
from flask import abort

from app import create_app
from conftest import fetch_csrf_token

SENTINEL = "sentinel-internal-detail-7f3a9c"
OIDC_CONFIG = {
    "AUTH_MODE": "oidc",
    "OIDC_CLIENT_ID": "x",
    "OIDC_CLIENT_SECRET": "y",
    "OIDC_ISSUER": "http://127.0.0.1:9",
}


def csp_directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in directives}


def session_cookie_header(response) -> str:
    (cookie,) = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    return cookie


def cookie_attributes(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


@pytest.fixture
def production_app(app_config: dict):
    flask_app = create_app(
        {
            **app_config,
            **OIDC_CONFIG,
            "MOCKFLOW_ENV": "production",
            "SECRET_KEY": "production-secret-key-for-tests",
            "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
    )
    yield flask_app
    flask_app.extensions["store"].dispose()


@pytest.mark.parametrize("path", ["/", "/dashboard", "/settings", "/api/health", "/no-such-page"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)

    directives = csp_directives(response)
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    permissions = [part.strip() for part in response.headers["Permissions-Policy"].split(",")]
    assert "microphone=(self)" in permissions
    assert "camera=()" in permissions


def test_the_session_cookie_is_httponly_and_samesite_lax_in_development(client):
    cookie = session_cookie_header(client.get("/settings"))

    attributes = cookie_attributes(cookie)
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes


def test_the_session_cookie_is_secure_in_production(production_app):
    client = production_app.test_client()

    response = client.get("/login", base_url="https://mockflow.example")

    attributes = cookie_attributes(session_cookie_header(response))
    assert {"httponly", "samesite=lax", "secure"} <= attributes
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def _raise_unexpected():
    raise RuntimeError(SENTINEL)


def _forbid():
    abort(403, description=SENTINEL)


def _not_found():
    abort(404, description=SENTINEL)


@pytest.fixture
def failing_app(app):
    """The app with test-only routes that fail with a sentinel message (added before any request)."""
    for path, view in (("/test-only/boom", _raise_unexpected), ("/test-only/forbidden", _forbid),
                       ("/test-only/missing", _not_found), ("/api/test-only/boom", _raise_unexpected)):
        app.add_url_rule(path, endpoint=path, view_func=view)
    return app


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/test-only/boom", 500, "Something went wrong on our side. Please try again."),
        ("/test-only/forbidden", 403, "You do not have access to this page."),
        ("/test-only/missing", 404, "There is nothing here."),
    ],
)
def test_error_pages_show_a_plain_message_and_no_exception_text(failing_app, path, status, message):
    response = failing_app.test_client().get(path)

    body = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert message in body
    assert SENTINEL not in body
    assert "Traceback" not in body
    assert "RuntimeError" not in body
    assert "Content-Security-Policy" in response.headers


def test_api_errors_are_json_without_exception_text(failing_app):
    response = failing_app.test_client().get("/api/test-only/boom")

    assert response.status_code == 500
    assert response.get_json() == {"error": "Something went wrong on our side. Please try again."}
    assert SENTINEL not in response.get_data(as_text=True)


def test_health_reports_version_and_database(app, client):
    response = client.get("/api/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": app.config["VERSION"], "database": "ok"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("sign_in", [OIDC_CONFIG, {"AUTH_MODE": "local"}], ids=["oidc", "local"])
def test_health_reports_an_unreachable_database(tmp_path, sign_in):
    unreachable_app = create_app(
        {
            **sign_in,
            "TESTING": True,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{_closed_port()}/mockflow",
            "INSTANCE_PATH": tmp_path / "instance",
            "SECRET_KEY": "health-check-secret",
            "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
    )
    try:
        response = unreachable_app.test_client().get("/api/health")
    finally:
        unreachable_app.extensions["store"].dispose()

    assert response.status_code == 503
    assert response.get_json() == {
        "status": "degraded",
        "version": unreachable_app.config["VERSION"],
        "database": "unreachable",
    }


@pytest.fixture
def rate_limited_config(app_config: dict) -> dict:
    app_config["RATELIMIT_ENABLED"] = True
    return app_config


def test_key_tests_are_rate_limited(rate_limited_config, client):
    token = fetch_csrf_token(client)

    statuses = [
        client.post("/settings/test/openai", data={"csrf_token": token}).status_code for _ in range(11)
    ]

    assert statuses == [200] * 10 + [429]
    refused = client.post("/settings/test/openai", data={"csrf_token": token})
    assert refused.status_code == 429
    assert "Too many requests. Please wait a minute and try again." in refused.get_data(as_text=True)


def test_sign_in_is_rate_limited(rate_limited_config):
    limited_app = create_app({**rate_limited_config, **OIDC_CONFIG})
    try:
        client = limited_app.test_client()
        statuses = [client.get("/login").status_code for _ in range(21)]
        callback = [client.get("/auth/callback").status_code for _ in range(21)]
    finally:
        limited_app.extensions["store"].dispose()

    assert statuses == [200] * 20 + [429]
    assert callback[-1] == 429
    assert 429 not in callback[:20]
