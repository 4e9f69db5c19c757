"""Events the intake service publishes on intake.events.v1: the facts about a captive.

Each fact is its own event; the envelope says who recorded it, for which agency, when it
happened (`time`) and when it was recorded (`recordedat`). Every field carries its data tier.

By what they are about: parts.py (what every event is made of), registration.py, facts.py
(the facts recorded after a registration). Every name is importable from here too.
"""

from shared.contracts.intake.facts import *  # noqa: F403
from shared.contracts.intake.parts import *  # noqa: F403
from shared.contracts.intake.registration import *  # noqa: F403
