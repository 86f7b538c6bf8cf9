from otel_bridge.cli import main

# Guarded: the OTLP export worker is started with "spawn", which imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
