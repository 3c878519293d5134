"""Configuration: the example file, defaults, environment, token sources, and every bad case."""

import os
import re
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import ConfigError, load_config

EXAMPLE = Path(__file__).parent.parent / "config.example.yaml"
SECRET = "nf-secret-in-config-7c1e"


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_example_file_loads_with_its_documented_values():
    config = load_config(str(EXAMPLE), {"NORTHFLANK_API_TOKEN": SECRET})
    assert config.accounts[0].northflank.token == SECRET
    assert config.accounts[0].northflank.api_url == "https://api.northflank.com"
    assert config.accounts[0].northflank.team is None
    assert config.accounts[0].destinations == ()
    assert (config.poll.interval, config.poll.timeout, config.poll.concurrency) == (300, 30, 4)
    assert config.poll.stale_after == 1800
    assert config.expiry_warning_window == 86400
    assert (config.listen_host, config.listen_port) == ("", 10117)


def test_every_key_but_the_token_has_a_default(tmp_path):
    config = load_config(write(tmp_path, f"northflank:\n  token: {SECRET}\n"), {})
    assert config == load_config(str(EXAMPLE), {"NORTHFLANK_API_TOKEN": SECRET}).__class__(
        accounts=config.accounts, source=config.source
    )


def test_no_file_at_all_takes_the_token_and_url_from_the_environment():
    config = load_config(
        None, {"NF_API_TOKEN": SECRET, "NORTHFLANK_API_BASE_URL": "http://127.0.0.1:9/"}
    )
    assert config.accounts[0].northflank.token == SECRET
    assert config.accounts[0].northflank.api_url == "http://127.0.0.1:9"


def test_full_file(tmp_path):
    path = write(
        tmp_path,
        f"""
northflank:
  api_url: http://127.0.0.1:8080
  token: "{SECRET}"
  team: platform-team
destinations: [primary, logs-2]
poll: {{interval: 1h30m, timeout: 90s, concurrency: 8, stale_after: 2h, max_retries: 0}}
expiry: {{warning_window: 2d}}
web: {{listen_address: "127.0.0.1:9999"}}
""",
    )
    config = load_config(path, {})
    assert config.accounts[0].northflank.team == "platform-team"
    assert config.accounts[0].destinations == ("primary", "logs-2")
    assert (config.poll.interval, config.poll.timeout, config.poll.concurrency) == (5400, 90, 8)
    assert config.poll.max_retries == 0
    assert config.expiry_warning_window == 172800
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9999)


def test_token_file_is_read_and_stripped(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    token_file.chmod(0o600)
    config = load_config(write(tmp_path, f"northflank:\n  token_file: {token_file}\n"), {})
    assert config.accounts[0].northflank.token == SECRET


def test_a_world_readable_token_file_is_warned_about(tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text(SECRET)
    token_file.chmod(0o644)
    load_config(write(tmp_path, f"northflank:\n  token_file: {token_file}\n"), {})
    assert "readable by every user" in caplog.text
    assert SECRET not in caplog.text


def test_the_config_repr_never_shows_the_token():
    config = load_config(None, {"NORTHFLANK_API_TOKEN": SECRET})
    assert SECRET not in repr(config)


BAD_CONFIGS = [
    ("unknown top-level key", "northflank: {token: t}\npolling: {}\n", "polling: unknown key"),
    (
        "unknown nested key",
        "northflank: {token: t}\npoll: {intervall: 5m}\n",
        "poll.intervall: unknown key",
    ),
    (
        "wrong type for a section",
        "northflank: {token: t}\npoll: 5m\n",
        "poll: expected a mapping of settings",
    ),
    (
        "bad duration",
        "northflank: {token: t}\npoll: {interval: 5x}\n",
        "poll.interval: invalid duration '5x'",
    ),
    (
        "number for a duration",
        "northflank: {token: t}\npoll: {timeout: 30}\n",
        "poll.timeout: expected a duration string",
    ),
    (
        "zero duration",
        "northflank: {token: t}\npoll: {interval: 0s}\n",
        "poll.interval: must be longer than 0s",
    ),
    (
        "wrong type for a count",
        "northflank: {token: t}\npoll: {concurrency: many}\n",
        "poll.concurrency: expected a whole number of at least 1",
    ),
    (
        "zero concurrency",
        "northflank: {token: t}\npoll: {concurrency: 0}\n",
        "poll.concurrency: expected a whole number of at least 1",
    ),
    (
        "bad url",
        "northflank: {token: t, api_url: api.northflank.com}\n",
        "northflank.api_url: expected an http:// or https:// URL",
    ),
    (
        "destinations not a list",
        "northflank: {token: t}\ndestinations: primary\n",
        "destinations: expected a list of destination ids",
    ),
    (
        "bad destination id",
        'northflank: {token: t}\ndestinations: ["a/b"]\n',
        "destinations: expected an id",
    ),
    (
        "bad listen address",
        "northflank: {token: t}\nweb: {listen_address: localhost}\n",
        "web.listen_address: invalid listen address",
    ),
    ("missing token", "poll: {interval: 5m}\n", "northflank.token: no API token"),
    ("empty token", "northflank: {token: ''}\n", "northflank.token: expected a token string"),
    (
        "token of the wrong type",
        f"northflank: {{token: [{SECRET}]}}\n",
        "northflank.token: expected a token string",
    ),
    (
        "unset environment variable",
        "northflank: {token: '${NO_SUCH_VAR_X}'}\n",
        "northflank.token: environment variable NO_SUCH_VAR_X is not set",
    ),
    (
        "token and token_file",
        "northflank: {token: t, token_file: /x}\n",
        "northflank.token: set either token or token_file, not both",
    ),
    (
        "unreadable token file",
        "northflank: {token_file: /nonexistent/token}\n",
        "northflank.token_file: cannot read /nonexistent/token: No such file or directory",
    ),
    (
        "budget too small",
        "northflank: {token: t}\nrate_limit: {requests_per_hour: 5}\n",
        "rate_limit.requests_per_hour: expected a whole number of at least 10",
    ),
    (
        "negative reserve",
        "northflank: {token: t}\nrate_limit: {reserve: -1}\n",
        "rate_limit.reserve: expected a whole number of at least 0",
    ),
    (
        "incremental not a boolean",
        "northflank: {token: t}\npoll: {incremental: 'yes'}\n",
        "poll.incremental: expected true or false",
    ),
    (
        "bad regular expression",
        "northflank: {token: t}\naddons: {include: ['shop/(']}\n",
        "addons.include: invalid regular expression 'shop/('",
    ),
    (
        # it would stall polls and scrapes alike, on the event loop holding the GIL
        "catastrophic backtracking",
        "northflank: {token: t}\ncoverage: {exclude: ['(a+)+b']}\n",
        "coverage.exclude: regular expression '(a+)+b' could backtrack without end (a "
        "repetition inside an unbounded repetition)",
    ),
    (
        "filter not a list",
        "northflank: {token: t}\naddons: {exclude: 'a/b'}\n",
        "addons.exclude: expected a list of regular expressions",
    ),
    (
        "enabled not a boolean",
        "northflank: {token: t}\naddons: {enabled: 'no'}\n",
        "addons.enabled: expected true or false",
    ),
    (
        "bad schedule duration",
        "northflank: {token: t}\nschedule: {grace: 1 hour}\n",
        "schedule.grace: invalid duration",
    ),
    (
        "drill pattern that backtracks",
        "northflank: {token: t}\nrestores: {drills: [{match: '(a+)+', every: 30d}]}\n",
        "restores.drills: [0].match: regular expression '(a+)+' could backtrack",
    ),
    (
        "drill without an interval",
        "northflank: {token: t}\nrestores: {drills: [{match: 'prod/.*', every: monthly}]}\n",
        "restores.drills: [0].every: invalid duration",
    ),
    (
        "drill with another key",
        "northflank: {token: t}\nrestores: {drills: [{match: 'prod/.*', each: 30d}]}\n",
        "restores.drills: [0]: expected exactly the keys match and every",
    ),
    ("not yaml", "northflank: {token: t\n", "not valid YAML at line 2"),
    ("not a mapping", "- a\n- b\n", "(top level): expected a mapping of settings"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_2_with_one_line_naming_file_and_key(
    tmp_path, capsys, monkeypatch, case, text, message
):
    for name in ("NORTHFLANK_API_TOKEN", "NF_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = write(tmp_path, text)
    assert main(["--config.file", path, "--once"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"northflank-backup-exporter: error: {path}: ")
    assert message in lines[0]
    assert SECRET not in captured.err


def test_a_missing_config_file(tmp_path, capsys):
    assert main(["--config.file", str(tmp_path / "absent.yaml")]) == 2
    assert re.fullmatch(
        r"northflank-backup-exporter: error: .*absent.yaml: cannot read config "
        r"file: No such file or directory\n",
        capsys.readouterr().err,
    )


def test_a_bad_listen_flag(capsys, monkeypatch):
    monkeypatch.setenv("NORTHFLANK_API_TOKEN", SECRET)
    assert main(["--web.listen-address", "nope", "--once"]) == 2
    assert "--web.listen-address: invalid listen address 'nope'" in capsys.readouterr().err


def test_environment_expansion_in_any_value(tmp_path):
    path = write(tmp_path, "northflank:\n  token: ${T}\n  api_url: http://${HOST}:8080\n")
    config = load_config(path, {"T": SECRET, "HOST": "127.0.0.1"})
    assert config.accounts[0].northflank.api_url == "http://127.0.0.1:8080"


def test_config_error_is_raised_not_exit_for_library_use(tmp_path):
    with pytest.raises(ConfigError, match=r"poll\.interval"):
        load_config(write(tmp_path, "northflank: {token: t}\npoll: {interval: soon}\n"), {})


def test_the_environment_of_this_process_is_the_default(monkeypatch):
    monkeypatch.setenv("NORTHFLANK_API_TOKEN", SECRET)
    assert load_config(None).accounts[0].northflank.token == SECRET
    assert os.environ["NORTHFLANK_API_TOKEN"] == SECRET


def test_addon_and_schedule_settings(tmp_path):
    path = write(
        tmp_path,
        """
northflank: {token: t}
addons: {enabled: true, include: ["shop/.*", "billing/ledger-db"], exclude: [".*-staging"]}
schedule: {tolerance: 2m, grace: 30m, lookback: 3d}
""",
    )
    rules = load_config(path, {}).addons
    assert rules.wants("shop", "orders-db")
    assert rules.wants("billing", "ledger-db")
    assert not rules.wants("billing", "ledger-db-2")  # anchored: the whole "project/addon"
    assert not rules.wants("shop", "orders-staging")
    assert (rules.tolerance, rules.grace, rules.lookback) == (120, 1800, 259200)


def test_addon_defaults():
    rules = load_config(None, {"NORTHFLANK_API_TOKEN": SECRET}).addons
    assert rules.enabled
    assert rules.wants("any", "thing")
    assert (rules.tolerance, rules.grace, rules.lookback) == (300, 3600, 604800)


@pytest.mark.parametrize("interval", ["99999999999999999999999w", "366d", "53w"])
def test_durations_longer_than_a_year_are_refused(tmp_path, interval):
    path = write(tmp_path, f"northflank: {{token: t}}\npoll: {{interval: {interval}}}\n")
    with pytest.raises(ConfigError, match=r"poll\.interval: must be at most a year"):
        load_config(path, {})


def test_a_config_file_that_is_not_utf8_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"northflank: {token: \xff\xfe}\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(path), {})
    assert str(error.value) == f"{path}: not UTF-8 text (byte 20)"


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("prod/(postgres|mysql)-.*", None),
        ("(?:a|b)+/db", None),  # read as a character class
        ("[a-z]+/db-[0-9]+", None),
        (".*a.*b.*", None),
        ("(a+)+b", "a repetition inside an unbounded repetition"),
        ("(a{1,3})*", "a repetition inside an unbounded repetition"),
        ("(a|ab)*c", "an alternation inside an unbounded repetition"),
        (r"(x)\1", "a backreference"),
        (".*a.*b.*c.*d", "more than 3 unbounded repetitions"),
    ],
)
def test_patterns_that_could_backtrack_without_end_are_refused(pattern, refused):
    from exporter.patterns import compile_pattern

    if refused is None:
        assert compile_pattern(pattern).pattern == pattern
    else:
        with pytest.raises(ValueError, match=re.escape(refused)):
            compile_pattern(pattern)
