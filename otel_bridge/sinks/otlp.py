"""OTLP trace export: the public name of the in-process exporter.

The export chain (queue, retry, transports) lives in :mod:`otel_bridge.sinks.export`.
"""

from otel_bridge.sinks.export.exporter import OtlpExporter

__all__ = ["OtlpExporter"]
