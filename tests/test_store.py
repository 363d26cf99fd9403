"""Storage foundation: migrations, constraints, cascades and URL handling, on SQLite and PostgreSQL.

Every test that touches a database takes `database_url` (or `empty_database_url`), so it runs on
both backends; the few backend-specific checks pin `backend` by direct parametrization.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

import store
from config import Settings, normalise_database_url
from conftest import postgres_admin_url

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent
CORE_TABLES = {"users", "provider_keys", "interviews"}
MODEL_TABLES = set(store.Base.metadata.tables)
GOOGLE = "https://accounts.google.com"
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/x"
SUPABASE_POOLER_URL = (
    "postgresql://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres?sslmode=require"
)
# Far from UTC, so a value handed back in the session's zone cannot pass for UTC.
NON_UTC_SESSION_TIME_ZONE = "Asia/Kolkata"


class ConnectAttempted(Exception):
    """Raised instead of opening a socket, carrying the arguments the driver would have been given."""

    def __init__(self, connect_params: dict) -> None:
        super().__init__("connection attempt intercepted")
        self.connect_params = connect_params


@pytest.fixture
def test_store(database_url: str) -> Iterator[store.Store]:
    opened = store.Store(database_url)
    yield opened
    opened.dispose()


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, request) -> Iterator[str]:
    """A database of the requested backend with no tables at all (no migration applied)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    # Reuses conftest's reachability rule: skipped locally without PostgreSQL, a failure under CI.
    request.getfixturevalue("migrated_postgres")
    admin_url = postgres_admin_url()
    schema = f"mockflow_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in admin_url else "?"
    try:
        yield normalise_database_url(f"{admin_url}{separator}options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def table_names(opened: store.Store) -> set[str]:
    return set(inspect(opened.engine).get_table_names())


def current_revision(opened: store.Store) -> str | None:
    with opened.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(store.alembic_config()).get_current_head()


def schema_differences(opened: store.Store) -> list:
    """What Alembic autogenerate would still change to make the database match the models."""
    with opened.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, store.Base.metadata)


def add_user(db, subject: str, issuer: str = "https://issuer.test") -> store.User:
    return store.get_or_create_user(db, issuer, subject, f"{subject}@example.test", subject.title())


def add_interview(db, user_id: int, **fields) -> store.Interview:
    interview_id = store.new_interview_id()
    interview = store.Interview(
        id=interview_id,
        user_id=user_id,
        room_name=f"room-{interview_id}",
        track="behavioral",
        length="short",
        role="Backend engineer",
        level="mid",
        **fields,
    )
    db.add(interview)
    db.flush()
    return interview


def row_count(db, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return db.scalar(query)


def test_migrations_apply_from_empty_revert_and_reapply(empty_database_url: str) -> None:
    opened = store.Store(empty_database_url)
    try:
        assert table_names(opened) == set()

        opened.upgrade("head")
        assert CORE_TABLES <= table_names(opened)
        assert MODEL_TABLES <= table_names(opened)
        assert current_revision(opened) == head_revision()
        assert schema_differences(opened) == []

        opened.downgrade("base")
        assert table_names(opened) - {"alembic_version"} == set()
        assert current_revision(opened) is None

        opened.upgrade("head")
        assert MODEL_TABLES <= table_names(opened)
        assert current_revision(opened) == head_revision()
    finally:
        opened.dispose()


def test_migrated_database_has_the_core_tables(test_store: store.Store) -> None:
    assert CORE_TABLES <= table_names(test_store)
    assert current_revision(test_store) == head_revision()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_sqlite_connection_uses_wal_and_foreign_keys(test_store: store.Store) -> None:
    connections = [test_store.engine.connect() for _ in range(3)]
    try:
        for connection in connections:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        for connection in connections:
            connection.close()
    test_store.dispose()
    with test_store.session() as db:
        assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(test_store: store.Store) -> None:
    with pytest.raises(IntegrityError):
        with test_store.session() as db:
            db.add(store.ProviderKey(user_id=987654, name="openai", ciphertext="x", last4="1234"))


def test_deleting_a_user_with_the_orm_removes_keys_and_interviews(test_store: store.Store) -> None:
    with test_store.session() as db:
        user = add_user(db, "leaver")
        kept = add_user(db, "stayer")
        store.put_provider_key(db, user.id, "openai", "ciphertext", "1234")
        store.put_provider_key(db, kept.id, "openai", "ciphertext", "5678")
        add_interview(db, user.id)
        add_interview(db, kept.id)
        user_id, kept_id = user.id, kept.id

    with test_store.session() as db:
        db.delete(store.get_user(db, user_id))

    with test_store.session() as db:
        assert row_count(db, store.ProviderKey, user_id=user_id) == 0
        assert row_count(db, store.Interview, user_id=user_id) == 0
        assert row_count(db, store.ProviderKey, user_id=kept_id) == 1
        assert row_count(db, store.Interview, user_id=kept_id) == 1


def test_raw_sql_delete_of_a_user_cascades_in_the_database(test_store: store.Store) -> None:
    with test_store.session() as db:
        user = add_user(db, "leaver")
        store.put_provider_key(db, user.id, "deepgram", "ciphertext", "1234")
        interview = add_interview(db, user.id)
        store.append_turn(db, interview.id, speaker="candidate", stage="greeting", text="Hello",
                          start_s=0.0, end_s=1.0)
        store.record_stage_event(db, interview.id, "", "greeting", "start", 0.0)
        db.add(store.Feedback(interview_id=interview.id))
        user_id, interview_id = user.id, interview.id

    with test_store.engine.begin() as connection:
        deleted = connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
        assert deleted.rowcount == 1

    with test_store.session() as db:
        assert row_count(db, store.ProviderKey, user_id=user_id) == 0
        assert row_count(db, store.Interview, user_id=user_id) == 0
        assert row_count(db, store.TranscriptTurn, interview_id=interview_id) == 0
        assert row_count(db, store.StageEvent, interview_id=interview_id) == 0
        assert row_count(db, store.Feedback, interview_id=interview_id) == 0


def test_issuer_and_subject_are_unique(test_store: store.Store) -> None:
    with test_store.session() as db:
        db.add(store.User(issuer="https://issuer.test", subject="same", email="a@example.test"))
        db.add(store.User(issuer="https://other.test", subject="same", email="a@example.test"))

    with pytest.raises(IntegrityError):
        with test_store.session() as db:
            db.add(store.User(issuer="https://issuer.test", subject="same", email="b@example.test"))


def test_provider_key_names_are_unique_per_user(test_store: store.Store) -> None:
    with test_store.session() as db:
        first, second = add_user(db, "first"), add_user(db, "second")
        db.add(store.ProviderKey(user_id=first.id, name="openai", ciphertext="a", last4="1111"))
        db.add(store.ProviderKey(user_id=second.id, name="openai", ciphertext="b", last4="2222"))
        first_id = first.id

    with pytest.raises(IntegrityError):
        with test_store.session() as db:
            db.add(store.ProviderKey(user_id=first_id, name="openai", ciphertext="c", last4="3333"))


def test_users_are_keyed_on_issuer_and_subject_not_email(test_store: store.Store) -> None:
    with test_store.session() as db:
        google = store.get_or_create_user(db, GOOGLE, "sub-1", "same@example.test", "A")
        other = store.get_or_create_user(db, "https://login.other.test", "sub-1", "same@example.test", "A")
        again = store.get_or_create_user(db, GOOGLE, "sub-1", "new@example.test", "Ann")
        google_id, other_id, again_id = google.id, other.id, again.id

    assert google_id != other_id
    assert again_id == google_id
    with test_store.session() as db:
        assert row_count(db, store.User) == 2
        refreshed = store.get_user(db, google_id)
        assert (refreshed.email, refreshed.name) == ("new@example.test", "Ann")


def test_put_provider_key_replaces_the_stored_value(test_store: store.Store) -> None:
    with test_store.session() as db:
        user_id = add_user(db, "rotator").id
        store.put_provider_key(db, user_id, "openai", "first-ciphertext", "1111")
    with test_store.session() as db:
        store.put_provider_key(db, user_id, "openai", "second-ciphertext", "2222")

    with test_store.session() as db:
        keys = store.list_provider_keys(db, user_id)
        assert list(keys) == ["openai"]
        assert (keys["openai"].ciphertext, keys["openai"].last4) == ("second-ciphertext", "2222")
        assert row_count(db, store.ProviderKey, user_id=user_id) == 1


def test_get_interview_for_owner_hides_other_users_interviews(test_store: store.Store) -> None:
    with test_store.session() as db:
        owner, stranger = add_user(db, "owner"), add_user(db, "stranger")
        interview_id = add_interview(db, owner.id).id
        owner_id, stranger_id = owner.id, stranger.id

    with test_store.session() as db:
        assert store.get_interview_for_owner(db, interview_id, owner_id).id == interview_id
        assert store.get_interview_for_owner(db, interview_id, stranger_id) is None
        assert store.get_interview_for_owner(db, store.new_interview_id(), owner_id) is None


@pytest.fixture
def store_in_non_utc_session(database_url: str, backend: str) -> Iterator[store.Store]:
    """A store whose PostgreSQL sessions use a non-UTC time zone, as a Supabase project may."""
    opened = store.Store(database_url)
    if backend == "postgresql":

        @event.listens_for(opened.engine, "connect")
        def _use_non_utc_time_zone(dbapi_connection, _record) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET TIME ZONE '{NON_UTC_SESSION_TIME_ZONE}'")

    yield opened
    opened.dispose()


def test_datetimes_come_back_aware_and_in_utc(store_in_non_utc_session: store.Store) -> None:
    started = datetime(2026, 3, 29, 9, 15, 30, tzinfo=timezone(timedelta(hours=-7)))
    with store_in_non_utc_session.session() as db:
        user_id = add_user(db, "clock").id
        interview_id = add_interview(db, user_id, started_at=started).id

    with store_in_non_utc_session.session() as db:
        loaded = store.get_interview(db, interview_id)
        assert loaded.started_at == started
        assert loaded.started_at.utcoffset() == timedelta(0)
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert abs(loaded.created_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_naive_datetimes_are_refused(test_store: store.Store) -> None:
    with test_store.session() as db:
        user_id = add_user(db, "naive").id
    with pytest.raises(StatementError, match="naive datetime"):
        with test_store.session() as db:
            add_interview(db, user_id, started_at=datetime(2026, 1, 1, 12, 0))


def test_database_is_reachable_on_a_working_database(test_store: store.Store) -> None:
    with test_store.sessions() as db:
        assert store.database_is_reachable(db) is True


def test_database_is_not_reachable_on_a_closed_port() -> None:
    unreachable = store.Store(CLOSED_PORT_URL)
    try:
        with unreachable.sessions() as db:
            assert store.database_is_reachable(db) is False
    finally:
        unreachable.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://user:pw@db.test:5432/app", "postgresql+psycopg://user:pw@db.test:5432/app"),
        ("postgresql://user:pw@db.test:5432/app", "postgresql+psycopg://user:pw@db.test:5432/app"),
        ("postgresql+psycopg://user:pw@db.test/app", "postgresql+psycopg://user:pw@db.test/app"),
        ("sqlite:////srv/mockflow/mockflow.db", "sqlite:////srv/mockflow/mockflow.db"),
    ],
)
def test_database_urls_are_normalised_to_psycopg(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
    assert Settings(_env_file=None, database_url=given).sqlalchemy_url == expected


def intercepted_connect_params(engine) -> dict:
    """The keyword arguments the engine would hand to psycopg.connect, without opening a socket."""

    @event.listens_for(engine, "do_connect")
    def _intercept(_dialect, _record, _args, params) -> None:
        raise ConnectAttempted(dict(params))

    with pytest.raises(ConnectAttempted) as attempt:
        engine.connect()
    return attempt.value.connect_params


def test_supabase_pooler_url_gets_a_pgbouncer_safe_psycopg_engine() -> None:
    settings = Settings(_env_file=None, database_url=SUPABASE_POOLER_URL)
    assert settings.sqlalchemy_url == (
        "postgresql+psycopg://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
        "?sslmode=require"
    )

    pooled = store.Store(settings.sqlalchemy_url)
    try:
        assert (pooled.engine.dialect.name, pooled.engine.dialect.driver) == ("postgresql", "psycopg")
        params = intercepted_connect_params(pooled.engine)
    finally:
        pooled.dispose()
    assert "prepare_threshold" in params and params["prepare_threshold"] is None
    assert params["host"] == "aws-0-eu-central-1.pooler.supabase.com"
    assert int(params["port"]) == 6543
    assert (params["user"], params["password"], params["dbname"]) == ("postgres.abcd", "pw", "postgres")
    assert params["sslmode"] == "require"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_scheme_url_works_end_to_end(database_url: str, test_store: store.Store) -> None:
    postgres_form = "postgres://" + database_url.split("://", 1)[1]
    settings = Settings(_env_file=None, database_url=postgres_form)
    via_postgres_scheme = store.Store(settings.sqlalchemy_url)
    try:
        assert via_postgres_scheme.engine.dialect.driver == "psycopg"
        with via_postgres_scheme.session() as db:
            assert store.database_is_reachable(db) is True
            user_id = add_user(db, "scheme").id
    finally:
        via_postgres_scheme.dispose()

    with test_store.session() as db:
        assert store.get_user(db, user_id).subject == "scheme"


MINIMAL_POSTGRES_TEST = '''
import pytest


@pytest.mark.parametrize("backend", ["postgresql"])
def test_needs_postgresql(database_url):
    assert database_url
'''


@pytest.mark.parametrize(
    ("ci", "expected_exit", "expected_outcome"),
    [("true", pytest.ExitCode.TESTS_FAILED, "1 error"), (None, pytest.ExitCode.OK, "1 skipped")],
    ids=["under-ci", "outside-ci"],
)
def test_missing_postgresql_fails_under_ci_and_skips_elsewhere(
    tmp_path: Path, ci: str | None, expected_exit: int, expected_outcome: str
) -> None:
    test_file = tmp_path / "test_minimal_postgres.py"
    test_file.write_text(MINIMAL_POSTGRES_TEST, encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if name not in {"CI", "PYTEST_ADDOPTS"}}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), str(PROJECT_ROOT)])
    env["MOCKFLOW_TEST_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/test"
    if ci is not None:
        env["CI"] = ci

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", str(test_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )

    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == expected_exit, result.stdout + result.stderr
    assert expected_outcome in summary
    if ci == "true":
        assert "skipped" not in summary
        assert "required under CI" in result.stdout
