"""OTLP export as a chain of small links, like the collector's exporterhelper.

Each module is one link or one leaf, and each knows only the link after it::

    BatchingExporter      queue + drain loop (batching.py, queue.py)
      -> BatchSender      one batch: encode, retry, count      (sender.py)
                          or hand it to the worker process      (process.py)
        -> RetrySender    per-batch deadline, the shared backoff (retry.py)
          -> Transport    HTTP or gRPC, classified result       (lean_http.py, http_transport.py
                                                                 behind a proxy,
                                                                 grpc_transport.py)

``OtlpExporter`` (exporter.py) and ``ProcessExporter`` (process.py) are the two
assemblies the sidecar uses; the worker process's entry point (worker.py) runs
an ``OtlpExporter`` on the far side of a pipe (pipe.py; batches already encoded
to OTLP cross it as encoded.py says). Encoders stay in ``sinks/otlp_proto.py``
(with the optional native extension) and ``sinks/otlp_json.py``.
"""
