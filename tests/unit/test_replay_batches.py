"""Replay applies the log in batches (shared/eventstore/rows.py): the rows a batch reads and writes are
held in memory and each changed row is written once at the end. These tests replay streams where
the same rows are updated again and again (one captive's movements, notifications, wishes and
consents; eligibility, risks and statuses arriving out of order) with several batch sizes, and
compare every table with the same events applied one at a time, one transaction each, with the
statements the API and the consumers run."""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from deploy.postgres.cluster import create_database, drop_database
from services.disposition.app import definition as disposition
from services.intake.app import definition as intake
from services.status.app import definition as status
from shared.contracts import EventEnvelope, EventPayload, InvalidEvent, decode, encode
from shared.contracts.access import DataAccessed
from shared.contracts.disposition import (
    CustodyEnded,
    DispositionApproved,
    DispositionCompleted,
    DispositionProposed,
    ExchangeEligibilityChanged,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    PartnerStateClaimRecorded,
    RiskAssessed,
    StateAssuranceRecorded,
)
from shared.contracts.intake import (
    CaptiveRegistered,
    CaptureCardRecorded,
    DisclosureConsentRecorded,
    MedicalAssessed,
    MovementRecorded,
    NotificationSent,
    WishDeclared,
)
from shared.contracts.status import (
    ConflictFactRecorded,
    LegalFindingRecorded,
    RulebookAdopted,
    StatusDetermined,
)
from shared.eventstore import replay as replaying
from shared.eventstore.batched import BatchedRows
from shared.eventstore.rows import LiveRows
from shared.evidence.chain import GENESIS, event_hash
from shared.platform.db import UtcDateTime, create_engine, migrate
from tests.support import registration

Record = namedtuple("Record", "value")
T0 = datetime(2025, 1, 11, 9, tzinfo=UTC)
A, B, C = "CAP-AAAA-AAAA-AAAA", "CAP-BBBB-BBBB-BBBB", "CAP-CCCC-CCCC-CCCC"
PROVENANCE = {
    "interviewer": "ICRC delegate",
    "interviewer_agency": "ICRC",
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}
RULE = {"rule_id": "r1", "article": "GC III Art. 118", "finding": "applies"}
FACT = {"name": "fact", "value": 1, "source_event_id": None}


class Log:
    """Records as a service's topic holds them: envelopes with a version per stream (one source's
    events about one subject), each chained to the one before it, as replay checks."""

    def __init__(self):
        self.records: list[Record] = []
        self.versions: dict[tuple[str, str], int] = {}
        self.hashes: dict[tuple[str, str], str] = {}

    def add(self, payload: EventPayload, subject: str, hours: float, source: str = "/services/intake") -> None:
        stream = (source, subject)
        self.versions[stream] = self.versions.get(stream, 0) + 1
        envelope = EventEnvelope(
            id=str(uuid.uuid4()),
            source=source,
            type=payload.event_type,
            subject=subject,
            occurred_at=T0 + timedelta(hours=hours),
            recorded_at=T0 + timedelta(days=30, seconds=len(self.records)),
            stream_version=self.versions[stream],
            previous_hash=self.hashes.get(stream, GENESIS),
            schema_version=payload.schema_version,
            correlation_id="corr",
            actor="officer-7",
            agency="UA-HQ",
            # Wishes and consents weigh only as an ICRC delegate recorded them (shared/contracts/standing.py).
            **(
                {"actor_id": "person:delegate-4", "agency_kind": "icrc"}
                if payload.event_type in ("WishDeclared", "DisclosureConsentRecorded")
                else {"actor_id": "person:officer-7", "agency_kind": "detaining_state"}
            ),
            data=payload.model_dump(mode="json"),
        )
        self.records.append(Record(encode(envelope)))
        self.hashes[stream] = event_hash(self.records[-1].value)


def registered(captive_id: str, at: str = "2025-01-11T09:00:00+02:00") -> CaptiveRegistered:
    return CaptiveRegistered(captive_id=captive_id, **registration(captured_at=at))


def moved(captive_id: str, kind: str) -> MovementRecorded:
    place = {"location": "Camp 1"} if kind in {"ARRIVED_AT_CAMP", "TRANSFERRED", "HOSPITALISED", "RECAPTURED"} else {}
    return MovementRecorded(captive_id=captive_id, kind=kind, **place)


def wished(captive_id: str, wish: str, state: str | None = None) -> WishDeclared:
    return WishDeclared(captive_id=captive_id, wish=wish, third_state=state, provenance=PROVENANCE)


def consented(captive_id: str, state: str, given: bool) -> DisclosureConsentRecorded:
    return DisclosureConsentRecorded(
        captive_id=captive_id, recipient_state=state, given=given, purpose="resettlement", provenance=PROVENANCE
    )


def notified(captive_id: str, recipient: str) -> NotificationSent:
    return NotificationSent(captive_id=captive_id, recipient=recipient, fields_sent=["surname", "capture"])


def read(captive_ids: list[str]) -> DataAccessed:
    return DataAccessed(
        client_id="auditor", method="GET", path="/v1/captives", tiers=["identity"], captive_ids=captive_ids
    )


def intake_log() -> Log:
    """One captive (A) whose row changes with almost every event, B and C around him."""
    log = Log()
    log.add(registered(A), A, 0)
    log.add(registered(B, "2025-01-11T07:00:00Z"), B, 0.5)
    hour = 1.0
    for round_ in range(12):
        log.add(moved(A, "ARRIVED_AT_CAMP" if round_ % 3 == 0 else "TRANSFERRED"), A, hour + 3)
        log.add(notified(A, "NATIONAL_INFORMATION_BUREAU"), A, hour + 5 - round_)  # earlier each time
        log.add(moved(B, "HOSPITALISED"), B, hour)
        log.add(moved(A, "HOSPITALISED"), A, hour + 4)
        log.add(wished(A, "THIRD_STATE", ["KR", "DE", "CA"][round_ % 3]), A, hour)
        log.add(consented(A, ["KR", "DE"][round_ % 2], round_ % 4 != 1), A, hour)
        log.add(moved(A, "DISCHARGED_FROM_HOSPITAL"), A, hour + 6)
        log.add(moved(B, "DISCHARGED_FROM_HOSPITAL"), B, hour + 1)
        log.add(moved(A, "ESCAPED"), A, hour + 7 + round_ % 2)
        log.add(read([A, B]), f"read:{round_}", hour, "/services/intake")
        log.add(moved(A, "RECAPTURED"), A, hour + 8)
        if round_ == 4:
            log.add(registered(C), C, hour)
            log.add(CaptureCardRecorded(captive_id=A, action="OFFERED"), A, hour)
            log.add(CaptureCardRecorded(captive_id=A, action="SENT", recipient="Central Tracing Agency"), A, hour + 2)
            log.add(wished(A, "REPATRIATE"), A, hour)
            log.add(read([]), "read:none", hour)
        hour += 24
    log.add(notified(A, "CENTRAL_TRACING_AGENCY"), A, hour)
    log.add(moved(A, "ESCAPED"), A, hour + 1)
    log.add(moved(A, "DIED"), A, hour + 2)
    log.add(moved(C, "RELEASED"), C, hour + 3)
    log.records.insert(40, log.records[10])  # a relay retry: applied once
    log.records.insert(50, Record(b"not json"))  # dead-lettered, skipped
    return log


def disposition_log() -> Log:
    """Facts about A and B arriving out of order; eligibility, risks and claims re-decided often."""
    log = Log()
    status, own = "/services/status", "/services/disposition"
    log.add(registered(A), A, 0)
    log.add(registered(B), B, 0)
    log.add(
        StateAssuranceRecorded(state="KR", willing_and_able_to_apply_gc_iii=True, assessment="ok"), "state:KR", 1, own
    )
    for round_ in range(15):
        hour = 10.0 * round_
        late = hour - 25 if round_ % 3 == 2 else hour  # every third fact is about an earlier time
        log.add(wished(A, "THIRD_STATE", ["KR", "DE"][round_ % 2]), A, late)
        log.add(consented(A, "KR", round_ % 5 != 3), A, hour)
        log.add(
            MedicalAssessed(
                captive_id=A,
                assessor="Dr. M",
                findings="findings",
                seriously_wounded_or_sick=round_ % 2 == 0,
                by_mixed_medical_commission=True,
            ),
            A,
            late,
        )
        decided = ["POW", "PRESUMED_POW", "POW_EQUIVALENT"][round_ % 3]
        log.add(
            StatusDetermined(captive_id=A, status=decided, rulebook_version="v1", rules=[RULE], facts=[FACT]),
            A,
            late,
            status,
        )
        log.add(
            StatusDetermined(captive_id=B, status="POW", rulebook_version=f"v{round_}", rules=[RULE], facts=[]),
            B,
            hour,
            status,
        )
        for captive_id in (A, B):
            log.add(
                ExchangeEligibilityChanged(
                    captive_id=captive_id,
                    counterpart_state="RU",
                    eligible=round_ % 2 == 1,
                    reasons=[RULE] * (round_ % 3),
                    facts=[FACT],
                ),
                captive_id,
                hour,
                own,
            )
        log.add(
            RiskAssessed(
                captive_id=A,
                destination=["KR", "DE"][round_ % 2],
                outcome=["REAL_RISK", "NO_REAL_RISK"][round_ % 2],
                assessor="assessor",
                basis="basis",
            ),
            A,
            hour,
            own,
        )
        log.add(PartnerStateClaimRecorded(captive_id=A, state="KR", basis=f"claim {round_}"), A, hour, own)
        if round_ % 4 == 0:
            log.add(moved(A, "ESCAPED"), A, hour + 1)
            log.add(moved(A, "RECAPTURED"), A, hour + 2)
        if round_ == 7:
            log.add(ConflictFactRecorded(kind="HOSTILITIES_CEASED", source="UN"), "conflict", hour, status)
            log.add(
                ExchangeListCreated(list_id="L1", counterpart_state="RU", captive_ids=[A, B], agreement="Istanbul"),
                "list:L1",
                hour,
                own,
            )
            log.add(
                ExchangeListChecked(
                    list_id="L1",
                    results=[
                        {"captive_id": A, "eligible": True, "blocked_by": []},
                        {"captive_id": B, "eligible": False, "blocked_by": [RULE]},
                    ],
                ),
                "list:L1",
                hour,
                own,
            )
            log.add(ExchangeListProposed(list_id="L1", captive_ids=[A], check_event_id="e1"), "list:L1", hour, own)
            log.add(ExchangeListApproved(list_id="L1", proposed_by="officer-7", captive_ids=[A]), "list:L1", hour, own)
            log.add(ExchangeListExecuted(list_id="L1", captive_ids=[A]), "list:L1", hour, own)
            log.add(
                DispositionProposed(
                    captive_id=B, disposition_id="D1", kind="RESETTLEMENT", destination="KR", reasons=[RULE]
                ),
                B,
                hour,
                own,
            )
            log.add(
                DispositionApproved(captive_id=B, disposition_id="D1", proposed_by="officer-7", reasons=[RULE]),
                B,
                hour,
                own,
            )
            log.add(
                DispositionCompleted(captive_id=B, disposition_id="D1", kind="RESETTLEMENT", destination="KR"),
                B,
                hour,
                own,
            )
            log.add(
                CustodyEnded(captive_id=B, kind="RESETTLEMENT", destination="KR", disposition_id="D1"), B, hour, own
            )
        if round_ == 11:
            log.add(ConflictFactRecorded(kind="HOSTILITIES_CEASED", source="UN, again"), "conflict", hour, status)
    return log


def status_log() -> Log:
    log = Log()
    status = "/services/status"
    log.add(RulebookAdopted(version="v1", reason="first"), "rulebook", 0, status)
    log.add(ConflictFactRecorded(kind="CONFLICT_INTERNATIONAL", source="UN"), "conflict", 0, status)
    for round_, captive_id in enumerate((A, B, C) * 5):
        if round_ < 3:
            log.add(registered(captive_id), captive_id, round_)
        log.add(
            StatusDetermined(
                captive_id=captive_id, status="PRESUMED_POW", rulebook_version="v1", rules=[RULE], facts=[FACT]
            ),
            captive_id,
            round_,
            status,
        )
        log.add(
            LegalFindingRecorded(captive_id=captive_id, finding="ESPIONAGE", basis="basis"), captive_id, round_, status
        )
    return log


def one_at_a_time(url: str, definition, records: list[Record]) -> sa.Engine:
    """Each event in its own transaction, with the statements of the live path."""
    engine = create_engine(url)
    migrate(engine, definition.migrations, definition.metadata)
    appliers = definition.projector
    seen = set()
    with Session(engine) as session:
        for record in records:
            try:
                event = decode(record.value)
            except InvalidEvent:
                continue
            if event.envelope.id in seen or event.envelope.type not in appliers:
                continue
            seen.add(event.envelope.id)
            with session.begin():
                appliers[event.envelope.type](session, event.envelope, event.payload)
    return engine


def batched(url: str, definition, records: list[Record], batch: int) -> sa.Engine:
    replaying.rebuild(url, definition.migrations, definition.metadata, definition.projector, iter(records), batch=batch)
    return create_engine(url)


def stored(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    columns = [sa.cast(column, sa.Text) for column in table.columns]
    with engine.connect() as connection:
        return connection.execute(sa.select(*columns).order_by(*table.primary_key.columns)).all()


def assert_same_rows(definition, records: list[Record], make_url, batches=(1, 3, 7, 64, 1000)) -> dict:
    live = one_at_a_time(make_url("one_at_a_time"), definition, records)
    tables = list(definition.all_projection_tables())
    for batch in batches:
        rebuilt = batched(make_url(f"batch_{batch}"), definition, records, batch)
        digests, found = replaying.differences(live, rebuilt, tables)
        assert found == [], f"batch of {batch}: " + "\n".join(found[:20])
        for table in tables:  # as stored, too: JSON text, SQL NULL and JSON null told apart
            assert stored(rebuilt, table) == stored(live, table), table.name
        rebuilt.dispose()
    rows = {table.name: replaying.table_rows(live, table) for table in tables}
    live.dispose()
    return rows


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def make_url(request, tmp_path):
    if request.param == "sqlite":
        return lambda label: f"sqlite:///{tmp_path / label}.db"
    return request.getfixturevalue("new_database")


def test_a_captive_updated_again_and_again_ends_as_if_each_event_were_applied_alone(make_url):
    rows = assert_same_rows(intake, intake_log().records, make_url)
    captive = next(row for row in rows["captives"].values() if row["captive_id"] == A)
    assert captive["custody_state"] == "DEAD"
    facts = [row for row in rows["clock_facts"].values() if row["captive_id"] == A]
    assert {row["fact"] for row in facts} == {"CAPTURED", "MOVED", "CARD", "NOTIFIED"}
    assert [row["addressee"] for row in facts if row["fact"] == "CARD"] == [None, None]  # recorded before addressees
    assert len(rows["captives"]) == 3 and len(rows["access_log"]) == 2 * 12 + 1
    # Each wish took the wish for the states before it away; the last was for Canada.
    assert {(row["state"], row["wish"]) for row in rows["partner_visibility"].values()} == {
        ("KR", False),
        ("DE", False),
        ("CA", True),
    }


def test_out_of_order_facts_and_repeated_decisions_end_as_if_each_event_were_applied_alone(make_url):
    rows = assert_same_rows(disposition, disposition_log().records, make_url)
    assert len(rows["eligibility"]) == 2 and len(rows["eligibility_history"]) == 30
    assert len(rows["risks"]) == 2 and len(rows["partner_claims"]) == 1
    assert next(iter(rows["exchange_lists"].values()))["stage"] == "EXECUTED"


def test_status_read_models_are_the_same_batched(make_url):
    rows = assert_same_rows(status, status_log().records, make_url, batches=(1, 4, 1000))
    assert len(rows["decisions"]) == 15 and len(rows["legal_facts"]) == 15


def test_a_batch_writes_its_new_rows_in_a_few_statements(tmp_path):
    log = Log()
    for number in range(2500):
        captive_id = f"CAP-{number:04d}-0000-0000"
        log.add(registered(captive_id), captive_id, 0)
    url = f"sqlite:///{tmp_path / 'rebuilt'}.db"
    engine = create_engine(url)
    migrate(engine, intake.migrations, intake.metadata)
    engine.dispose()
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    sa.event.listen(sa.Engine, "before_cursor_execute", listener)
    try:
        result = replaying.rebuild(url, intake.migrations, intake.metadata, intake.projector, iter(log.records))
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", listener)
    assert result.applied == 2500
    inserts = [statement for statement in statements if statement.startswith("INSERT INTO captives")]
    assert 3 <= len(inserts) <= 12, len(inserts)  # a few multi-row INSERTs per batch of 1,000


def test_a_registration_replayed_twice_under_different_ids_fails_as_it_would_one_at_a_time(tmp_path):
    log = Log()
    log.add(registered(A), A, 0)
    log.add(registered(A), A, 1)
    with pytest.raises(sa.exc.IntegrityError):
        one_at_a_time(f"sqlite:///{tmp_path / 'one'}.db", intake, log.records)
    with pytest.raises(sa.exc.IntegrityError):
        batched(f"sqlite:///{tmp_path / 'batched'}.db", intake, log.records, 1000)


# -- BatchedRows against LiveRows, call by call ---------------------------------------------------

metadata = sa.MetaData()
visits = sa.Table(
    "visits",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(2), primary_key=True),
    sa.Column("seen", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("open", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("at", UtcDateTime()),
    sa.Column("notes", sa.JSON),
    sa.Column("count", sa.Integer),
)
captive_ids = st.sampled_from(["CAP-1", "CAP-2", "CAP-3"])
states = st.sampled_from(["KR", "DE"])
moments = st.builds(
    lambda hours, offset: (T0 + timedelta(hours=hours)).astimezone(timezone(timedelta(hours=offset))),
    st.integers(0, 5),
    st.integers(-3, 3),
)
values = st.fixed_dictionaries(
    {},
    optional={
        "seen": st.booleans(),
        "at": st.none() | moments,
        "open": st.booleans(),
        "notes": st.none()
        | st.lists(st.integers(0, 3), max_size=2)
        | st.tuples(st.integers(0, 3))  # comes back a list
        | st.fixed_dictionaries({"n": st.integers(0, 3)}),
        "count": st.none() | st.integers(0, 3),
    },
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just("get"), captive_ids, states),
        st.tuples(st.just("insert"), captive_ids, states, values),
        st.tuples(st.just("update"), captive_ids, states, values.filter(bool)),
        st.tuples(st.just("upsert"), captive_ids, states, values.filter(bool)),
        st.tuples(
            st.just("update_where"),
            st.fixed_dictionaries({"captive_id": captive_ids}) | st.fixed_dictionaries({"count": st.integers(0, 3)}),
            values.filter(bool),
        ),
        st.tuples(st.just("prefetch"), st.lists(captive_ids, max_size=2)),
        st.tuples(st.just("commit")),
    ),
    max_size=40,
)


def shown(row) -> dict | None:
    """A row as compared here: a time with its offset, so UTC and +03:00 are not the same."""
    if row is None:
        return None
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in row.items()}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def databases(request, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """Two databases, the one written one statement per call and the batched one."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("rows")
        yield f"sqlite:///{folder / 'live'}.db", f"sqlite:///{folder / 'batched'}.db"
        return
    server = request.getfixturevalue("postgres_server")
    names = [f"t_rows_{name}_{uuid.uuid4().hex[:8]}" for name in ("live", "batched")]
    yield tuple(create_database(server, name) for name in names)
    for name in names:
        drop_database(server, name)


@given(before=st.lists(st.tuples(captive_ids, states, values), max_size=4), calls=calls)
@example(  # a row changed in the batch, then loaded again with its captive's other rows
    before=[("CAP-1", "KR", {"count": 1}), ("CAP-1", "DE", {})],
    calls=[
        ("get", "CAP-1", "KR"),
        ("update", "CAP-1", "KR", {"count": 2}),
        ("update_where", {"captive_id": "CAP-1"}, {"seen": True}),
        ("get", "CAP-1", "KR"),
        ("get", "CAP-1", "DE"),
    ],
)
@example(  # rows looked up by a column that an update changes
    before=[("CAP-1", "KR", {"count": 1}), ("CAP-2", "KR", {"count": 1})],
    calls=[
        ("update_where", {"count": 1}, {"count": 2}),
        ("update_where", {"count": 1}, {"seen": True}),
        ("update_where", {"count": 2}, {"open": False}),
    ],
)
@example(  # read back in the same batch as the database would give them back
    before=[],
    calls=[
        ("insert", "CAP-2", "KR", {"notes": (1,), "at": T0.astimezone(timezone(timedelta(hours=3)))}),
        ("get", "CAP-2", "KR"),
    ],
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_batched_rows_answer_and_write_as_one_statement_per_call_would(databases, before, calls):
    """Every call answers the same and the tables end the same, wherever the batches end."""
    engines = [create_engine(url) for url in databases]
    for engine in engines:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            for captive_id, state, columns in {(row[0], row[1]): row for row in before}.values():
                LiveRows(session).insert(visits, {"captive_id": captive_id, "state": state, **columns})
    live_session, batched_session = Session(engines[0]), Session(engines[1])
    live, held = LiveRows(live_session), BatchedRows(batched_session)
    try:
        for call in calls:
            name, *arguments = call
            if name == "commit":
                live_session.commit()
                held.flush()
                batched_session.commit()
                held.forget()
                continue
            if name == "prefetch":
                held.prefetch(arguments[0])
                continue
            if name == "update_where":
                where, columns = arguments
                live.update_where(visits, where, **columns)
                held.update_where(visits, where, **columns)
                continue
            captive_id, state, *rest = arguments
            key = {"captive_id": captive_id, "state": state}
            if name == "get":
                found = live.get(visits, key)
                assert shown(found) == shown(held.get(visits, key))
            elif name == "insert":
                if live.get(visits, key) is None:  # a duplicate fails either way; not what this is about
                    live.insert(visits, {**key, **rest[0]})
                    held.insert(visits, {**key, **rest[0]})
            elif name == "update":
                assert live.update(visits, key, **rest[0]) == held.update(visits, key, **rest[0])
            else:
                live.upsert(visits, key, **rest[0])
                held.upsert(visits, key, **rest[0])
        live_session.commit()
        held.flush()
        batched_session.commit()
        assert replaying.table_rows(engines[0], visits) == replaying.table_rows(engines[1], visits)
        assert stored(engines[0], visits) == stored(engines[1], visits)
    finally:
        held.close()
        live_session.close()
        batched_session.close()
        for engine in engines:
            engine.dispose()
