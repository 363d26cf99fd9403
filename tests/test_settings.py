"""The Settings page: store, replace and delete one value at a time; refuse bad values clearly and
change nothing."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import text

from conftest import fetch_csrf_token
from key_vault import FIELDS_BY_NAME

OPENAI_KEY = "sk-proj-first-key-0000000000001111"
DEEPGRAM_KEY = "0123456789abcdef0123456789abcdef0123dddd"
LIVEKIT_URL = "wss://stored-project.livekit.cloud"


def raw_provider_key_rows(app) -> list[dict]:
    """Every provider_keys row exactly as the database holds it, read with plain SQL."""
    with app.extensions["store"].engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM provider_keys ORDER BY id"))
        return [dict(row._mapping) for row in result]


def rows_by_name(app) -> dict[str, dict]:
    return {row["name"]: row for row in raw_provider_key_rows(app)}


def post_value(client, name: str, data: dict):
    return client.post(f"/settings/{name}", data={**data, "csrf_token": fetch_csrf_token(client)})


def decrypted(app, row: dict) -> str:
    return app.extensions["key_vault"].decrypt(row["user_id"], row["ciphertext"])


def field_form(page: str, name: str) -> str:
    """The HTML of one field's save form, so a message can be checked to sit next to its field."""
    form_start = f'<form method="post" action="/settings/{name}" class="key-form">'
    match = re.search(re.escape(form_start) + ".*?</form>", page, re.S)
    assert match, f"no form for {name}"
    return match.group(0)


@pytest.fixture
def stored(app, client) -> dict[str, dict]:
    """Three values already saved through the page, and their raw rows."""
    for name, value in (("openai", OPENAI_KEY), ("deepgram", DEEPGRAM_KEY), ("livekit_url", LIVEKIT_URL)):
        assert post_value(client, name, {"value": value}).status_code == 302
    return rows_by_name(app)


def test_saving_a_value_redirects_with_a_confirmation(app, client):
    response = post_value(client, "openai", {"value": "  " + OPENAI_KEY + "  "})

    assert response.status_code == 302
    assert response.headers["Location"] == "/settings"
    page = client.get("/settings").get_data(as_text=True)
    assert "OpenAI API key saved." in page
    assert "••••1111" in page
    (row,) = raw_provider_key_rows(app)
    assert decrypted(app, row) == OPENAI_KEY
    assert row["last4"] == "1111"


def test_replacing_one_value_leaves_the_others_untouched(app, client, stored):
    response = post_value(client, "openai", {"value": "sk-proj-second-key-000000000002222"})

    assert response.status_code == 302
    after = rows_by_name(app)
    assert set(after) == {"openai", "deepgram", "livekit_url"}
    assert decrypted(app, after["openai"]) == "sk-proj-second-key-000000000002222"
    assert after["openai"]["last4"] == "2222"
    assert after["openai"]["id"] == stored["openai"]["id"]
    for name in ("deepgram", "livekit_url"):
        assert after[name] == stored[name]
    page = client.get("/settings").get_data(as_text=True)
    assert "••••2222" in page
    assert "••••1111" not in page


def test_deleting_one_value_removes_only_that_row(app, client, stored):
    response = client.post("/settings/openai/delete", data={"csrf_token": fetch_csrf_token(client)})

    assert response.status_code == 302
    after = rows_by_name(app)
    assert set(after) == {"deepgram", "livekit_url"}
    for name in ("deepgram", "livekit_url"):
        assert after[name] == stored[name]
    page = client.get("/settings").get_data(as_text=True)
    assert "OpenAI API key deleted." in page
    assert "••••1111" not in page
    assert "••••dddd" in page


def test_deleting_a_value_that_is_not_stored_changes_nothing(app, client, stored):
    response = client.post("/settings/llm_model/delete", data={"csrf_token": fetch_csrf_token(client)})

    assert response.status_code == 302
    assert rows_by_name(app) == stored


INVALID_SUBMISSIONS = [
    pytest.param("openai", {"value": ""}, "Enter a value, or use Delete to remove it.", id="empty-key"),
    pytest.param("openai", {"value": "   \t "}, "Enter a value, or use Delete to remove it.", id="blank-key"),
    pytest.param("openai", {}, "Enter a value, or use Delete to remove it.", id="missing-field"),
    pytest.param("openai", {"value": "sk-" + "a" * 2046}, "That is too long (at most 2048 characters).",
                 id="oversized-key"),
    pytest.param("deepgram", {"value": "abc def"}, "Remove spaces and line breaks from the value.",
                 id="key-with-space"),
    pytest.param("deepgram", {"value": "abc\ndef"}, "Remove spaces and line breaks from the value.",
                 id="key-with-newline"),
    pytest.param("deepgram", {"value": "abc\x00def"}, "Remove spaces and line breaks from the value.",
                 id="key-with-control-character"),
    pytest.param("livekit_url", {"value": "ftp://project.livekit.cloud"},
                 "Enter a full URL such as wss://your-project.livekit.cloud.", id="livekit-ftp"),
    pytest.param("livekit_url", {"value": "wss://"},
                 "Enter a full URL such as wss://your-project.livekit.cloud.", id="livekit-no-host"),
    pytest.param("livekit_url", {"value": "project.livekit.cloud"},
                 "Enter a full URL such as wss://your-project.livekit.cloud.", id="livekit-no-scheme"),
    pytest.param("livekit_url", {"value": "wss://my project.livekit.cloud"},
                 "Remove spaces and line breaks from the value.", id="livekit-spaces"),
    pytest.param("llm_base_url", {"value": "wss://llm.example/v1"},
                 "Enter a full URL such as https://host/v1.", id="llm-url-websocket"),
    pytest.param("tts_base_url", {"value": "javascript:alert(1)"},
                 "Enter a full URL such as https://host/v1.", id="tts-url-javascript"),
]


@pytest.mark.parametrize(("name", "data", "message"), INVALID_SUBMISSIONS)
def test_an_invalid_value_is_refused_next_to_its_field_and_changes_nothing(
    app, client, stored, name, data, message
):
    response = post_value(client, name, data)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    form = field_form(page, name)
    assert f'id="error-{name}" role="alert">{html.escape(message)}</p>' in form
    assert 'aria-invalid="true"' in form
    assert page.count('role="alert"') == 1
    assert rows_by_name(app) == stored
    submitted_secret = data.get("value", "").strip() if FIELDS_BY_NAME[name].secret else ""
    if submitted_secret:
        assert html.escape(submitted_secret) not in page


def test_an_oversized_request_body_is_refused_and_changes_nothing(app, client, stored):
    response = post_value(client, "openai", {"value": "s" * (6 * 1024 * 1024)})

    assert response.status_code == 413
    assert "That upload is too large." in response.get_data(as_text=True)
    assert rows_by_name(app) == stored


@pytest.mark.parametrize("path", ["/settings/no_such_field", "/settings/no_such_field/delete",
                                  "/settings/test/no_such_provider"])
def test_an_unknown_field_or_provider_is_404_and_changes_nothing(app, client, stored, path):
    response = client.post(path, data={"value": "sk-whatever-1234", "csrf_token": fetch_csrf_token(client)})

    assert response.status_code == 404
    assert rows_by_name(app) == stored


def test_every_field_can_be_saved_and_read_back(app, client):
    values = {
        "livekit_url": "wss://project.livekit.cloud",
        "livekit_api_key": "APIabcdef123456",
        "livekit_api_secret": "livekit-secret-value-000000000000",
        "openai": OPENAI_KEY,
        "deepgram": DEEPGRAM_KEY,
        "llm_base_url": "http://127.0.0.1:11434/v1",
        "llm_model": "llama3.1:8b",
        "stt_base_url": "https://stt.example/v1",
        "stt_model": "whisper-1",
        "tts_base_url": "https://tts.example/v1",
        "tts_model": "kokoro",
        "tts_voice": "af_sky",
    }
    for name, value in values.items():
        assert post_value(client, name, {"value": value}).status_code == 302, name

    rows = rows_by_name(app)
    assert {name: decrypted(app, row) for name, row in rows.items()} == values
    page = client.get("/settings").get_data(as_text=True)
    for name in ("livekit_url", "llm_base_url", "llm_model", "stt_base_url", "tts_voice"):
        assert values[name] in field_form(page, name)
    for name in ("livekit_api_key", "livekit_api_secret", "openai", "deepgram"):
        assert values[name] not in page
        assert "••••" + values[name][-4:] in field_form(page, name)
