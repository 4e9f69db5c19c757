"""Alembic environment shared by the three services (see shared/platform/db.py: alembic_config)."""

from alembic import context

config = context.config
target_metadata = config.attributes["target_metadata"]
connection = config.attributes.get("connection")


def render_item(type_, obj, autogen_context):
    """Write our column types as plain SQLAlchemy types, so revisions don't import app code."""
    from shared.platform.db import UtcDateTime

    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    from sqlalchemy import create_engine

    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as fresh:
        run(fresh)
