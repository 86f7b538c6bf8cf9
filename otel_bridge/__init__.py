"""otel-bridge: agent event streams in, OpenTelemetry GenAI traces out."""

__version__ = "0.1.0"
