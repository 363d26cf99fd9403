"""Alembic environment: runs against the connection handed over by `store.Store.upgrade`,
or against the configured DATABASE_URL when called by the `alembic` command line."""

from __future__ import annotations

from alembic import context

import store
from config import load_settings

target_metadata = store.Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = store.create_db_engine(load_settings().sqlalchemy_url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
