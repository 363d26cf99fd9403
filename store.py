"""MockFlow storage: the SQLAlchemy 2 schema and every query.

SQLite (in `instance/`, WAL, foreign keys on) is the default; PostgreSQL (Supabase or any) is used
when `DATABASE_URL` is set. The schema is created and changed only through Alembic migrations in
`migrations/`.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import current_app, g
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_PATH = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        # PostgreSQL answers in the session's time zone, which a hosted database may not set to UTC.
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    """A person, identified by OIDC issuer + subject (never by email)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    provider_keys: Mapped[list[ProviderKey]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    interviews: Mapped[list[Interview]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class ProviderKey(Base):
    """One encrypted bring-your-own-key value (or provider setting) of a user."""

    __tablename__ = "provider_keys"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_provider_keys_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str] = mapped_column(Text)
    last4: Mapped[str] = mapped_column(String(8), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="provider_keys")


class Interview(Base):
    """One mock interview: its setup, its lifecycle status and the agent process running it."""

    __tablename__ = "interviews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    room_name: Mapped[str] = mapped_column(String(64), unique=True)
    track: Mapped[str] = mapped_column(String(32))
    length: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    company: Mapped[str] = mapped_column(String(120), default="")
    candidate_name: Mapped[str] = mapped_column(String(120), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="created", index=True)
    stage: Mapped[str] = mapped_column(String(64), default="")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_host: Mapped[str] = mapped_column(String(255), default="")
    worker_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(back_populates="interviews")
    turns: Mapped[list[TranscriptTurn]] = relationship(
        back_populates="interview", cascade="all, delete-orphan", passive_deletes=True,
        order_by="TranscriptTurn.seq",
    )
    stage_events: Mapped[list[StageEvent]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="StageEvent.id"
    )
    feedback: Mapped[Feedback | None] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class TranscriptTurn(Base):
    """One final utterance, written by the agent as soon as it is final."""

    __tablename__ = "transcript_turns"
    __table_args__ = (UniqueConstraint("interview_id", "seq", name="uq_transcript_turns_interview_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interview_id: Mapped[str] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    interview: Mapped[Interview] = relationship(back_populates="turns")


class StageEvent(Base):
    """A stage change and why it happened: tool, timeout, candidate or end."""

    __tablename__ = "stage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interview_id: Mapped[str] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str] = mapped_column(String(64), default="")
    to_stage: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(16))
    elapsed_s: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Feedback(Base):
    """The structured feedback of one interview and the analytics computed beside it."""

    __tablename__ = "feedback"

    interview_id: Mapped[str] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    model: Mapped[str] = mapped_column(String(120), default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    analytics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AppLock(Base):
    """Named rows that writers lock to serialise a decision across processes and hosts."""

    __tablename__ = "app_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


INTERVIEW_SLOTS_LOCK = "interview_slots"
INTERVIEW_FINAL_STATUSES = frozenset({"completed", "interrupted", "failed"})
INTERVIEW_ACTIVE_STATUSES = frozenset({"created", "starting", "live"})


def new_interview_id() -> str:
    """A random, unguessable interview id (also safe in URLs)."""
    return secrets.token_hex(16)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL with the settings each backend needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    # Supabase's pooler (PgBouncer, transaction mode) cannot keep prepared statements.
    return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


class Store:
    """The database of one process: an engine and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error."""
        with self.sessions() as db:
            with db.begin():
                yield db

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to `revision`."""
        from alembic import command

        with self.engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)

    def downgrade(self, revision: str) -> None:
        """Revert Alembic migrations down to `revision` (`base` removes every table)."""
        from alembic import command

        with self.engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection=None) -> AlembicConfig:
    """Alembic's configuration, pointing at `migrations/`, optionally bound to a connection.

    Alembic is imported here and in the migration commands, not with this module: every agent
    process imports the store and never migrates, and Alembic holds about 10 MB in each.
    """
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_PATH))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def database_is_reachable(db: Session) -> bool:
    """True when a trivial query succeeds: the health check's database probe."""
    try:
        db.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def get_or_create_user(db: Session, issuer: str, subject: str, email: str, name: str) -> User:
    """The account keyed by issuer + subject, created on first sign-in, email and name refreshed."""
    user = db.scalar(select(User).where(User.issuer == issuer, User.subject == subject))
    if user is None:
        user = User(issuer=issuer, subject=subject, email=email, name=name)
        db.add(user)
        db.flush()
    else:
        user.email, user.name = email, name
    return user


def get_user(db: Session, user_id: int) -> User | None:
    return db.get(User, user_id)


def bump_session_epoch(db: Session, user_id: int) -> None:
    """End every session of a user: cookies carrying the old epoch are refused afterwards."""
    user = db.get(User, user_id)
    if user is not None:
        user.session_epoch += 1


def list_provider_keys(db: Session, user_id: int) -> dict[str, ProviderKey]:
    rows = db.scalars(select(ProviderKey).where(ProviderKey.user_id == user_id))
    return {row.name: row for row in rows}


def all_provider_keys(db: Session) -> list[ProviderKey]:
    """Every stored key of every user: for re-encryption under a new key."""
    return list(db.scalars(select(ProviderKey).order_by(ProviderKey.id)))


def put_provider_key(db: Session, user_id: int, name: str, ciphertext: str, last4: str) -> None:
    """Insert or replace one stored value."""
    row = db.scalar(
        select(ProviderKey).where(ProviderKey.user_id == user_id, ProviderKey.name == name)
    )
    if row is None:
        db.add(ProviderKey(user_id=user_id, name=name, ciphertext=ciphertext, last4=last4))
    else:
        row.ciphertext, row.last4 = ciphertext, last4


def delete_provider_key(db: Session, user_id: int, name: str) -> bool:
    row = db.scalar(
        select(ProviderKey).where(ProviderKey.user_id == user_id, ProviderKey.name == name)
    )
    if row is None:
        return False
    db.delete(row)
    return True


def get_interview_for_owner(db: Session, interview_id: str, user_id: int) -> Interview | None:
    """The interview if, and only if, it belongs to `user_id`."""
    return db.scalar(
        select(Interview).where(Interview.id == interview_id, Interview.user_id == user_id)
    )


UNSTARTED_INTERVIEW_HOLD = timedelta(minutes=15)


def lock_user_row(db: Session, user_id: int) -> None:
    """Serialise writers for one user on both backends.

    A no-op UPDATE takes PostgreSQL's row lock and SQLite's database write lock at once, so two
    concurrent starts by the same user cannot both see "no interview running".
    """
    db.execute(update(User).where(User.id == user_id).values(id=User.id))


def active_interview(db: Session, user_id: int, now: datetime | None = None) -> Interview | None:
    """The user's interview that is starting or live, or created recently and not yet started."""
    now = now or utcnow()
    return db.scalar(
        select(Interview)
        .where(
            Interview.user_id == user_id,
            (Interview.status.in_(("starting", "live")))
            | ((Interview.status == "created") & (Interview.created_at > now - UNSTARTED_INTERVIEW_HOLD)),
        )
        .limit(1)
    )


class StartRefused(enum.Enum):
    """Why an interview could not be created."""

    USER_BUSY = "user_busy"
    ROOMS_FULL = "rooms_full"
    DAILY_LIMIT = "daily_limit"


def lock_named(db: Session, name: str) -> None:
    """Take the lock row `name` until the transaction ends (same trick as `lock_user_row`).

    The row is created on first use, so a missing row can never make the lock silently lock nothing.
    """
    locked = db.execute(update(AppLock).where(AppLock.name == name).values(touched_at=utcnow()))
    if locked.rowcount == 1:
        return
    dialect_insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(dialect_insert(AppLock).values(name=name).on_conflict_do_nothing())
    db.execute(update(AppLock).where(AppLock.name == name).values(touched_at=utcnow()))


def count_running_interviews(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Interview).where(Interview.status.in_(("starting", "live")))) or 0


def minutes_used_today(db: Session, user_id: int, now: datetime | None = None) -> float:
    """Interview minutes the user has spent since midnight UTC (running interviews count until now)."""
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = db.scalars(
        select(Interview).where(Interview.user_id == user_id, Interview.started_at.is_not(None),
                                Interview.started_at >= midnight)
    )
    return sum(((row.ended_at or now) - row.started_at).total_seconds() for row in rows) / 60


def create_interview_unless_active(
    db: Session,
    *,
    user_id: int,
    interview_id: str,
    status: str = "created",
    max_concurrent: int | None = None,
    daily_minutes_cap: int = 0,
    planned_minutes: float = 0,
    **fields: Any,
) -> Interview | StartRefused:
    """Create an interview, or say why not: one running interview per user, a global cap on
    running interviews, and an optional daily cap of minutes per user.

    The user's row is locked first and the global slots row second, on every path, so concurrent
    starts (several gunicorn workers, several hosts) serialise without deadlocks.
    """
    lock_user_row(db, user_id)
    if active_interview(db, user_id) is not None:
        return StartRefused.USER_BUSY
    if daily_minutes_cap and minutes_used_today(db, user_id) + planned_minutes > daily_minutes_cap:
        return StartRefused.DAILY_LIMIT
    if max_concurrent is not None:
        lock_named(db, INTERVIEW_SLOTS_LOCK)
        if count_running_interviews(db) >= max_concurrent:
            return StartRefused.ROOMS_FULL
    interview = Interview(id=interview_id, user_id=user_id, status=status, **fields)
    db.add(interview)
    db.flush()
    return interview


def get_interview(db: Session, interview_id: str) -> Interview | None:
    """Any interview by id: for the agent and the worker manager, never for a web route."""
    return db.get(Interview, interview_id)


def set_interview_status(
    db: Session, interview_id: str, status: str, reason: str = "", now: datetime | None = None
) -> bool:
    """Move an interview to `status`; a final status, once set, is never overwritten.

    Returns False when the interview had already ended (so the first ending wins, whether the agent,
    the watchdog or the candidate got there first).
    """
    now = now or utcnow()
    values: dict[str, Any] = {"status": status, "heartbeat_at": now}
    if reason:
        values["failure_reason"] = reason
    if status == "live":
        values["started_at"] = now
    if status in INTERVIEW_FINAL_STATUSES:
        values["ended_at"] = now
    result = db.execute(
        update(Interview)
        .where(Interview.id == interview_id, Interview.status.not_in(INTERVIEW_FINAL_STATUSES))
        .values(**values)
    )
    return result.rowcount == 1


def record_worker(db: Session, interview_id: str, *, pid: int, host: str, started_at: datetime) -> None:
    """Remember which process runs the interview, where, and since when (the pid-reuse guard)."""
    db.execute(
        update(Interview)
        .where(Interview.id == interview_id)
        .values(worker_pid=pid, worker_host=host, worker_started_at=started_at, heartbeat_at=utcnow())
    )


def running_interviews_on_host(db: Session, host: str) -> list[Interview]:
    """Interviews whose agent process runs on `host` and that have not ended."""
    return list(
        db.scalars(
            select(Interview).where(Interview.status.in_(("starting", "live")), Interview.worker_host == host)
        )
    )


def touch_heartbeat(db: Session, interview_id: str, stage: str | None = None) -> None:
    """Record that the agent is alive (and, optionally, its current stage)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if stage is not None:
        values["stage"] = stage
    db.execute(update(Interview).where(Interview.id == interview_id).values(**values))


def append_turn(
    db: Session,
    interview_id: str,
    *,
    speaker: str,
    stage: str,
    text: str,
    start_s: float,
    end_s: float,
    words: list[dict[str, Any]] | None = None,
    interrupted: bool = False,
) -> TranscriptTurn:
    """Append one final turn; the agent is the only writer of its interview, so max+1 is safe."""
    last_seq = db.scalar(
        select(func.max(TranscriptTurn.seq)).where(TranscriptTurn.interview_id == interview_id)
    )
    turn = TranscriptTurn(
        interview_id=interview_id,
        seq=(last_seq or 0) + 1,
        speaker=speaker,
        stage=stage,
        text=text,
        start_s=start_s,
        end_s=end_s,
        words=words or [],
        interrupted=interrupted,
    )
    db.add(turn)
    db.flush()
    return turn


def record_stage_event(
    db: Session, interview_id: str, from_stage: str, to_stage: str, reason: str, elapsed_s: float
) -> None:
    """Log a stage change and make `to_stage` the interview's current stage."""
    db.add(StageEvent(interview_id=interview_id, from_stage=from_stage, to_stage=to_stage,
                      reason=reason, elapsed_s=elapsed_s))
    if to_stage:
        db.execute(update(Interview).where(Interview.id == interview_id).values(stage=to_stage))


def list_turns(db: Session, interview_id: str) -> list[TranscriptTurn]:
    return list(
        db.scalars(select(TranscriptTurn).where(TranscriptTurn.interview_id == interview_id).order_by(TranscriptTurn.seq))
    )


def list_stage_events(db: Session, interview_id: str) -> list[StageEvent]:
    return list(db.scalars(select(StageEvent).where(StageEvent.interview_id == interview_id).order_by(StageEvent.id)))


def list_interviews(db: Session, user_id: int) -> list[Interview]:
    return list(
        db.scalars(
            select(Interview).where(Interview.user_id == user_id).order_by(Interview.created_at.desc())
        )
    )


def init_app(app) -> None:
    """Open the app's store, close each request's session, and add `flask db upgrade`."""
    store = Store(app.config["SETTINGS"].sqlalchemy_url)
    app.extensions["store"] = store

    @app.teardown_appcontext
    def _close_session(_exc) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.cli.group("db")
    def db_group() -> None:
        """Database migrations."""

    @db_group.command("upgrade")
    @click.option("--revision", default="head", show_default=True)
    def upgrade_command(revision: str) -> None:
        """Apply the Alembic migrations."""
        store.upgrade(revision)
        click.echo(f"database at {revision}")


def get_db() -> Session:
    """The current request's session (the Flask tutorial's `get_db`)."""
    if "db" not in g:
        g.db = current_app.extensions["store"].sessions()
    return g.db


# ------------------------------------------------------------------ feedback, history and deletion

FEEDBACK_CLAIMABLE_STATUSES = ("pending", "failed")
FEEDBACK_STALE_AFTER = timedelta(minutes=10)
"""A generation still "generating" after this long died with its process and may be claimed again."""


def get_feedback(db: Session, interview_id: str) -> Feedback | None:
    return db.get(Feedback, interview_id)


def claim_feedback_generation(
    db: Session, interview_id: str, *, force: bool = False, now: datetime | None = None
) -> bool:
    """Mark an interview's feedback "generating" if nobody else is generating it; True when claimed.

    The row is inserted when missing, then claimed with one conditional UPDATE, so concurrent callers
    (threads, gunicorn workers, hosts) claim it once on both backends. Pending, failed and stale rows
    are claimable; a ready row only with `force` (regeneration). Claiming clears the old result.
    """
    now = now or utcnow()
    dialect_insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        dialect_insert(Feedback)
        .values(interview_id=interview_id, status="pending", model="", result={}, analytics={}, error="",
                created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["interview_id"])
    )
    claimable = Feedback.status.in_(FEEDBACK_CLAIMABLE_STATUSES) | (
        (Feedback.status == "generating") & (Feedback.updated_at < now - FEEDBACK_STALE_AFTER)
    )
    if force:
        claimable = claimable | (Feedback.status == "ready")
    claimed = db.execute(
        update(Feedback)
        .where(Feedback.interview_id == interview_id, claimable)
        .values(status="generating", result={}, error="", updated_at=now)
    )
    return claimed.rowcount == 1


def save_feedback_analytics(db: Session, interview_id: str, analytics: dict[str, Any]) -> None:
    db.execute(update(Feedback).where(Feedback.interview_id == interview_id).values(analytics=analytics))


def finish_feedback(
    db: Session, interview_id: str, *, status: str, model: str, result: dict[str, Any], error: str
) -> None:
    """Store the outcome of a generation (a no-op when the interview was deleted meanwhile)."""
    db.execute(
        update(Feedback)
        .where(Feedback.interview_id == interview_id)
        .values(status=status, model=model, result=result, error=error, updated_at=utcnow())
    )


def list_interviews_with_feedback(
    db: Session, user_id: int, track: str | None = None
) -> list[tuple[Interview, Feedback | None]]:
    """The user's interviews, newest first, each with its feedback row if any; optionally one track."""
    query = (
        select(Interview, Feedback)
        .outerjoin(Feedback, Feedback.interview_id == Interview.id)
        .where(Interview.user_id == user_id)
        .order_by(Interview.created_at.desc())
    )
    if track:
        query = query.where(Interview.track == track)
    return [(interview, feedback) for interview, feedback in db.execute(query)]


def delete_interview(db: Session, interview_id: str, user_id: int) -> bool:
    """Delete the user's interview; the database cascades to its turns, stage events and feedback."""
    result = db.execute(delete(Interview).where(Interview.id == interview_id, Interview.user_id == user_id))
    return result.rowcount == 1


def delete_user(db: Session, user_id: int) -> bool:
    """Delete a user and, by the database's cascades, their keys, interviews, turns, events and feedback."""
    result = db.execute(delete(User).where(User.id == user_id))
    return result.rowcount == 1
