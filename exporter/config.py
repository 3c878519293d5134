"""Configuration: a YAML file checked key by key, with a default for everything but the token.

Every problem is reported as one line naming the file and the dotted key; values of secret
keys are never echoed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from exporter.config_values import (
    _boolean,
    _drills,
    _duration,
    _identifier,
    _identifiers,
    _listen_address,
    _non_negative_int,
    _path,
    _patterns,
    _positive_int,
    _requests_per_hour,
    _secret,
    _url,
    parse_listen_address,
)
from exporter.durations import DAY, HOUR
from exporter.shard import Shard

DEFAULT_API_URL = "https://api.northflank.com"
TOKEN_ENV_VARS = ("NORTHFLANK_API_TOKEN", "NF_API_TOKEN")
API_URL_ENV_VAR = "NORTHFLANK_API_BASE_URL"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
T = TypeVar("T")


class ConfigError(Exception):
    """A configuration problem, already phrased as the one line the user sees."""


@dataclass(frozen=True)
class NorthflankSettings:
    api_url: str = DEFAULT_API_URL
    token: str = field(default="", repr=False)
    team: str | None = None


@dataclass(frozen=True)
class PollSettings:
    interval: float = 300.0
    timeout: float = 30.0
    concurrency: int = 4
    stale_after: float = 1800.0
    max_retries: int = 3
    retry_backoff: float = 1.0
    max_retry_wait: float = 60.0
    max_pages: int = 10000
    max_body_bytes: int = 32 * 2**20
    full_resync_interval: float = 6.0 * HOUR
    incremental: bool = True
    # read a destination shortly after its addons' slots (poll_schedule.py), not every interval
    around_slots: bool = True


@dataclass(frozen=True)
class RateLimitSettings:
    requests_per_hour: int = 300
    reserve: int = 100


@dataclass(frozen=True)
class AddonRules:
    """Which addons get series, and how their schedules are judged."""

    enabled: bool = True
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    tolerance: float = 300.0
    grace: float = 1.0 * HOUR
    lookback: float = 7.0 * DAY

    def wants(self, project: str, addon: str) -> bool:
        """include/exclude are anchored regular expressions over "project/addon"."""
        if not self.enabled:
            return False
        key = f"{project}/{addon}"
        if self.include and not any(p.fullmatch(key) for p in self.include):
            return False
        return not any(p.fullmatch(key) for p in self.exclude)


@dataclass(frozen=True)
class CoverageSettings:
    """The inventory of projects, addons and volumes, and what it reads (`coverage:`)."""

    enabled: bool = True
    interval: float = 1.0 * HOUR
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    # An addon's schedules are read again at least this often (new addons at once).
    schedules_max_age: float = 6.0 * HOUR

    def wants(self, project: str, item: str) -> bool:
        """include/exclude are anchored regular expressions over "project/addon" (or volume)."""
        key = f"{project}/{item}"
        if self.include and not any(p.fullmatch(key) for p in self.include):
            return False
        return not any(p.fullmatch(key) for p in self.exclude)


@dataclass(frozen=True)
class RestoreSettings:
    """Reading each addon's restores, and the drills they must pass (`restores:`)."""

    enabled: bool = True
    interval: float = 1.0 * DAY  # each addon's restores read at most this often
    # (pattern over "project/addon", how often it must be restored): the shortest that matches
    drills: tuple[tuple[re.Pattern[str], float], ...] = ()

    def drill_every(self, project: str, addon: str) -> float | None:
        """How often the addon must be restored; None when no drill policy matches it."""
        key = f"{project}/{addon}"
        matched = [every for pattern, every in self.drills if pattern.fullmatch(key)]
        return min(matched, default=None)


DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class Account:
    """One token (a team, an organisation) with its own destinations and request budget."""

    name: str = DEFAULT_ACCOUNT
    northflank: NorthflankSettings = field(default_factory=NorthflankSettings)
    destinations: tuple[str, ...] = ()
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)


@dataclass(frozen=True)
class Config:
    """The whole configuration. A file without `accounts:` describes one account, "default",
    with its top-level northflank, destinations and rate_limit keys."""

    accounts: tuple[Account, ...] = (Account(),)
    poll: PollSettings = field(default_factory=PollSettings)
    expiry_warning_window: float = 1.0 * DAY
    addons: AddonRules = field(default_factory=AddonRules)
    coverage: CoverageSettings = field(default_factory=CoverageSettings)
    restores: RestoreSettings = field(default_factory=RestoreSettings)
    listen_host: str = ""
    listen_port: int = 10117
    shard: Shard = field(default_factory=Shard)
    source: str = "(no config file)"

    def tokens(self) -> list[str]:
        return [account.northflank.token for account in self.accounts]

    def with_listen_address(self, address: str) -> Config:
        host, port = parse_listen_address(address)
        return replace(self, listen_host=host, listen_port=port)


Converter = Callable[[Any], Any]
SCHEMA: dict[str, Any] = {
    "northflank": {
        "api_url": _url,
        "token": _secret,
        "token_file": _path,
        "team": _identifier,
    },
    "destinations": _identifiers,
    "poll": {
        "interval": _duration,
        "timeout": _duration,
        "concurrency": _positive_int,
        "stale_after": _duration,
        "max_retries": _non_negative_int,
        "retry_backoff": _duration,
        "max_retry_wait": _duration,
        "max_pages": _positive_int,
        "max_body_bytes": _positive_int,
        "full_resync_interval": _duration,
        "incremental": _boolean,
        "around_slots": _boolean,
    },
    "rate_limit": {"requests_per_hour": _requests_per_hour, "reserve": _non_negative_int},
    "expiry": {"warning_window": _duration},
    "addons": {"enabled": _boolean, "include": _patterns, "exclude": _patterns},
    "schedule": {"tolerance": _duration, "grace": _duration, "lookback": _duration},
    "coverage": {
        "enabled": _boolean,
        "interval": _duration,
        "include": _patterns,
        "exclude": _patterns,
        "schedules_max_age": _duration,
    },
    "restores": {"enabled": _boolean, "interval": _duration, "drills": _drills},
    "web": {"listen_address": _listen_address},
    "accounts": "accounts",  # a list of ACCOUNT_SCHEMA mappings, checked by _accounts()
}
ACCOUNT_SCHEMA: dict[str, Any] = {
    "name": _identifier,
    "api_url": _url,
    "token": _secret,
    "token_file": _path,
    "team": _identifier,
    "destinations": _identifiers,
    "rate_limit": SCHEMA["rate_limit"],
}
# Without `accounts:` these describe the one account; with it, each account says its own.
SINGLE_ACCOUNT_KEYS = ("northflank.token", "northflank.token_file", "northflank.team")
SECRET_KEYS = frozenset({"northflank.token"})


def _expand_env(value: str, environ: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set")
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)


def _validate(
    raw: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Check `raw` against `schema`; return a flat {dotted.key: typed value} of the keys given."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str) or key not in schema:
            raise ConfigError(f"{dotted}: unknown key")
        expected = schema[key]
        if expected == "accounts":
            values[dotted] = value
            continue
        if isinstance(expected, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping of settings")
            values.update(_validate(value, expected, f"{dotted}.", environ))
            continue
        try:
            expanded = _expand_env(value, environ) if isinstance(value, str) else value
            values[dotted] = expected(expanded)
        except ValueError as error:
            raise ConfigError(f"{dotted}: {error}") from None
    return values


def _read_token_file(path: str, key: str = "northflank.token_file") -> str:
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{key}: cannot read {path}: {error.strerror}") from None
    if mode & stat.S_IROTH:
        logging.getLogger(__name__).warning(
            "token file %s is readable by every user; restrict it with chmod 600", path
        )
    try:
        return _secret(text)
    except ValueError:
        raise ConfigError(f"{key}: {path} holds no usable token") from None


def _given_token(values: Mapping[str, Any], prefix: str) -> str | None:
    """`{prefix}token` or the content of `{prefix}token_file`, if either is set."""
    token, token_file = f"{prefix}token", f"{prefix}token_file"
    if token in values and token_file in values:
        raise ConfigError(f"{token}: set either token or token_file, not both")
    if token_file in values:
        return _read_token_file(values[token_file], token_file)
    return values.get(token)


def _resolve_token(values: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    given = _given_token(values, "northflank.")
    if given is not None:
        return given
    for name in TOKEN_ENV_VARS:
        if environ.get(name, "").strip():
            try:
                return _secret(environ[name])
            except ValueError:
                raise ConfigError(f"northflank.token: {name} holds no usable token") from None
    raise ConfigError(
        "northflank.token: no API token; set northflank.token, northflank.token_file "
        f"or the {TOKEN_ENV_VARS[0]} environment variable"
    )


ADDON_RULE_KEYS = {
    "enabled": "addons.enabled",
    "include": "addons.include",
    "exclude": "addons.exclude",
    "tolerance": "schedule.tolerance",
    "grace": "schedule.grace",
    "lookback": "schedule.lookback",
}


def _fields(cls: Any) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def _settings(
    cls: type[T], values: Mapping[str, Any], keys: Mapping[str, str], defaults: T | None = None
) -> T:
    """A settings dataclass from the dotted keys given, `defaults` (or the class's) for the rest."""
    defaults = defaults if defaults is not None else cls()
    return cls(**{name: values.get(key, getattr(defaults, name)) for name, key in keys.items()})


def _default_api_url(environ: Mapping[str, str]) -> str:
    try:
        return _url(environ.get(API_URL_ENV_VAR, DEFAULT_API_URL))
    except ValueError as error:
        raise ConfigError(f"northflank.api_url: {API_URL_ENV_VAR}: {error}") from None


def _rate_limit(
    values: Mapping[str, Any], prefix: str, defaults: RateLimitSettings
) -> RateLimitSettings:
    keys = {name: f"{prefix}rate_limit.{name}" for name in _fields(RateLimitSettings)}
    return _settings(RateLimitSettings, values, keys, defaults)


def _accounts(
    raw: Any, environ: Mapping[str, str], api_url: str, rate_limit: RateLimitSettings
) -> tuple[Account, ...]:
    """`accounts:`: each a name, a token (or token_file), optional api_url, team, destinations
    and rate_limit; the top-level api_url and rate_limit are their defaults."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("accounts: expected a list of accounts (name, token, ...)")
    accounts = []
    for index, item in enumerate(raw):
        where = f"accounts[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a mapping with name and token")
        values = _validate(item, ACCOUNT_SCHEMA, f"{where}.", environ)
        if f"{where}.name" not in values:
            raise ConfigError(f"{where}.name: missing; it becomes the account label")
        token = _given_token(values, f"{where}.")
        if token is None:
            raise ConfigError(f"{where}.token: missing; set token or token_file")
        settings = NorthflankSettings(
            api_url=values.get(f"{where}.api_url", api_url),
            token=token,
            team=values.get(f"{where}.team"),
        )
        accounts.append(
            Account(
                values[f"{where}.name"],
                settings,
                values.get(f"{where}.destinations", ()),
                _rate_limit(values, f"{where}.", rate_limit),
            )
        )
    names = [account.name for account in accounts]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"accounts[{index}].name: {name!r} is used twice")
    seen: dict[tuple[str, str], str] = {}  # (api_url, token): the account that has it
    for index, account in enumerate(accounts):
        key = (account.northflank.api_url, account.northflank.token)
        if key in seen:
            # never the token itself: only which accounts share it
            raise ConfigError(
                f"accounts[{index}].token: account {account.name!r} has the same API token as "
                f"{seen[key]!r}: one account is polled and exported once (two names would "
                "export every series twice, and halve the token's budget)"
            )
        seen[key] = account.name
    return tuple(accounts)


def build_config(raw: Mapping[str, Any] | None, environ: Mapping[str, str], source: str) -> Config:
    """Turn a parsed YAML document into a Config; raise ConfigError (without the file name)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError("(top level): expected a mapping of settings")
    values = _validate(raw, SCHEMA, "", environ)
    api_url = values.get("northflank.api_url") or _default_api_url(environ)
    rate_limit = _rate_limit(values, "", RateLimitSettings())
    if "accounts" in values:
        for key in (*SINGLE_ACCOUNT_KEYS, "destinations"):
            if values.get(key):
                raise ConfigError(f"{key}: with accounts, set it on each account instead")
        accounts = _accounts(values["accounts"], environ, api_url, rate_limit)
    else:
        accounts = (_single_account(values, environ, api_url, rate_limit),)
    poll = _settings(PollSettings, values, {name: f"poll.{name}" for name in _fields(PollSettings)})
    config = Config(
        accounts=accounts,
        poll=poll,
        expiry_warning_window=values.get("expiry.warning_window", Config.expiry_warning_window),
        addons=_settings(AddonRules, values, ADDON_RULE_KEYS),
        coverage=_settings(
            CoverageSettings,
            values,
            {name: f"coverage.{name}" for name in _fields(CoverageSettings)},
        ),
        restores=_settings(
            RestoreSettings,
            values,
            {name: f"restores.{name}" for name in _fields(RestoreSettings)},
        ),
        source=source,
    )
    return config.with_listen_address(values.get("web.listen_address", ":10117"))


def _single_account(
    values: Mapping[str, Any],
    environ: Mapping[str, str],
    api_url: str,
    rate_limit: RateLimitSettings,
) -> Account:
    """The one account of a file without `accounts:`, from its top-level keys."""
    settings = NorthflankSettings(
        api_url=api_url,
        token=_resolve_token(values, environ),
        team=values.get("northflank.team"),
    )
    return Account(DEFAULT_ACCOUNT, settings, values.get("destinations", ()), rate_limit)


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the config file (or only the environment when `path` is None)."""
    environ = os.environ if environ is None else environ
    if path is None:
        return _with_source(None, "(no config file)", environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    return _with_source(raw, path, environ)


def _with_source(raw: Any, source: str, environ: Mapping[str, str]) -> Config:
    try:
        return build_config(raw, environ, source)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
