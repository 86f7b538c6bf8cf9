"""The live feed: every mapped event, enriched with its span ids, framed once, fanned out.

``hub`` publishes and fans out, ``record`` says what one event carries,
``sse`` frames it (the only writer of SSE bytes), ``filters`` decides which
events a subscriber wants, and ``agui`` is the AG-UI form of the feed (a
:class:`FeedFormat` built on the public names below). ``backend`` is where
the events are kept and ordered: ``memory`` (a ring in this process) or
``redis_backend`` (one Redis stream shared by a fleet; imports the optional
``redis`` package, so it is imported only when configured). The HTTP side
(``GET /v1/stream``) lives in :mod:`otel_bridge.web.stream`.
"""

from otel_bridge.sinks.feed.filters import FeedFilter, FilterError
from otel_bridge.sinks.feed.hub import Feed, FeedFormat, FeedFull, FeedItem, Subscriber
from otel_bridge.sinks.feed.record import FeedRecord

__all__ = ["Feed", "FeedFilter", "FeedFormat", "FeedFull", "FeedItem", "FeedRecord", "FilterError", "Subscriber"]
