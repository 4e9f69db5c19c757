"""Ports the stacks listen on are chosen where no outgoing connection can take them first."""

import socket

import pytest

from deploy import processes
from deploy.processes import _ephemeral_range, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_never_handed_out_twice():
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert all(1024 <= port < low for port in ports)
    assert len(set(ports)) == len(ports)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch):
    # A range of 40 ports, half of them taken by listeners: only the other half come out.
    monkeypatch.setattr(processes, "_ephemeral_range", lambda: (1064, 60999))
    monkeypatch.setattr(processes, "_handed_out", set())
    listeners, taken = [], set()
    try:
        for port in range(1024, 1064, 2):
            listener = socket.socket()
            try:
                listener.bind(("127.0.0.1", port))
                listener.listen()
            except OSError:
                listener.close()  # taken already, by something else: as good
            else:
                listeners.append(listener)
            taken.add(port)
        handed = set()
        with pytest.raises(RuntimeError, match="no free TCP port"):
            while True:
                handed.add(free_port())
        assert handed and not handed & taken
        assert handed <= set(range(1024, 1064)) - taken
    finally:
        for listener in listeners:
            listener.close()
