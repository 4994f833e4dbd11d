"""Alembic environment for the record store.

``RecordStore.open`` runs the migrations itself and hands Alembic its open connection through
``config.attributes["connection"]`` (inside a transaction it has already begun). Without a
connection, the URL comes from the ``sqlalchemy.url`` option, which also serves offline
(``--sql``) runs.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from codeclab.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "offline migrations need the sqlalchemy.url option set to a database URL"
        )
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database for the migrations: pass a connection in "
            "config.attributes['connection'] or set the sqlalchemy.url option"
        )
    from codeclab.storage.records import create_records_engine

    engine = create_records_engine(url)
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
