"""The embedded store's HTTP API and the live viewer."""
