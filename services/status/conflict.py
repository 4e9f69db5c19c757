"""The record of one armed conflict (pure; no I/O): its conflict-level facts, what they say at
a date, and which new facts it refuses (docs/legal-basis.md, "Conflict-level facts").

Every fact takes effect at its own date. The beginning of a conflict is its earliest
CONFLICT_INTERNATIONAL fact; no fact of the conflict may be dated before it, and no fact at all
before the Geneva Conventions (1949-08-12). Hostilities cease and resume per party: a fact naming
a state concerns hostilities with that party, one naming none concerns every party."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.contracts.status import DEFAULT_CONFLICT, ConflictFact, ConflictFactKind
from shared.platform.errors import DomainConflict

# The four Geneva Conventions were adopted on this day; no fact they govern can be older.
GENEVA_CONVENTIONS = datetime(1949, 8, 12, tzinfo=UTC)

HOSTILITIES = (ConflictFactKind.HOSTILITIES_CEASED, ConflictFactKind.HOSTILITIES_RESUMED)


class ConflictFactRefused(ValueError):
    """The fact cannot be true as dated (the API answers 422 with the message)."""


class HostilitiesConflict(DomainConflict):
    """The fact contradicts the state of hostilities already recorded (the API answers 409)."""


@dataclass(frozen=True)
class Entry:
    """One recorded conflict fact: when it takes effect, in which order it was recorded, its event."""

    effective_at: datetime
    order: int  # the conflict stream's version: at the same moment, the later recorded comes after
    event_id: str | None  # None: the fact being proposed, not yet recorded
    fact: ConflictFact

    def describe(self) -> str:
        party = f" {self.fact.state}" if self.fact.state else ""
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"{self.fact.kind.value}{party} dated {day(self.effective_at)}{event}"


def day(moment: datetime) -> str:
    return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.isoformat()


def conflict_of(data: dict) -> str:
    """The conflict of a stored fact (events written before conflicts were named: the default)."""
    return data.get("conflict") or DEFAULT_CONFLICT


@dataclass(frozen=True)
class Hostilities:
    """Whether hostilities stand ceased with each party: `default` for every party not named,
    `parties` for those a fact names; each with the entry that made it so (None: never ceased)."""

    default: Entry | None = None  # a CEASED with every party, unless resumed since
    parties: tuple[tuple[str, Entry | None], ...] = ()  # (state, CEASED entry or None if resumed)

    def ceased_with(self, state: str | None) -> Entry | None:
        """The fact hostilities with `state` stand ceased by (None: they are not ceased). With no
        state: ceased with every party (the fact that ceased them last), or None."""
        named = dict(self.parties)
        if state is not None:
            return named.get(state, self.default)
        if self.default is None or any(entry is None for entry in named.values()):
            return None
        return max((self.default, *named.values()), key=lambda entry: (entry.effective_at, entry.order))

    def ceased_with_any(self) -> bool:
        return self.default is not None or any(entry is not None for _, entry in self.parties)

    def after(self, entry: Entry) -> Hostilities:
        """The state after one CEASED/RESUMED fact; HostilitiesConflict if it cannot follow."""
        fact, when = entry.fact, day(entry.effective_at)
        with_whom = f"with {fact.state}" if fact.state else "with every party"
        if fact.kind is ConflictFactKind.HOSTILITIES_CEASED:
            standing = self.ceased_with(fact.state)
            if standing is not None:
                raise HostilitiesConflict(
                    f"hostilities {with_whom} already stand ceased on {when}, by {standing.describe()}; "
                    "a new cessation needs a HOSTILITIES_RESUMED first"
                )
            if fact.state is None:
                return Hostilities(default=entry)
            return Hostilities(self.default, _set(self.parties, fact.state, entry))
        if fact.state is None:
            if not self.ceased_with_any():
                raise HostilitiesConflict(
                    f"hostilities are not ceased with any party on {when}: there is nothing to resume"
                )
            return Hostilities()
        if self.ceased_with(fact.state) is None:
            raise HostilitiesConflict(f"hostilities {with_whom} are not ceased on {when}: there is nothing to resume")
        return Hostilities(self.default, _set(self.parties, fact.state, None))


def _set(parties: tuple, state: str, entry: Entry | None) -> tuple:
    return tuple(sorted({**dict(parties), state: entry}.items()))


@dataclass(frozen=True)
class ConflictRecord:
    """The recorded facts of one conflict."""

    conflict: str
    entries: tuple[Entry, ...] = ()

    @classmethod
    def of(cls, conflict: str, entries: list[Entry]) -> ConflictRecord:
        mine = [entry for entry in entries if entry.fact.conflict == conflict]
        return cls(conflict, tuple(sorted(mine, key=lambda entry: (entry.effective_at, entry.order))))

    def beginning(self) -> Entry | None:
        """The earliest CONFLICT_INTERNATIONAL fact: the conflict is international from its date."""
        return next((e for e in self.entries if e.fact.kind is ConflictFactKind.CONFLICT_INTERNATIONAL), None)

    def in_force(self, moment: datetime) -> list[Entry]:
        return [entry for entry in self.entries if entry.effective_at <= moment]

    def international_at(self, moment: datetime) -> Entry | None:
        beginning = self.beginning()
        return beginning if beginning is not None and beginning.effective_at <= moment else None

    def acknowledged_at(self, state: str, moment: datetime) -> Entry | None:
        """The first fact acknowledging `state` as a party in force at `moment`."""
        return next(
            (
                entry
                for entry in self.in_force(moment)
                if entry.fact.kind is ConflictFactKind.STATE_ACKNOWLEDGED_AS_PARTY and entry.fact.state == state
            ),
            None,
        )

    def hostilities_at(self, moment: datetime) -> Hostilities:
        hostilities = Hostilities()
        for entry in self.in_force(moment):
            if entry.fact.kind in HOSTILITIES:
                hostilities = hostilities.after(entry)
        return hostilities

    def with_fact(self, entry: Entry) -> ConflictRecord:
        """The record with one more fact, if it can be recorded: ConflictFactRefused (the date
        cannot be right) or HostilitiesConflict (it contradicts the hostilities recorded)."""
        fact, when = entry.fact, day(entry.effective_at)
        if entry.effective_at < GENEVA_CONVENTIONS:
            raise ConflictFactRefused(
                f"{fact.kind.value} dated {when} is before 1949-08-12, when the Geneva Conventions were adopted: "
                "the rules it would feed do not reach that far back"
            )
        beginning = self.beginning()
        if fact.kind is ConflictFactKind.CONFLICT_INTERNATIONAL:
            if beginning is None or entry.effective_at < beginning.effective_at:
                earlier = [e for e in self.entries if e.effective_at < entry.effective_at]
                if earlier:
                    raise ConflictFactRefused(
                        f"the conflict {self.conflict!r} cannot begin on {when}: facts already recorded for it "
                        f"would fall before its beginning ({'; '.join(e.describe() for e in earlier)})"
                    )
        elif beginning is None:
            if fact.kind in HOSTILITIES:
                raise ConflictFactRefused(
                    f"{fact.kind.value} needs the beginning of the conflict {self.conflict!r} first: no "
                    "CONFLICT_INTERNATIONAL fact is recorded for it, so there are no hostilities to cease or resume"
                )
        elif entry.effective_at < beginning.effective_at:
            raise ConflictFactRefused(
                f"{fact.kind.value} dated {when} is before the beginning of the conflict {self.conflict!r} "
                f"on {day(beginning.effective_at)} ({beginning.describe()})"
            )
        record = ConflictRecord.of(self.conflict, [*self.entries, entry])
        if fact.kind in HOSTILITIES:
            record.check_hostilities(entry)
        return record

    def check_hostilities(self, new: Entry) -> None:
        """Every CEASED and RESUMED must follow from the ones before it, the new one and every
        later one it would come before."""
        hostilities = Hostilities()
        for entry in self.entries:
            if entry.fact.kind not in HOSTILITIES:
                continue
            try:
                hostilities = hostilities.after(entry)
            except HostilitiesConflict as refused:
                if entry is new:
                    raise
                raise HostilitiesConflict(
                    f"{new.describe()} would come before {entry.describe()}, "
                    f"which could then no longer stand: {refused}"
                ) from None
