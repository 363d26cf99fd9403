"""CSRF on every state-changing route, forms and JSON alike.

The routes are read from the app's URL map, so a route added later is covered without editing this
file. Path arguments are filled with an id that matches nothing, so a request that passes the CSRF
check ends in a harmless 404 or validation error instead of changing anything.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from app import create_app
from conftest import fetch_csrf_token

STATE_CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
NO_SUCH_ID = "does-not-exist"
CSRF_MESSAGE = "Your form expired or was sent from elsewhere. Reload and try again."
FLASK_WTF_REASONS = ("The CSRF token is missing", "The CSRF token is invalid", "The CSRF session token")


def state_changing_routes(flask_app) -> list[tuple[str, str]]:
    """(method, path) for every rule that accepts a state-changing method, path arguments filled in."""
    routes = []
    for rule in flask_app.url_map.iter_rules():
        _domain, path = rule.build({argument: NO_SUCH_ID for argument in rule.arguments})
        for method in STATE_CHANGING_METHODS:
            if method in rule.methods:
                routes.append((method, path))
    return sorted(routes)


def _routes_of_a_throwaway_app() -> list[tuple[str, str]]:
    """Parametrization happens at collection time, before any fixture exists."""
    listing_app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "INSTANCE_PATH": Path(tempfile.gettempdir()) / "mockflow-route-listing",
            "SECRET_KEY": "route-listing-only",
            "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "AUTH_MODE": "local",
        }
    )
    try:
        return state_changing_routes(listing_app)
    finally:
        listing_app.extensions["store"].dispose()


ROUTES = _routes_of_a_throwaway_app()
ROUTE_PARAMS = [pytest.param(method, path, id=f"{method} {path}") for method, path in ROUTES]


def assert_refused_by_csrf(response, expect_json: bool, variant: str) -> None:
    assert response.status_code == 400, variant
    body = response.get_data(as_text=True)
    if expect_json:
        assert response.get_json() == {"error": CSRF_MESSAGE}, variant
    else:
        assert CSRF_MESSAGE in body, variant
    for reason in FLASK_WTF_REASONS:
        assert reason not in body, variant


def test_the_route_list_matches_the_app_and_holds_the_known_routes(app):
    assert ROUTES == state_changing_routes(app)
    known = {
        ("POST", "/logout"),
        ("POST", f"/settings/{NO_SUCH_ID}"),
        ("POST", f"/settings/{NO_SUCH_ID}/delete"),
        ("POST", f"/settings/test/{NO_SUCH_ID}"),
    }
    assert known <= set(ROUTES)


def test_no_state_changing_route_also_answers_get(app):
    for rule in app.url_map.iter_rules():
        if set(STATE_CHANGING_METHODS) & rule.methods:
            assert "GET" not in rule.methods, rule.rule


def _other_sessions_token(app) -> str:
    return fetch_csrf_token(app.test_client())


REFUSED_REQUESTS = {
    "form-without-token": lambda app, client: {"data": {"value": "x"}},
    "form-with-forged-token": lambda app, client: {"data": {"value": "x", "csrf_token": "forged"}},
    "form-with-other-sessions-token": lambda app, client: {
        "data": {"value": "x", "csrf_token": _other_sessions_token(app)}
    },
    "json-without-header": lambda app, client: {"json": {"value": "x"}},
    "json-with-forged-header": lambda app, client: {
        "json": {"value": "x"}, "headers": {"X-CSRFToken": "forged"}
    },
    "json-with-other-sessions-header": lambda app, client: {
        "json": {"value": "x"}, "headers": {"X-CSRFToken": _other_sessions_token(app)}
    },
    "json-with-token-only-in-body": lambda app, client: {
        "json": {"value": "x", "csrf_token": _other_sessions_token(app)}
    },
}


@pytest.mark.parametrize(("method", "path"), ROUTE_PARAMS)
def test_a_request_without_a_valid_token_is_refused(app, client, method, path):
    fetch_csrf_token(client)
    for variant, make_request in REFUSED_REQUESTS.items():
        response = client.open(path, method=method, **make_request(app, client))

        expect_json = variant.startswith("json") or path.startswith("/api/")
        assert_refused_by_csrf(response, expect_json, variant)


@pytest.mark.parametrize(("method", "path"), ROUTE_PARAMS)
def test_a_valid_token_passes_in_a_form_field_or_a_json_header(client, method, path):
    accepted_requests = {
        "form-field": lambda token: {"data": {"csrf_token": token}},
        "json-X-CSRFToken": lambda token: {"json": {}, "headers": {"X-CSRFToken": token}},
        "json-X-CSRF-Token": lambda token: {"json": {}, "headers": {"X-CSRF-Token": token}},
    }

    for variant, make_request in accepted_requests.items():
        # A fresh token each time: a route such as /logout ends the session it was issued in.
        response = client.open(path, method=method, **make_request(fetch_csrf_token(client)))

        assert CSRF_MESSAGE not in response.get_data(as_text=True), variant


def test_a_refused_request_changes_nothing(app, client):
    fetch_csrf_token(client)

    response = client.post("/settings/openai", data={"value": "sk-would-be-stored-1234"})

    assert response.status_code == 400
    with app.extensions["store"].engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM provider_keys")).scalar_one() == 0
