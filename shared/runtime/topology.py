"""The shape of a system of services: which topic each publishes and which pipes join them (a pipe
runs from the service that publishes to one that consumes its topic). The system itself is
declared once, in services/system.py; what each service consumes, the consumer tables it keeps,
the broker's ACLs, the AsyncAPI document and the command line's choices are all read from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class System:
    topics: Mapping[str, str]  # service -> the topic it publishes (unprefixed), in the system's order
    pipes: tuple[tuple[str, str], ...]  # (upstream, downstream)

    def __post_init__(self):
        for upstream, downstream in self.pipes:
            if upstream not in self.topics or downstream not in self.topics or upstream == downstream:
                raise ValueError(f"pipe {upstream} -> {downstream} does not join two services of the system")

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.topics)

    def topic(self, service: str) -> str:
        return self.topics[service]

    def consumes(self, service: str) -> tuple[str, ...]:
        """The topics `service` consumes, in the order of the pipes (replay reads them so)."""
        if service not in self.topics:
            raise KeyError(f"{service} is not a service of the system")
        return tuple(self.topics[upstream] for upstream, downstream in self.pipes if downstream == service)

    @property
    def consumers(self) -> tuple[str, ...]:
        return tuple(service for service in self.services if self.consumes(service))
