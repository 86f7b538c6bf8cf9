"""The MCP decoder's pending-request table: what its indexes find, and that forgetting a request
(answered, failed, evicted past the bound) removes it from every index."""

from __future__ import annotations

from otel_bridge.dialects._mcp_pending import SERVER, Pending, PendingRequests


def pending(exchange: str, call_id: str = "1", *, run_id: str = "run", token: str | None = None) -> Pending:
    return Pending(run_id, call_id, "tools/call", "t", exchange, (), False, token=token)


def test_a_progress_token_and_an_exchange_find_their_request_until_it_is_answered() -> None:
    table = PendingRequests()
    first, second = pending("e1", "1", token="p1"), pending("e1", "2")
    table.remember(("s", "1"), first)
    table.remember(("s", "2"), second)
    assert table.by_progress("s", "p1") is first
    assert table.by_progress("other", "p1") is None
    assert table.last_client_request("e1") is second
    assert table.first_of_exchange("e1") is first
    assert table.in_flight("run", "1")
    assert table.in_flight("run", "2")

    assert table.drop(("s", "1")) is first
    assert table.by_progress("s", "p1") is None
    assert not table.in_flight("run", "1")
    assert table.first_of_exchange("e1") is second
    assert table.drop(("s", "1")) is None


def test_the_servers_requests_are_not_what_a_response_stream_answers() -> None:
    table = PendingRequests()
    client = pending("e1", "1")
    table.remember(("s", "1"), client)
    table.remember((SERVER + "s", "1"), pending("e1", "srv:1"))
    assert table.last_client_request("e1") is client
    assert len(table) == 2


def test_an_exchange_fails_all_it_left_open_in_order_and_nothing_of_it_remains() -> None:
    table = PendingRequests()
    requests = [pending("e1", str(i), token=f"p{i}") for i in range(3)]
    for i, request in enumerate(requests):
        table.remember(("s", str(i)), request)
    table.remember(("s", "other"), pending("e2", "other"))
    assert table.drop_exchange("e1") == requests
    assert table.drop_exchange("e1") == []
    assert table.first_of_exchange("e1") is None
    assert all(table.by_progress("s", f"p{i}") is None for i in range(3))
    assert len(table) == 1


def test_the_same_key_again_gives_the_first_up() -> None:
    table = PendingRequests()
    table.remember(("s", "1"), pending("e1", "1", token="p"))
    again = pending("e2", "1#e2")
    table.remember(("s", "1"), again)
    assert len(table) == 1
    assert table.first_of_exchange("e1") is None
    assert table.by_progress("s", "p") is None
    assert not table.in_flight("run", "1")
    assert table.first_of_exchange("e2") is again


def test_past_the_bound_the_oldest_request_is_given_up_from_every_index() -> None:
    table = PendingRequests(limit=3)
    for i in range(5):
        table.remember(("s", str(i)), pending(f"e{i}", str(i), token=f"p{i}"))
    assert len(table) == 3
    for gone in ("0", "1"):
        assert ("s", gone) not in table
        assert table.first_of_exchange(f"e{gone}") is None
        assert table.by_progress("s", f"p{gone}") is None
        assert not table.in_flight("run", gone)
    assert all(("s", str(i)) in table for i in (2, 3, 4))
