"""Reading an A2A agent's card: who the agent a subscription talks to is.

A2A streams do not name their agent; its card does (``name``, ``description``).
The card is at ``/.well-known/agent-card.json`` (before A2A 0.3:
``/.well-known/agent.json``) at the host's root, and an agent mounted under a
path may serve it there too. A missing or unreadable card is an answer, not a
failure: the subscription goes on and ``/v1/sources`` says why there is none.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from otel_bridge.dialects._a2a_wire import AGENT_CARD_PATHS, AgentCard, agent_card

CARD_TIMEOUT_S = 10.0
"""An agent card is a small JSON document: a source does not wait on it for ever."""


def card_urls(url: str) -> list[str]:
    """Where the card of the agent at ``url`` may be, in the order they are tried."""
    parts = urlsplit(url)
    mount = parts.path.rstrip("/")
    prefixes = ["", mount] if mount else [""]
    return [
        urlunsplit((parts.scheme, parts.netloc, prefix + path, "", ""))
        for prefix in prefixes
        for path in AGENT_CARD_PATHS
    ]


async def read_agent_card(client: httpx.AsyncClient, url: str) -> tuple[AgentCard | None, str | None]:
    """``(the card, None)``, or ``(None, why there is none)``."""
    errors: list[str] = []
    for candidate in card_urls(url):
        path = urlsplit(candidate).path
        try:
            response = await client.get(candidate, headers={"Accept": "application/json"}, timeout=CARD_TIMEOUT_S)
            card = agent_card(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            errors.append(f"{path}: {type(exc).__name__}")
            continue
        if card is not None:
            return card, None
        errors.append(f"{path}: HTTP {response.status_code}" if response.status_code != 200 else f"{path}: no name")
    return None, "no agent card (" + "; ".join(errors) + ")"
