"""Logging in text or JSON, one line per event, with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "<redacted>"
# Shorter strings are too likely to occur in ordinary text (a timestamp, an id) to scrub there;
# a real API token is a JWT, hundreds of characters long.
MIN_SECRET_LENGTH = 16


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text without any of the secrets (of a plausible length) in it."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return text


class _RedactingFormatter(logging.Formatter):
    """Formats a record, then removes every secret from the finished line (traceback included)."""

    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self._json = json_lines
        self.secrets: tuple[str, ...] = ()

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        message = record.getMessage()
        if record.exc_info:
            message = f"{message} | {self.formatException(record.exc_info)}"
        # Scrubbed before it is escaped into JSON, where a token's quotes would no longer match.
        message = scrub(message, self.secrets)
        when, level = when.replace("+00:00", "Z"), record.levelname.lower()
        if self._json:
            line = json.dumps({"ts": when, "level": level, "logger": record.name, "msg": message})
        else:
            line = f"{when} {level} {record.name}: {message}"
        return scrub(line.replace("\n", " "), self.secrets)


_formatter: _RedactingFormatter | None = None


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    global _formatter  # noqa: PLW0603 - logging is process-wide by nature
    _formatter = _RedactingFormatter(json_lines=fmt == "json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the exporter counts requests in metrics instead.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def redact(secrets: Iterable[str]) -> None:
    """Scrub these strings from every log line from now on."""
    if _formatter is not None:
        _formatter.secrets = tuple(secret for secret in secrets if secret)
