"""The live feed: every mapped event, enriched with its span ids, framed once, fanned out.

``hub`` publishes and fans out, ``record`` says what one event carries and
frames it, ``filters`` decides which events a subscriber wants. The HTTP side
(``GET /v1/stream``) and the AG-UI form live in :mod:`otel_bridge.web`.
"""

from otel_bridge.sinks.feed.filters import FeedFilter, FilterError
from otel_bridge.sinks.feed.hub import Feed, FeedFormat, FeedFull, FeedItem, Subscriber
from otel_bridge.sinks.feed.record import FeedRecord

__all__ = ["Feed", "FeedFilter", "FeedFormat", "FeedFull", "FeedItem", "FeedRecord", "FilterError", "Subscriber"]
