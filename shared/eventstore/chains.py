"""The consumer's check of each upstream record's place in its stream's hash chain (shared/evidence/chain.py):
`chain_links` keeps the hash of every upstream event consumed here; a record that breaks its chain
is set aside as a dead letter; one its handler refuses keeps its place."""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.contracts import DecodedEvent
from shared.eventstore.received import (
    ChainBroken,
    _Broken,
    _stream,
)
from shared.eventstore.tables import CHECKED_AFTER_LEGACY
from shared.evidence import chain

log = structlog.get_logger(__name__)


class ChainChecks:
    """Part of EventConsumer (shared/eventstore/consumer.py): the hash chains of the upstream streams."""

    def _trusts_first(self, session: Session) -> bool:
        """Whether this database applied events before chains were checked (migration 0008 marks
        it): then a stream with no link yet may start at any version."""
        if self._trust_first is None:
            links = self.chain_links
            self._trust_first = (
                session.execute(sa.select(links.c.stream).where(links.c.stream == CHECKED_AFTER_LEGACY)).first()
                is not None
            )
        return self._trust_first

    def _chain_state(
        self, session: Session, events: list[DecodedEvent]
    ) -> tuple[dict[str, chain.Link], dict[tuple[str, int], chain.Link]]:
        """The last link of each stream of `events`, and the links at the versions of those events
        that are not past their stream's last one (an exact copy, or an altered one)."""
        links = self.chain_links
        streams = sorted({_stream(event) for event in events})
        heads: dict[str, chain.Link] = {}
        for start in range(0, len(streams), 500):
            chunk = streams[start : start + 500]
            last = (
                sa.select(links.c.stream, sa.func.max(links.c.stream_version).label("version"))
                .where(links.c.stream.in_(chunk))
                .group_by(links.c.stream)
                .subquery()
            )
            rows = session.execute(
                sa.select(links.c.stream, links.c.stream_version, links.c.hash, links.c.chained).join(
                    last, (links.c.stream == last.c.stream) & (links.c.stream_version == last.c.version)
                )
            ).all()
            heads.update({row.stream: chain.Link(row.stream_version, row.hash, row.chained) for row in rows})
        behind = sorted(
            {
                (_stream(event), event.envelope.stream_version)
                for event in events
                if _stream(event) in heads and event.envelope.stream_version <= heads[_stream(event)].version
            }
        )
        seen: dict[tuple[str, int], chain.Link] = {}
        for start in range(0, len(behind), 500):
            chunk = behind[start : start + 500]
            rows = session.execute(
                sa.select(links.c.stream, links.c.stream_version, links.c.hash, links.c.chained).where(
                    sa.tuple_(links.c.stream, links.c.stream_version).in_(chunk)
                )
            ).all()
            seen.update(
                {
                    (row.stream, row.stream_version): chain.Link(row.stream_version, row.hash, row.chained)
                    for row in rows
                }
            )
        return heads, seen

    def _judge(
        self,
        session: Session,
        record: ConsumerRecord,
        event: DecodedEvent,
        heads: dict[str, chain.Link],
        seen: dict[tuple[str, int], chain.Link],
    ) -> tuple[chain.Verdict, dict | None]:
        """The verdict on `record`, and the link row to insert when it follows on (the in-memory
        state is moved on, for the records after it in the same poll)."""
        stream, version = _stream(event), event.envelope.stream_version
        digest = chain.event_hash(record.value)
        previous = event.envelope.previous_hash
        verdict = chain.judge(
            version,
            previous,
            digest,
            heads.get(stream),
            seen.get((stream, version)),
            trust_first=self._trusts_first(session),
        )
        if not verdict.follows:
            return verdict, None
        link = chain.Link(version, digest, previous is not None)
        heads[stream] = seen[(stream, version)] = link
        row = dict(stream=stream, stream_version=version, hash=digest, chained=link.chained, event_id=event.envelope.id)
        return verdict, row

    def dead_letter_break(self, record: ConsumerRecord, reason: str) -> None:
        self.dead_letter(record, ChainBroken(reason))
        self.chain_breaks_total += 1

    def _set_aside(self, record: ConsumerRecord, reason: str) -> _Broken:
        self.dead_letter_break(record, reason)
        return _Broken(reason)

    def _linked(self, session: Session, event: DecodedEvent, record: ConsumerRecord) -> bool:
        """Whether this exact record already has its place in its stream's chain here."""
        links = self.chain_links
        found = session.execute(
            sa.select(links.c.hash).where(
                (links.c.stream == _stream(event)) & (links.c.stream_version == event.envelope.stream_version)
            )
        ).scalar()
        return found == chain.event_hash(record.value)

    def _keep_place(self, record: ConsumerRecord, event: DecodedEvent) -> None:
        """A record its handler refused is set aside for what it says, not for where it stands:
        it keeps its place in its stream's chain, so that the stream's next events still apply."""
        if self.chain_links is None:
            return
        try:
            with self.sessions.begin() as session:
                heads, known = self._chain_state(session, [event])
                verdict, row = self._judge(session, record, event, heads, known)
                if row is not None:
                    session.execute(sa.insert(self.chain_links), row)
        except IntegrityError:
            pass  # another instance took it
