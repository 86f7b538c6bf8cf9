"""The live feed: every mapped event, enriched with its span ids, framed once, fanned out.

``hub`` publishes and fans out, ``record`` says what one event carries,
``sse`` frames it (the only writer of SSE bytes), ``filters`` decides which
events a subscriber wants. The UI forms, feed formats (:class:`FeedFormat`) built on the
public names below, show one run per stream: ``runs`` keeps the runs as a UI
sees them (starts, ends, late events), ``agui`` is the AG-UI form and
``ai_sdk`` the AI SDK's UI message stream. ``backend`` is where the events
are kept and ordered: ``memory`` (a ring in this process) or ``redis_backend``
(one Redis stream shared by a fleet; imports the optional ``redis`` package,
so it is imported only when configured). The HTTP side (``GET``/``POST
/v1/stream``) lives in :mod:`otel_bridge.web.stream`.
"""

from otel_bridge.sinks.feed.filters import FeedFilter, FilterError
from otel_bridge.sinks.feed.hub import Feed, FeedFull
from otel_bridge.sinks.feed.item import FeedFormat, FeedItem
from otel_bridge.sinks.feed.record import FeedRecord
from otel_bridge.sinks.feed.subscriber import Subscriber

__all__ = ["Feed", "FeedFilter", "FeedFormat", "FeedFull", "FeedItem", "FeedRecord", "FilterError", "Subscriber"]
