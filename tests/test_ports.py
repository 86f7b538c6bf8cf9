"""The ports tests give their servers: free, distinct, and never from the kernel's range for client ports."""

from __future__ import annotations

import socket

from tests.support.ports import ephemeral_range, free_port


def test_free_ports_are_distinct_bindable_and_outside_the_client_range() -> None:
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert not [p for p in ports if low <= p <= high]
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # free: a server can take it
