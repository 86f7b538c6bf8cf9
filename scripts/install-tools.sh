#!/usr/bin/env bash
# Installs the real components the tests start (beyond the Python dev extras),
# idempotently, into .tools/ (git-ignored). Called by `make test` via `make tools`.
# Each section is owned by the area that needs it; keep them independent.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
PY=${PYTHON:-python3}

# --- rotel (OTLP collector): installed by the dev extras into .venv ----------

