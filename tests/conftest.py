"""Shared fixtures: an app on SQLite or PostgreSQL, its client and CLI runner, and sign-in helpers.

The `backend` fixture is parametrized over SQLite and PostgreSQL, so any test that uses `app`
runs on both. PostgreSQL comes from MOCKFLOW_TEST_DATABASE_URL (default: this machine's server);
each test run works in its own schema, dropped at the end. Under CI a missing PostgreSQL fails.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

import store
from app import create_app
from config import normalise_database_url
from browser_fixtures import (  # noqa: F401  (fixtures shared by the browser tests)
    browser,
    browser_app,
    browser_without_microphone_consent,
    context,
    live_server,
    page,
    playwright_instance,
)

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CSRF_INPUT = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def postgres_admin_url() -> str:
    return os.environ.get("MOCKFLOW_TEST_DATABASE_URL", DEFAULT_TEST_POSTGRES)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL, as a SQLAlchemy URL whose search_path points at it."""
    admin_url = postgres_admin_url()
    schema = f"mockflow_test_{uuid.uuid4().hex[:10]}"
    try:
        connection = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {admin_url} is required under CI: {error}")
        pytest.skip(f"PostgreSQL at {admin_url} is not reachable (set MOCKFLOW_TEST_DATABASE_URL): {error}")
    with connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in admin_url else "?"
    url = f"{admin_url}{separator}options=-csearch_path%3D{schema}"
    try:
        yield normalise_database_url(url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def migrated_postgres(postgres_schema_url: str) -> Iterator[str]:
    """The PostgreSQL schema with every migration applied once per run."""
    test_store = store.Store(postgres_schema_url)
    test_store.upgrade()
    test_store.dispose()
    yield postgres_schema_url


def _empty_all_tables(database_url: str) -> None:
    test_store = store.Store(database_url)
    with test_store.engine.begin() as connection:
        names = ", ".join(table.name for table in store.Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    test_store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path, request) -> str:
    """A migrated, empty database of the requested backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'mockflow-test.db'}"
        test_store = store.Store(url)
        test_store.upgrade()
        test_store.dispose()
        return url
    url = request.getfixturevalue("migrated_postgres")
    _empty_all_tables(url)
    return url


@pytest.fixture
def app_config(database_url: str, tmp_path) -> dict:
    """Settings for a test app in local mode; tests adjust it before asking for `app`."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": tmp_path / "instance",
        "SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "AUTH_MODE": "local",
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def app(app_config: dict):
    flask_app = create_app(app_config)
    yield flask_app
    flask_app.extensions["store"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token_from(html: str) -> str:
    """The CSRF token a page handed out (form field or meta tag)."""
    match = CSRF_INPUT.search(html) or CSRF_META.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def fetch_csrf_token(client, path: str = "/settings") -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def make_user(app, subject: str, email: str | None = None, issuer: str = "https://issuer.test") -> int:
    """Create a signed-up user directly in the store and return its id."""
    with app.extensions["store"].session() as db:
        user = store.get_or_create_user(db, issuer, subject, email or f"{subject}@example.test", subject.title())
        return user.id


def login_as(client, app, user_id: int) -> None:
    """Sign a test client in as `user_id`, exactly as the OIDC callback would."""
    with app.extensions["store"].session() as db:
        epoch = store.get_user(db, user_id).session_epoch
    with client.session_transaction() as session:
        session["user_id"] = user_id
        session["epoch"] = epoch
