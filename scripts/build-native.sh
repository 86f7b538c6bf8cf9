#!/usr/bin/env bash
# Builds the optional native OTLP span encoder (native/: Rust + PyO3, built with maturin) into .venv
# when cargo is present. Idempotent: rebuilt only when native/'s sources change (a stamp in the venv
# keyed by their hash; cargo's incremental build in native/target). Without cargo the sidecar uses
# its pure-Python encoder (the same bytes) and the native tests skip, saying so. Called by
# scripts/install-tools.sh (so by `make tools` and `make test`) and by `make native`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if ! command -v cargo >/dev/null 2>&1; then
  echo "build-native: no cargo; the pure-Python OTLP encoder is used and the native encoder's tests skip" >&2
  exit 0
fi
sum=$(cat native/Cargo.toml native/Cargo.lock native/pyproject.toml native/src/*.rs | sha256sum | cut -c1-12)
stamp="$VENV/.native-$sum"
if [ -f "$stamp" ] && "$VENV/bin/python" -c "import otel_bridge_native" 2>/dev/null; then
  exit 0
fi
t0=$(date +%s)
rm -f "$VENV"/.native-*
if CARGO_TARGET_DIR="$PWD/native/target" "$VENV/bin/python" -m pip install --quiet ./native; then
  touch "$stamp"
  echo "build-native: built otel_bridge_native ($sum) into $VENV in $(( $(date +%s) - t0 )) s"
else
  "$VENV/bin/python" -m pip uninstall --yes --quiet otel-bridge-native >/dev/null 2>&1 || true
  echo "build-native: building the native OTLP encoder failed; the pure-Python encoder is used" >&2
  if [ -n "${CI:-}" ]; then exit 1; fi  # CI must test both encoders: a broken build is a failure there
fi
