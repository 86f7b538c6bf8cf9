#!/usr/bin/env bash
# Installs the real components the tests start (beyond the Python dev extras),
# idempotently, into .tools/ (git-ignored). Called by `make test` via `make tools`.
# Each section is owned by the area that needs it; keep them independent.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
PY=${PYTHON:-python3}

# --- rotel (OTLP collector): installed by the dev extras into .venv ----------

# --- Prometheus (scrapes the real sidecar in tests/test_prometheus*.py) -------
# Debian's package; only when the binary is missing. The tests start it with
# their own config on a free port (the package's own service is not used).
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y --no-install-recommends prometheus
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus
  else
    echo "install-tools: prometheus is missing and apt-get needs root; its tests will be skipped" >&2
  fi
fi


# --- OpenIntent server + SDK (tests/test_openintent_sources.py) ---------------
# Its own virtualenv: openintent[server] pins fastapi/sqlalchemy/pydantic versions
# that are not ours. The SDK's OpenAI adapter needs the openai package.
OPENINTENT_VERSION=0.17.0
OI=.tools/openintent
if ! "$OI/bin/python" -c "import openintent, openai, sys; sys.exit(openintent.__version__ != '$OPENINTENT_VERSION')" 2>/dev/null; then
  rm -rf "$OI"
  "$PY" -m venv "$OI"
  "$OI/bin/python" -m pip install --quiet --upgrade pip
  "$OI/bin/python" -m pip install --quiet "openintent[server]==$OPENINTENT_VERSION" openai
fi

# --- headless Chromium (tests/test_viewer.py: the viewer page shows a trace) ------
# Debian's package; needs root. Without it that one test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
    || echo "install-tools: could not install chromium; the viewer's browser test will be skipped" >&2
fi
