"""idempotency keys"""

from shared.migrations import steps

revision: str = "status_0002"
down_revision: str | None = "status_0001"
upgrade, downgrade, shared_steps = steps.revision(steps.idempotency_keys)
