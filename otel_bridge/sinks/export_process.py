"""OTLP export in a worker process: the public name of the exporter, and the worker's old entry point.

The implementation lives in :mod:`otel_bridge.sinks.export.process` (parent side)
and :mod:`otel_bridge.sinks.export.worker` (child side);
``python -m otel_bridge.sinks.export_process`` still runs the worker.
"""

from otel_bridge.sinks.export.process import ProcessExporter

__all__ = ["ProcessExporter"]

if __name__ == "__main__":
    from otel_bridge.sinks.export.worker import run

    run()
