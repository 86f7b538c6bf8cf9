# The otel-bridge sidecar. Build: docker build -t otel-bridge .   Run: docker run -p 8318:8318 otel-bridge

# Stage 1: the native OTLP span encoder (native/: Rust + PyO3, built by maturin) as a wheel. The same
# PEP 517 build scripts/build-native.sh runs (pip over ./native), from the same files it hashes; built for
# one CPython minor version (not abi3): Debian's Python 3.11 here builds a wheel the runtime's 3.11 loads.
# A failed build fails the image: the image promises the native encoder (the pure one stays inside as the
# fallback for what it hands over).
FROM rust:1.95.0-slim-bookworm AS native
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY native/Cargo.toml native/Cargo.lock native/pyproject.toml ./native/
COPY native/src ./native/src
RUN python3 -m venv /build && /build/bin/pip wheel --no-deps --wheel-dir /wheels ./native

# Stage 2: the runtime: the package and the encoder's wheel, no compiler.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_bridge ./otel_bridge
COPY --from=native /wheels /wheels
RUN pip install ".[redis]" /wheels/*.whl && rm -rf /src /wheels \
  && python -c "import otel_bridge_native"

# An unprivileged user: the sidecar needs no file system and no privileged port.
RUN useradd --system --uid 10001 --no-create-home otel-bridge
USER 10001
WORKDIR /

EXPOSE 8318
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8318/v1/health', timeout=2)"]
ENTRYPOINT ["otel-bridge"]
CMD ["serve", "--host", "0.0.0.0"]
