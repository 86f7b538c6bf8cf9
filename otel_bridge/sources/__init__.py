"""How events arrive: HTTP ingest, upstream SSE, OpenIntent, file replay."""
