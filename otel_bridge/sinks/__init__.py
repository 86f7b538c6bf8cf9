"""Where finished spans go: OTLP export, the embedded store, the live feed."""
