"""erased captives: a tombstone for every captive whose key was destroyed"""

from alembic import op

from shared.migrations import steps

revision: str = "intake_0007"
down_revision: str | None = "intake_0006"

shared_steps = (steps.erased_captives,)


def upgrade() -> None:
    steps.upgrade(shared_steps)
    # Captives erased before tombstones existed: their IdentityErased events say so.
    op.execute(
        "INSERT INTO erased_captives (captive_id, erased_at, event_id) "
        "SELECT stream_id, recorded_at, event_id FROM events WHERE event_type = 'IdentityErased'"
    )


def downgrade() -> None:
    steps.downgrade(shared_steps)
