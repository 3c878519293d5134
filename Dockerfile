FROM python:3.11-slim

COPY pyproject.toml README.md /tmp/src/
COPY exporter /tmp/src/exporter
RUN pip install --no-cache-dir /tmp/src \
    && rm -rf /tmp/src \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter

# Nothing is written at run time: the image works with a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
EXPOSE 10117
# Supply the token with -e NORTHFLANK_API_TOKEN=... or mount a config file and pass
# --config.file=/etc/northflank-backup-exporter/config.yaml.
ENTRYPOINT ["northflank-backup-exporter"]
