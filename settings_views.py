"""Settings: the user's bring-your-own provider keys, stored encrypted, shown masked, tested live."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for

import provider_checks
import store
from auth_helpers import current_user, login_required
from key_vault import FIELDS_BY_NAME, PROVIDER_FIELDS, KeyUnreadable, KeyVault, last4, masked
from security import limiter

bp = Blueprint("settings", __name__)

MAX_VALUE_LENGTH = 2048
URL_FIELDS = {"livekit_url", "llm_base_url", "stt_base_url", "tts_base_url"}
TESTABLE_PROVIDERS = {"livekit": "LiveKit", "openai": "OpenAI", "deepgram": "Deepgram"}


def vault() -> KeyVault:
    return current_app.extensions["key_vault"]


def validate_value(name: str, value: str) -> str | None:
    """The error message for a submitted value, or None when it may be stored."""
    if not value:
        return "Enter a value, or use Delete to remove it."
    if len(value) > MAX_VALUE_LENGTH:
        return f"That is too long (at most {MAX_VALUE_LENGTH} characters)."
    if any(ch.isspace() for ch in value) or not value.isprintable():
        return "Remove spaces and line breaks from the value."
    if name in URL_FIELDS:
        parts = urlsplit(value)
        allowed = ("wss", "ws", "https", "http") if name == "livekit_url" else ("https", "http")
        if parts.scheme not in allowed or not parts.hostname:
            example = "wss://your-project.livekit.cloud" if name == "livekit_url" else "https://host/v1"
            return f"Enter a full URL such as {example}."
    return None


def decrypted_values(user_id: int) -> tuple[dict[str, str], list[str]]:
    """The user's readable values, and the names of stored values that must be re-entered."""
    values: dict[str, str] = {}
    unreadable: list[str] = []
    for name, row in store.list_provider_keys(store.get_db(), user_id).items():
        try:
            values[name] = vault().decrypt(user_id, row.ciphertext)
        except KeyUnreadable:
            unreadable.append(name)
    return values, unreadable


def _field_views(user_id: int) -> list[dict]:
    rows = store.list_provider_keys(store.get_db(), user_id)
    views = []
    for field in PROVIDER_FIELDS:
        row = rows.get(field.name)
        shown, needs_reentry = "", False
        if row is not None:
            # Secrets are decrypted too, only to tell a readable key from a tampered or misplaced one.
            try:
                plaintext = vault().decrypt(user_id, row.ciphertext)
                shown = masked(row.last4) if field.secret else plaintext
            except KeyUnreadable:
                needs_reentry = True
        views.append({"field": field, "stored": row is not None, "shown": shown, "needs_reentry": needs_reentry})
    return views


def _render(status: int = 200, errors: dict[str, str] | None = None, check: dict | None = None):
    user = current_user()
    return (
        render_template(
            "settings.html",
            fields=_field_views(user.id),
            errors=errors or {},
            check=check,
            providers=TESTABLE_PROVIDERS,
        ),
        status,
    )


@bp.get("/settings")
@login_required
def show():
    return _render()


@bp.post("/settings/<name>")
@login_required
@limiter.limit("60 per minute")
def put(name: str):
    """Store or replace one value; a bad value changes nothing and is explained next to its field."""
    if name not in FIELDS_BY_NAME:
        abort(404)
    value = request.form.get("value", "").strip()
    error = validate_value(name, value)
    if error:
        return _render(400, errors={name: error})
    user = current_user()
    db = store.get_db()
    store.put_provider_key(db, user.id, name, vault().encrypt(user.id, value), last4(value))
    db.commit()
    flash(f"{FIELDS_BY_NAME[name].label} saved.")
    return redirect(url_for("settings.show"))


@bp.post("/settings/<name>/delete")
@login_required
def delete(name: str):
    if name not in FIELDS_BY_NAME:
        abort(404)
    db = store.get_db()
    if store.delete_provider_key(db, current_user().id, name):
        db.commit()
        flash(f"{FIELDS_BY_NAME[name].label} deleted.")
    return redirect(url_for("settings.show"))


@bp.post("/settings/test/<provider>")
@login_required
@limiter.limit("10 per minute")
def test_provider(provider: str):
    """Make the smallest real call to the provider with the stored values and say what happened."""
    if provider not in TESTABLE_PROVIDERS:
        abort(404)
    values, unreadable = decrypted_values(current_user().id)
    result = provider_checks.check_provider(provider, values, unreadable)
    check = {"provider": provider, "title": TESTABLE_PROVIDERS[provider], "ok": result.ok, "message": result.message}
    return _render(200, check=check)


def _register_cli(app: Flask) -> None:
    @app.cli.group("keys")
    def keys_group() -> None:
        """Encrypted provider keys."""

    @keys_group.command("rotate")
    def rotate_command() -> None:
        """Re-encrypt every stored value under the first key of KEY_ENCRYPTION_KEYS."""
        key_vault: KeyVault = app.extensions["key_vault"]
        rotated = unreadable = 0
        with app.extensions["store"].session() as db:
            for row in store.all_provider_keys(db):
                try:
                    row.ciphertext = key_vault.rotate(row.user_id, row.ciphertext)
                    rotated += 1
                except KeyUnreadable:
                    unreadable += 1
        click.echo(f"re-encrypted {rotated} values; {unreadable} could not be read and were left as they are")


def init_app(app: Flask) -> None:
    """Create the key vault from the settings and register the Settings routes and CLI."""
    app.extensions["key_vault"] = KeyVault(app.config["SETTINGS"].encryption_keys)
    app.register_blueprint(bp)
    _register_cli(app)
