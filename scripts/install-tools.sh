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

# --- Jaeger v2 and the OpenTelemetry Collector (tests/test_e2e_*.py) -----------------
# Built from their Go modules by the ordinary `go` client, cached under .tools/ keyed by
# version, so a second run costs nothing. The collector is the distribution described by
# collector-config/builder.yaml (rebuilt when that file changes). Jaeger v2 ships from the
# module's v1.x tags (no /v2 module path exists); v1.76.0 is Jaeger v2.13.0.
JAEGER_MODULE_VERSION=v1.76.0
JAEGER_VERSION=2.13.0
COLLECTOR_VERSION=0.161.0
if command -v go >/dev/null 2>&1; then
  J=.tools/jaeger-$JAEGER_VERSION
  if [ ! -x "$J/jaeger" ]; then
    t0=$(date +%s)
    rm -rf "$J.build" && mkdir -p "$J.build"
    (
      cd "$J.build"
      go mod init otel-bridge-tools/jaeger >/dev/null 2>&1
      # `go get -tool` tolerates the module's replace directives where `go install pkg@v` does not.
      go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION"
      go build -trimpath -o ../jaeger-$JAEGER_VERSION.bin \
        -ldflags "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
        github.com/jaegertracing/jaeger/cmd/jaeger
    ) && mkdir -p "$J" && mv ".tools/jaeger-$JAEGER_VERSION.bin" "$J/jaeger" && rm -rf "$J.build" \
      && echo "install-tools: built jaeger $JAEGER_VERSION in $(( $(date +%s) - t0 )) s" \
      || echo "install-tools: building jaeger $JAEGER_VERSION failed; the Jaeger end-to-end tests will be skipped" >&2
  fi
  manifest_sum=$(sha256sum collector-config/builder.yaml | cut -c1-12)
  O=.tools/otelcol-$COLLECTOR_VERSION-$manifest_sum
  if [ ! -x "$O/otelcol-bridge" ]; then
    t0=$(date +%s)
    rm -rf "$O.build" && mkdir -p "$O.build"
    cp collector-config/builder.yaml "$O.build/builder.yaml"
    (
      cd "$O.build"
      go mod init otel-bridge-tools/otelcol >/dev/null 2>&1
      go get -tool "go.opentelemetry.io/collector/cmd/builder@v$COLLECTOR_VERSION"
      go tool builder --config builder.yaml
    ) && mkdir -p "$O" && mv "$O.build/build/otelcol-bridge" "$O/otelcol-bridge" && rm -rf "$O.build" \
      && echo "install-tools: built otelcol-bridge $COLLECTOR_VERSION in $(( $(date +%s) - t0 )) s" \
      || echo "install-tools: building the collector $COLLECTOR_VERSION failed; the collector end-to-end tests will be skipped" >&2
  fi
else
  echo "install-tools: no go toolchain; the Jaeger and collector end-to-end tests will be skipped" >&2
fi

# --- Arize Phoenix (tests/test_phoenix.py: OpenInference read back from a real Phoenix) --
# Its own virtualenv: it pins opentelemetry and protobuf versions that are not ours, and its
# client registers a pytest plugin. About 850 MB; without it that test is skipped and says why.
PHOENIX_VERSION=20.26.1
PX=.tools/phoenix-$PHOENIX_VERSION
if [ ! -x "$PX/bin/phoenix" ]; then
  t0=$(date +%s)
  rm -rf "$PX"
  ("$PY" -m venv "$PX" && "$PX/bin/python" -m pip install --quiet --upgrade pip \
    && "$PX/bin/python" -m pip install --quiet "arize-phoenix==$PHOENIX_VERSION") \
    && echo "install-tools: installed arize-phoenix $PHOENIX_VERSION in $(( $(date +%s) - t0 )) s" \
    || { rm -rf "$PX"; echo "install-tools: installing arize-phoenix failed; the Phoenix test will be skipped" >&2; }
fi
