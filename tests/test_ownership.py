"""Sign-in is required everywhere but the public pages, and one user never reaches another's data.

Routes are checked twice: a fixed list of the routes that exist today, and every rule of the URL
map that is not public, so routes added later (interviews, feedback) are covered without editing
this file. Every route that takes an `<interview_id>` is found in the URL map and must answer 404
to anyone but the interview's owner.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import g
from sqlalchemy import text
from werkzeug.exceptions import NotFound

import store
from app import create_app
from auth_helpers import load_owned_interview, login_required
from conftest import fetch_csrf_token, login_as, make_user

OIDC_CONFIG = {
    "AUTH_MODE": "oidc",
    "OIDC_CLIENT_ID": "x",
    "OIDC_CLIENT_SECRET": "y",
    "OIDC_ISSUER": "http://127.0.0.1:9",
}
PUBLIC_ENDPOINTS = {"static", "pages.landing", "pages.health", "auth.login", "auth.callback", "auth.logout"}
PROTECTED_ROUTES = [
    ("GET", "/dashboard"),
    ("GET", "/settings"),
    ("POST", "/settings/openai"),
    ("POST", "/settings/openai/delete"),
    ("POST", "/settings/test/openai"),
]
NO_SUCH_ID = "does-not-exist"
PAGE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def oidc_app(app_config: dict):
    flask_app = create_app({**app_config, **OIDC_CONFIG})
    yield flask_app
    flask_app.extensions["store"].dispose()


def request_with_token(client, method: str, path: str, token_page: str = "/login"):
    """Send `method` to `path`, with a valid CSRF token when the method changes state."""
    if method == "GET":
        return client.get(path)
    return client.open(path, method=method, data={"csrf_token": fetch_csrf_token(client, token_page)})


def assert_sign_in_required(response, path: str) -> None:
    if path.startswith("/api/"):
        assert response.status_code == 401, path
        assert response.get_json() == {"error": "Please sign in first."}, path
        return
    assert response.status_code == 302, path
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login", path
    assert parse_qs(location.query)["next"] == [path], path


@pytest.mark.parametrize(("method", "path"), PROTECTED_ROUTES, ids=[f"{m} {p}" for m, p in PROTECTED_ROUTES])
def test_a_protected_route_requires_sign_in(oidc_app, method, path):
    response = request_with_token(oidc_app.test_client(), method, path)

    assert_sign_in_required(response, path)


def test_every_route_that_is_not_public_requires_sign_in(oidc_app):
    client = oidc_app.test_client()
    checked = []
    for rule in oidc_app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        _domain, path = rule.build({argument: NO_SUCH_ID for argument in rule.arguments})
        for method in sorted(rule.methods & set(PAGE_METHODS)):
            assert_sign_in_required(request_with_token(client, method, path), path)
            checked.append((method, rule.endpoint))

    adapter = oidc_app.url_map.bind("localhost")
    listed = {(method, adapter.match(path, method=method)[0]) for method, path in PROTECTED_ROUTES}
    assert listed <= set(checked)


def test_the_json_api_answers_401_instead_of_redirecting(app_config):
    api_app = create_app({**app_config, **OIDC_CONFIG})
    api_app.add_url_rule(
        "/api/test-only/private", endpoint="private", view_func=login_required(lambda: "secret")
    )
    try:
        response = api_app.test_client().get("/api/test-only/private")
    finally:
        api_app.extensions["store"].dispose()

    assert_sign_in_required(response, "/api/test-only/private")


def provider_key_rows(flask_app, user_id: int) -> dict[str, dict]:
    with flask_app.extensions["store"].engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM provider_keys WHERE user_id = :u"), {"u": user_id})
        return {row.name: dict(row._mapping) for row in result}


def save(client, name: str, value: str):
    response = client.post(f"/settings/{name}", data={"value": value, "csrf_token": fetch_csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def two_users(oidc_app):
    """User 1 with three stored values, user 2 with none, each signed in on their own client."""
    first, second = make_user(oidc_app, "ada"), make_user(oidc_app, "grace")
    first_client, second_client = oidc_app.test_client(), oidc_app.test_client()
    login_as(first_client, oidc_app, first)
    login_as(second_client, oidc_app, second)
    values = {
        "openai": "sk-proj-" + secrets.token_hex(16) + "Q7Z9",
        "deepgram": secrets.token_hex(18) + "Jx4W",
        "livekit_url": "wss://ada-private-" + secrets.token_hex(4) + ".livekit.cloud",
    }
    for name, value in values.items():
        save(first_client, name, value)
    return {"first": first, "second": second, "first_client": first_client, "second_client": second_client,
            "values": values}


def test_a_second_user_sees_none_of_the_first_users_keys(oidc_app, two_users):
    page = two_users["second_client"].get("/settings").get_data(as_text=True)

    assert "Q7Z9" not in page
    assert "Jx4W" not in page
    assert two_users["values"]["livekit_url"] not in page
    assert "Stored:" not in page
    own_page = two_users["first_client"].get("/settings").get_data(as_text=True)
    assert "••••Q7Z9" in own_page
    assert two_users["values"]["livekit_url"] in own_page


def test_a_second_users_key_test_does_not_use_the_first_users_keys(two_users):
    response = two_users["second_client"].post(
        "/settings/test/openai", data={"csrf_token": fetch_csrf_token(two_users["second_client"])}
    )

    assert "OpenAI API key is missing. Add it above first." in response.get_data(as_text=True)


def test_a_second_user_changes_and_deletes_only_their_own_rows(oidc_app, two_users):
    second_client = two_users["second_client"]
    first_rows_before = provider_key_rows(oidc_app, two_users["first"])

    save(second_client, "openai", "sk-proj-grace-" + secrets.token_hex(8) + "B2B2")
    assert provider_key_rows(oidc_app, two_users["second"])["openai"]["last4"] == "B2B2"
    for name in ("openai", "deepgram"):
        response = second_client.post(f"/settings/{name}/delete",
                                      data={"csrf_token": fetch_csrf_token(second_client)})
        assert response.status_code == 302

    assert provider_key_rows(oidc_app, two_users["second"]) == {}
    assert provider_key_rows(oidc_app, two_users["first"]) == first_rows_before


def _insert_interview(flask_app, owner_id: int) -> str:
    interview_id = store.new_interview_id()
    with flask_app.extensions["store"].session() as db:
        db.add(store.Interview(id=interview_id, user_id=owner_id, room_name="room-" + interview_id,
                               track="behavioral", length="standard", role="Backend engineer", level="mid"))
    return interview_id


def _load_as(flask_app, user_id: int | None, interview_id: str) -> store.Interview:
    with flask_app.test_request_context():
        g.user = store.get_user(store.get_db(), user_id) if user_id is not None else None
        return load_owned_interview(interview_id)


def interview_routes(flask_app) -> list[tuple[str, str]]:
    """(method, rule) of every route that takes an `<interview_id>`."""
    return sorted(
        (method, rule.rule)
        for rule in flask_app.url_map.iter_rules()
        if "interview_id" in rule.arguments
        for method in rule.methods & set(PAGE_METHODS)
    )


def test_another_users_interview_is_404(oidc_app):
    owner, stranger = make_user(oidc_app, "ada"), make_user(oidc_app, "grace")
    interview_id = _insert_interview(oidc_app, owner)

    assert _load_as(oidc_app, owner, interview_id).id == interview_id
    with pytest.raises(NotFound):
        _load_as(oidc_app, stranger, interview_id)
    with pytest.raises(NotFound):
        _load_as(oidc_app, None, interview_id)
    with pytest.raises(NotFound):
        _load_as(oidc_app, owner, store.new_interview_id())

    stranger_client = oidc_app.test_client()
    login_as(stranger_client, oidc_app, stranger)
    for method, rule in interview_routes(oidc_app):
        path = rule.replace("<interview_id>", interview_id)
        response = request_with_token(stranger_client, method, path, token_page="/settings")
        assert response.status_code == 404, f"{method} {rule}"
        assert interview_id not in response.get_data(as_text=True), f"{method} {rule}"
