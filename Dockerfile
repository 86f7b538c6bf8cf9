# The otel-bridge sidecar. Build: docker build -t otel-bridge .   Run: docker run -p 8318:8318 otel-bridge
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_bridge ./otel_bridge
RUN pip install ".[redis]" && rm -rf /src

# An unprivileged user: the sidecar needs no file system and no privileged port.
RUN useradd --system --uid 10001 --no-create-home otel-bridge
USER 10001
WORKDIR /

EXPOSE 8318
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8318/v1/health', timeout=2)"]
ENTRYPOINT ["otel-bridge"]
CMD ["serve", "--host", "0.0.0.0"]
