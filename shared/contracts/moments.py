"""Times as the contracts carry them: ISO 8601 strings with a zone (RFC 3339), and nothing else.

Pydantic's lax datetime parsing reads a number, or a string of digits such as "6" or
"1700000000", as Unix time: a request saying `"occurred_at": "6"` would record a fact of
1970-01-01T00:00:06Z. A time that is not written as a time is refused here instead, in request
bodies and in event envelopes alike.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

# The zone is optional here only so that a time without one gets pydantic's own answer ("should
# have timezone info"): AwareDatetime refuses it next.
ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?")
NOT_A_TIME = "a time must be an ISO 8601 string with a zone, e.g. 2025-01-11T09:00:00Z, not {!r}"


def iso_8601_only(value: Any) -> Any:
    if isinstance(value, datetime):  # made in Python, not parsed
        return value
    if isinstance(value, str) and ISO_8601.fullmatch(value):
        return value
    raise ValueError(NOT_A_TIME.format(value if not isinstance(value, str) else value[:40]))


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(iso_8601_only)]
