"""chain links: the hash chains of the upstream streams, checked before a record is applied"""

from shared.migrations import steps

revision: str = "disposition_0008"
down_revision: str | None = "disposition_0007"
upgrade, downgrade, shared_steps = steps.revision(steps.chain_links)
