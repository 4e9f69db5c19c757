"""The topology, declared once in services/system.py, is what every part reads."""

import pytest

from services.system import SYSTEM, definitions
from shared.broker.acls import service_acls
from shared.runtime.topology import System
from tools.broker import deployment_services
from tools.services import Consuming, Service


def test_each_service_consumes_the_topics_of_the_services_piped_to_it_in_pipe_order():
    assert SYSTEM.consumes("status") == ("intake.events.v1",)
    assert SYSTEM.consumes("disposition") == ("intake.events.v1", "status.events.v1")
    assert SYSTEM.consumes("intake") == ("disposition.events.v1",)
    for definition in definitions():
        assert definition.consumes == SYSTEM.consumes(definition.name)
        assert definition.topic == SYSTEM.topic(definition.name)
        assert (definition.store_tables.inbox is not None) == bool(definition.consumes)


def test_the_broker_and_the_command_line_read_the_same_system():
    services = {service.name: service for service in deployment_services()}
    assert set(services) == set(SYSTEM.services) == {s.value for s in Service}
    assert {s.value for s in Consuming} == set(SYSTEM.consumers)
    acls = service_acls("p.", services["status"])
    read = {acl.resource_pattern.resource_name for acl in acls if acl.operation.name == "READ"}
    assert "p.intake.events.v1" in read and "p.disposition.events.v1" not in read


def test_a_pipe_must_join_two_services_of_the_system():
    with pytest.raises(ValueError, match="does not join"):
        System(topics={"a": "a.v1"}, pipes=(("a", "b"),))
    with pytest.raises(KeyError):
        SYSTEM.consumes("nobody")
