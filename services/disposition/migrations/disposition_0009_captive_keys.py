"""captive keys: the disposition service seals personal data with a key per captive"""

from shared.migrations import steps

revision: str = "disposition_0009"
down_revision: str | None = "disposition_0008"
upgrade, downgrade, shared_steps = steps.revision(steps.captive_keys, steps.erased_captives)
