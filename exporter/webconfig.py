"""`--web.config.file` in the Prometheus exporter-toolkit format: TLS and basic auth.

tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_ca_file: ca.crt                        # optional
  client_auth_type: RequireAndVerifyClientCert  # or VerifyClientCertIfGiven, NoClientCert
  min_version: TLS12                            # TLS10 .. TLS13
basic_auth_users:
  alice: $2y$10$...                             # bcrypt hashes (htpasswd -B)
http_server_config:
  headers:                                      # added to every answer
    Strict-Transport-Security: max-age=31536000
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from exporter.config import ConfigError

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Python's ssl module cannot ask for a certificate without verifying it.
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version")
# The response headers exporter-toolkit lets http_server_config.headers set.
HEADERS = (
    "Strict-Transport-Security",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
)
# bcrypt reads at most 72 bytes of a password; the library refuses longer ones.
MAX_PASSWORD_BYTES = 72


@dataclass(frozen=True)
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def _tls_context(raw: Any, base: Path) -> ssl.SSLContext:
    if not isinstance(raw, dict):
        raise ConfigError("tls_server_config: expected a mapping of settings")
    for key in raw:
        if key not in TLS_KEYS:
            raise ConfigError(f"tls_server_config.{key}: unknown key")
    for key in ("cert_file", "key_file"):
        if not isinstance(raw.get(key), str):
            raise ConfigError(f"tls_server_config.{key}: required, a file path")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = raw.get("min_version", "TLS12")
    if version not in TLS_VERSIONS:
        raise ConfigError(
            f"tls_server_config.min_version: expected one of {', '.join(TLS_VERSIONS)}"
        )
    context.minimum_version = TLS_VERSIONS[version]
    try:
        context.load_cert_chain(base / raw["cert_file"], base / raw["key_file"])
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"tls_server_config.cert_file: cannot load the certificate and key: "
            f"{getattr(error, 'strerror', None) or error}"
        ) from None
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth in UNSUPPORTED_CLIENT_AUTH:
        raise ConfigError(
            f"tls_server_config.client_auth_type: {auth} is not supported; "
            "use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if auth not in CLIENT_AUTH:
        raise ConfigError(
            f"tls_server_config.client_auth_type: expected one of {', '.join(CLIENT_AUTH)}"
        )
    context.verify_mode = CLIENT_AUTH[auth]
    if auth != "NoClientCert":
        ca = raw.get("client_ca_file")
        if not isinstance(ca, str):
            raise ConfigError(
                "tls_server_config.client_ca_file: required to verify client certificates"
            )
        try:
            context.load_verify_locations(base / ca)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"tls_server_config.client_ca_file: cannot load: {error}") from None
    return context


def _users(raw: Any) -> dict[str, bytes]:
    if not isinstance(raw, dict):
        raise ConfigError("basic_auth_users: expected a mapping of user: bcrypt hash")
    users = {}
    for user, hashed in raw.items():
        if not isinstance(user, str) or not isinstance(hashed, str) or not hashed.startswith("$2"):
            raise ConfigError(f"basic_auth_users.{user}: expected a bcrypt hash ($2a$, $2b$, $2y$)")
        try:
            bcrypt.checkpw(b"", hashed.encode())  # a malformed hash fails here, not at login
        except ValueError:
            raise ConfigError(f"basic_auth_users.{user}: not a valid bcrypt hash") from None
        users[user] = hashed.encode()
    return users


def _http_server_config(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise ConfigError("http_server_config: expected a mapping of settings")
    for key in raw:
        if key not in ("headers", "http2"):
            raise ConfigError(f"http_server_config.{key}: unknown key")
    if raw.get("http2", False) not in (True, False):
        raise ConfigError("http_server_config.http2: expected true or false")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError("http_server_config.headers: expected a mapping of header: value")
    allowed = {name.lower(): name for name in HEADERS}
    chosen = []
    for name, value in headers.items():
        if not isinstance(name, str) or name.lower() not in allowed:
            raise ConfigError(f"http_server_config.headers.{name}: not one of {', '.join(HEADERS)}")
        if not isinstance(value, str) or any(c in value for c in "\r\n"):
            raise ConfigError(f"http_server_config.headers.{name}: expected a one-line value")
        chosen.append((allowed[name.lower()], value))
    return tuple(chosen)


def load_web_config(path: str) -> WebConfig:
    """Read and check the web config; ConfigError names the file and the key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read web config file: {error.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    try:
        if not isinstance(raw, dict):
            raise ConfigError("(top level): expected a mapping of settings")
        for key in raw:
            if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
                raise ConfigError(f"{key}: unknown key")
        base = Path(path).parent
        tls = _tls_context(raw["tls_server_config"], base) if "tls_server_config" in raw else None
        users = _users(raw["basic_auth_users"]) if "basic_auth_users" in raw else {}
        headers = (
            _http_server_config(raw["http_server_config"]) if "http_server_config" in raw else ()
        )
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return WebConfig(tls=tls, users=users, headers=headers)


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes; remembers what it verified, since
    bcrypt is slow on purpose and Prometheus sends the same credentials on every scrape."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        # An unknown user is checked against this, so that a wrong name takes as long as a
        # wrong password (same cost as the first real hash) and names cannot be enumerated.
        cost = int(next(iter(self._users.values())).split(b"$")[2]) if self._users else 10
        self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))

    def allows(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:
            return False  # no hash can match it, and bcrypt refuses to try
        known = self._users.get(user)
        hashed = self._dummy if known is None else known
        key = hashlib.sha256(hashed + b"\0" + secret).digest()
        with self._lock:
            if known is not None and any(hmac.compare_digest(key, seen) for seen in self._verified):
                return True
        if not bcrypt.checkpw(secret, hashed) or known is None:
            return False
        with self._lock:
            self._verified.add(key)
        return True
