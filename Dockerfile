# syntax=docker/dockerfile:1
# Build:  docker build -t northflank-backup-exporter .
# Run:    docker run -e NORTHFLANK_API_TOKEN -p 10117:10117 northflank-backup-exporter
# The base is pinned to a patch release; pin its digest too (python:...@sha256:...) where
# builds must be reproducible, and let Renovate or Dependabot move it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: the exporter's wheel and the wheels of everything it needs ---
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels /src

# --- runtime: those wheels installed offline, nothing else ---
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="northflank-backup-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Northflank backups" \
      org.opencontainers.image.source="https://github.com/northflank-backup-exporter/northflank-backup-exporter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "northflank-backup-exporter==${VERSION}" \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter

# Nothing is written at run time: the image works with a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 10117
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["python", "-m", "exporter.healthcheck"]
# Supply the token with -e NORTHFLANK_API_TOKEN=... or mount a config file and pass
# --config.file=/etc/northflank-backup-exporter/config.yaml. Signals reach the exporter
# directly (exec form, PID 1): SIGTERM stops it, SIGHUP reloads its configuration.
ENTRYPOINT ["northflank-backup-exporter"]
CMD []
