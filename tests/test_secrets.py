"""Provider keys at rest: Fernet/MultiFernet per user, ciphertext in the database, masked display,
`flask keys rotate`, tampered values, and log redaction."""

from __future__ import annotations

import base64
import logging
import re
import secrets

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text

import security
import settings_views
import store
from app import create_app
from conftest import fetch_csrf_token, make_user
from key_vault import KeyUnreadable, KeyVault

LOCAL_ISSUER = "local"
LOCAL_SUBJECT = "local-user"


def raw_provider_key_rows(app) -> list[dict]:
    """Every provider_keys row exactly as the database holds it, read with plain SQL."""
    with app.extensions["store"].engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM provider_keys ORDER BY id"))
        return [dict(row._mapping) for row in result]


def save_value(client, name: str, value: str):
    token = fetch_csrf_token(client)
    return client.post(f"/settings/{name}", data={"value": value, "csrf_token": token})


def local_user_id(app) -> int:
    return make_user(app, LOCAL_SUBJECT, email="", issuer=LOCAL_ISSUER)


def user_fernet(kek: str, user_id: int) -> Fernet:
    """The documented per-user key: HKDF-SHA256 of the KEK with the user id in `info`."""
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"mockflow provider key v1 user:{user_id}".encode(),
    ).derive(base64.urlsafe_b64decode(kek.encode()))
    return Fernet(base64.urlsafe_b64encode(derived))


# --- KeyVault: Fernet, MultiFernet, per-user binding -------------------------------------------


def test_ciphertext_is_a_fernet_token_under_the_users_derived_key():
    kek = Fernet.generate_key().decode()
    ciphertext = KeyVault([kek]).encrypt(7, "sk-secret-value-1234")

    assert user_fernet(kek, 7).decrypt(ciphertext.encode()) == b"sk-secret-value-1234"
    with pytest.raises(Exception):
        Fernet(kek).decrypt(ciphertext.encode())


def test_first_key_encrypts_and_older_keys_still_decrypt():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    written_before_rotation = KeyVault([old]).encrypt(1, "old-value")
    both = KeyVault([new, old])

    assert both.decrypt(1, written_before_rotation) == "old-value"
    written_now = both.encrypt(1, "new-value")
    assert KeyVault([new]).decrypt(1, written_now) == "new-value"
    with pytest.raises(KeyUnreadable):
        KeyVault([old]).decrypt(1, written_now)


def test_a_value_decrypts_only_for_its_own_user():
    vault = KeyVault([Fernet.generate_key().decode()])
    ciphertext = vault.encrypt(1, "sk-user-one-key")

    assert vault.decrypt(1, ciphertext) == "sk-user-one-key"
    with pytest.raises(KeyUnreadable, match="re-enter this key"):
        vault.decrypt(2, ciphertext)
    with pytest.raises(KeyUnreadable):
        vault.rotate(2, ciphertext)


def test_an_unknown_key_encryption_key_cannot_decrypt():
    ciphertext = KeyVault([Fernet.generate_key().decode()]).encrypt(1, "value")

    with pytest.raises(KeyUnreadable):
        KeyVault([Fernet.generate_key().decode()]).decrypt(1, ciphertext)


def test_a_vault_refuses_missing_or_malformed_key_encryption_keys():
    with pytest.raises(ValueError):
        KeyVault([])
    with pytest.raises(ValueError):
        KeyVault(["not-a-fernet-key"])


# --- At rest and on the page --------------------------------------------------------------------


def test_stored_keys_are_ciphertext_in_the_database(app, client):
    openai_key = "sk-proj-" + secrets.token_urlsafe(32) + "Wq9Z"
    livekit_url = "wss://private-project-" + secrets.token_hex(4) + ".livekit.cloud"
    assert save_value(client, "openai", openai_key).status_code == 302
    assert save_value(client, "livekit_url", livekit_url).status_code == 302

    rows = raw_provider_key_rows(app)
    assert {row["name"] for row in rows} == {"openai", "livekit_url"}
    everything_stored = " ".join(str(value) for row in rows for value in row.values())
    assert openai_key not in everything_stored
    assert openai_key[:-4] not in everything_stored
    assert livekit_url not in everything_stored
    openai_row = next(row for row in rows if row["name"] == "openai")
    assert openai_row["last4"] == "Wq9Z"
    assert app.extensions["key_vault"].decrypt(openai_row["user_id"], openai_row["ciphertext"]) == openai_key


def test_settings_page_shows_secrets_only_by_their_last_four(client):
    openai_key = "sk-proj-" + secrets.token_urlsafe(32) + "Kp3R"
    deepgram_key = secrets.token_hex(20)
    save_response = save_value(client, "openai", openai_key)
    save_value(client, "deepgram", deepgram_key)

    page = client.get("/settings").get_data(as_text=True)
    followed = client.get(save_response.headers["Location"]).get_data(as_text=True)

    for html in (page, followed, save_response.get_data(as_text=True)):
        assert openai_key not in html
        assert openai_key[:-4] not in html
        assert deepgram_key not in html
        assert deepgram_key[:-4] not in html
    assert "••••Kp3R" in page
    assert "••••" + deepgram_key[-4:] in page
    assert re.search(r'<input id="field-openai"[^>]*type="password"', page)


# --- Rotation -------------------------------------------------------------------------------------


@pytest.fixture
def rotation_keys(app_config: dict) -> dict[str, str]:
    """The app runs with KEY_ENCRYPTION_KEYS=new,old, as an operator sets it before rotating."""
    keys = {"old": Fernet.generate_key().decode(), "new": Fernet.generate_key().decode()}
    app_config["KEY_ENCRYPTION_KEYS"] = f"{keys['new']},{keys['old']}"
    return keys


def test_keys_rotate_reencrypts_every_value_under_the_first_key(rotation_keys, app_config, app, runner):
    old_vault = KeyVault([rotation_keys["old"]])
    local_id = local_user_id(app)
    other_id = make_user(app, "bob")
    written = {
        (local_id, "openai"): "sk-local-" + secrets.token_hex(12),
        (local_id, "llm_base_url"): "http://127.0.0.1:11434/v1",
        (other_id, "deepgram"): secrets.token_hex(20),
    }
    with app.extensions["store"].session() as db:
        for (user_id, name), value in written.items():
            store.put_provider_key(db, user_id, name, old_vault.encrypt(user_id, value), value[-4:])
        store.put_provider_key(db, other_id, "openai", "gAAAAAnot-a-real-token", "oken")
    before = {(row["user_id"], row["name"]): row["ciphertext"] for row in raw_provider_key_rows(app)}

    result = runner.invoke(args=["keys", "rotate"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 values; 1 could not be read" in result.output
    after = {(row["user_id"], row["name"]): row["ciphertext"] for row in raw_provider_key_rows(app)}
    assert after[(other_id, "openai")] == before[(other_id, "openai")]
    new_only = KeyVault([rotation_keys["new"]])
    for (user_id, name), value in written.items():
        assert after[(user_id, name)] != before[(user_id, name)]
        assert new_only.decrypt(user_id, after[(user_id, name)]) == value
        with pytest.raises(KeyUnreadable):
            old_vault.decrypt(user_id, after[(user_id, name)])

    new_only_app = create_app({**app_config, "KEY_ENCRYPTION_KEYS": rotation_keys["new"]})
    try:
        with new_only_app.test_request_context():
            values, unreadable = settings_views.decrypted_values(local_id)
        assert values == {
            "openai": written[(local_id, "openai")],
            "llm_base_url": "http://127.0.0.1:11434/v1",
        }
        assert unreadable == []
        page = new_only_app.test_client().get("/settings").get_data(as_text=True)
        assert "http://127.0.0.1:11434/v1" in page
        assert "Re-enter" not in page
    finally:
        new_only_app.extensions["store"].dispose()


# --- Tampered or misplaced ciphertext ------------------------------------------------------------


def _flip_middle_character(_app, ciphertext: str) -> str:
    middle = len(ciphertext) // 2
    replacement = "A" if ciphertext[middle] != "A" else "B"
    return ciphertext[:middle] + replacement + ciphertext[middle + 1:]


def _another_users_ciphertext(app, _ciphertext: str) -> str:
    other_id = make_user(app, "mallory")
    return app.extensions["key_vault"].encrypt(other_id, "sk-mallory-" + secrets.token_hex(8))


@pytest.mark.parametrize("corrupt", [_flip_middle_character, _another_users_ciphertext],
                         ids=["tampered", "another-users"])
def test_an_unreadable_value_asks_to_reenter_it_and_never_fails(app, client, corrupt):
    save_value(client, "openai", "sk-proj-" + secrets.token_hex(16) + "Tm4X")
    save_value(client, "llm_base_url", "http://127.0.0.1:8000/v1")
    with app.extensions["store"].engine.begin() as connection:
        for row in connection.execute(text("SELECT id, ciphertext FROM provider_keys")).all():
            connection.execute(
                text("UPDATE provider_keys SET ciphertext = :c WHERE id = :i"),
                {"c": corrupt(app, row.ciphertext), "i": row.id},
            )

    page = client.get("/settings")
    tested = client.post("/settings/test/openai", data={"csrf_token": fetch_csrf_token(client)})

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("Re-enter this value.") == 2
    assert "••••Tm4X" not in html
    assert "http://127.0.0.1:8000/v1" not in html
    assert tested.status_code == 200
    assert "OpenAI API key could not be read. Re-enter this key." in tested.get_data(as_text=True)


# --- Log redaction --------------------------------------------------------------------------------


class _FormattedRecords(logging.Handler):
    """Collects records as a real handler would write them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def isolated_logger():
    """A third-party-like logger that does not propagate, with its own handler."""
    security.install_log_redaction()
    logger = logging.getLogger(f"vendor.sdk.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = _FormattedRecords()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
DEEPGRAM_LIKE = "3f9a1c0b7e2d4a6f8b1c3e5d7f9a0b2c4d6e8f1a"
SECRET_SHAPES = [
    pytest.param("sk-proj-Ab12Cd34Ef56Gh78Ij90", "sk-proj-Ab12Cd34Ef56Gh78Ij90", id="openai-sk"),
    pytest.param("Authorization: Bearer abcDEF123456ghiJKL", "abcDEF123456ghiJKL", id="bearer"),
    pytest.param("bearer zz99yy88xx77ww66", "zz99yy88xx77ww66", id="bearer-lowercase"),
    pytest.param(JWT, JWT, id="jwt"),
    pytest.param("api_key=qwerty12345asdfg", "qwerty12345asdfg", id="api_key-assignment"),
    pytest.param('{"api-key": "zxcvb98765poiu"}', "zxcvb98765poiu", id="api-key-json"),
    pytest.param(DEEPGRAM_LIKE, DEEPGRAM_LIKE, id="deepgram-40-hex"),
    pytest.param("Token " + DEEPGRAM_LIKE, DEEPGRAM_LIKE, id="deepgram-token-header"),
    pytest.param("postgresql://postgres:hunter2-db-pass@db.example.test:5432/postgres", "hunter2-db-pass",
                 id="password-in-url"),
]


@pytest.mark.parametrize(("logged", "sensitive"), SECRET_SHAPES)
def test_log_redaction_covers_messages_and_arguments_of_any_logger(isolated_logger, logged, sensitive):
    logger, handler = isolated_logger

    logger.info("calling the provider with " + logged + " now")
    logger.warning("calling the provider with %s now", logged)

    assert len(handler.lines) == 2
    for line in handler.lines:
        assert sensitive not in line
        assert "[REDACTED]" in line
        assert line.startswith(logger.name)
        assert "calling the provider with" in line


@pytest.mark.parametrize(("logged", "sensitive"), SECRET_SHAPES)
def test_log_redaction_covers_exception_text(isolated_logger, logged, sensitive):
    logger, handler = isolated_logger

    try:
        raise RuntimeError(f"upstream refused {logged}")
    except RuntimeError:
        logger.exception("request failed")

    (line,) = handler.lines
    assert "Traceback" in line
    assert "RuntimeError: upstream refused" in line
    assert sensitive not in line
    assert "[REDACTED]" in line


def test_a_bad_format_string_is_logged_redacted_instead_of_raising(isolated_logger):
    logger, handler = isolated_logger

    logger.warning("key %s and %s", "sk-proj-Ab12Cd34Ef56Gh78Ij90")

    (line,) = handler.lines
    assert "sk-proj-Ab12Cd34Ef56Gh78Ij90" not in line
    assert "key %s and %s" in line
    assert "[REDACTED]" in line


def test_log_redaction_reaches_the_apps_own_handlers(app, caplog):
    key = "sk-live-" + secrets.token_hex(16)

    with caplog.at_level(logging.INFO):
        app.logger.error("provider said no to %s", key)

    assert caplog.records
    assert key not in caplog.text
    assert "provider said no to [REDACTED]" in caplog.text
