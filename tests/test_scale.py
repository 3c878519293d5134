"""Scaling out: several accounts in one exporter, and one account's destinations over shards."""

from dataclasses import replace
from pathlib import Path

import pytest

from exporter.config import (
    Account,
    Config,
    ConfigError,
    NorthflankSettings,
    RateLimitSettings,
    build_config,
    load_config,
)
from exporter.runtime import Exporter
from exporter.shard import Shard
from tests.conftest import config_for, parse_samples, pick, poll_once, run

# Series that describe one exporter process or its requests, not the backups it reads.
PER_PROCESS = (
    "northflank_exporter_api_requests",
    "northflank_exporter_rate_limit",
    "northflank_exporter_discovery_up",
    "northflank_exporter_throttled",
    "northflank_exporter_build",
    "northflank_exporter_shard",
    "northflank_exporter_total_shards",
    "northflank_exporter_config_last_reload",
    "northflank_exporter_poll_duration_seconds",  # a timing
)


def backup_samples(exporter):
    """The account-level series about destinations, addons and their polls."""
    return {
        key: value
        for key, value in parse_samples(exporter.exposition().decode()).items()
        if key[0].startswith("northflank_") and not key[0].startswith(PER_PROCESS)
    }


def destinations_of(samples):
    return {
        dict(labels)["destination"]
        for (name, labels), _ in samples.items()
        if name == "northflank_up"
    }


def test_three_shards_split_the_destinations_and_add_up_to_one_exporter(start_simulator, clock):
    simulator = start_simulator(destinations=9, backups_per_destination=80)
    whole = Exporter(config_for(simulator), clock=clock)
    poll_once(whole)
    expected = backup_samples(whole)
    assert len(destinations_of(expected)) == 9

    shards = []
    for ordinal in range(3):
        exporter = Exporter(replace(config_for(simulator), shard=Shard(ordinal, 3)), clock=clock)
        assert poll_once(exporter)
        shards.append(backup_samples(exporter))
        samples = parse_samples(exporter.exposition().decode())
        assert pick(samples, "northflank_exporter_shard_ordinal") == ordinal
        assert pick(samples, "northflank_exporter_total_shards") == 3

    owned = [destinations_of(samples) for samples in shards]
    assert all(owned), "every shard polls some of the nine destinations"
    assert sum(map(len, owned)) == 9 and set().union(*owned) == destinations_of(expected)
    combined = {key: value for samples in shards for key, value in samples.items()}
    assert combined == expected


def test_an_unsharded_exporter_says_so(simulator, clock):
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_exporter_shard_ordinal") == 0
    assert pick(samples, "northflank_exporter_total_shards") == 1


def two_accounts(first, second, **budget):
    def account(name, simulator):
        return Account(
            name,
            NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
            rate_limit=RateLimitSettings(**budget) if budget else RateLimitSettings(10**6, 0),
        )

    return replace(
        config_for(first), accounts=(account("team-a", first), account("team-b", second))
    )


def test_each_account_is_polled_with_its_token_and_labelled(start_simulator, clock):
    first = start_simulator(destinations=2, token="token-of-team-a")
    second = start_simulator(destinations=3, seed=11, token="token-of-team-b")
    exporter = Exporter(two_accounts(first, second), clock=clock)
    assert poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    for account, simulator in (("team-a", first), ("team-b", second)):
        alone = Exporter(config_for(simulator), clock=clock)
        poll_once(alone)
        # The account's series are exactly what an exporter of that account alone reports.
        assert {
            (name, labels - {("account", account)}): value
            for (name, labels), value in backup_samples(exporter).items()
            if ("account", account) in labels
        } == {
            (name, labels - {("account", "default")}): value
            for (name, labels), value in backup_samples(alone).items()
        }
        assert all(r.status == 200 for r in simulator.requests)  # each token on its own API
    labelled = [labels for (name, labels) in samples if name.startswith("northflank_")]
    unlabelled = {
        name
        for (name, labels) in samples
        if name.startswith("northflank_") and "account" not in dict(labels)
    }
    assert unlabelled == {
        "northflank_exporter_build_info",
        "northflank_exporter_shard_ordinal",
        "northflank_exporter_total_shards",
        "northflank_exporter_config_last_reload_successful",
        "northflank_exporter_config_last_reload_success_timestamp_seconds",
    }
    assert {dict(labels).get("account") for labels in labelled} == {"team-a", "team-b", None}


def test_accounts_of_one_api_url_share_one_connection_pool_each_request_with_its_token(
    start_simulator, clock
):
    """One pool per API URL, not per account (1,000 accounts held 1,008 file descriptors):
    each request still carries its own account's token."""
    simulator = start_simulator(destinations=1, token="token-of-team-a")
    other = start_simulator(destinations=1, token="token-of-team-b")
    config = two_accounts(simulator, other)
    team_b = replace(config.accounts[1].northflank, api_url=simulator.base_url)
    config = replace(
        config, accounts=(config.accounts[0], replace(config.accounts[1], northflank=team_b))
    )
    exporter = Exporter(config, clock=clock)
    first, second = exporter.parts
    assert first.context.client._http is second.context.client._http
    run(exporter.poll_once())
    samples = parse_samples(exporter.exposition().decode())
    # team-b's token is not the simulator's: its answers are 401, team-a's are 200
    assert pick(samples, "northflank_up", account="team-a", destination="primary-backups") == 1
    assert pick(samples, "northflank_exporter_discovery_up", account="team-b") == 0
    assert {r.status for r in simulator.requests} == {200, 401}
    run(exporter.aclose())
    assert first.context.client._http.http.is_closed


def test_each_account_spends_its_own_budget(start_simulator, clock):
    first = start_simulator(destinations=1, token="token-of-team-a")
    second = start_simulator(destinations=1, seed=11, token="token-of-team-b")
    config = two_accounts(first, second, requests_per_hour=500, reserve=0)
    config = replace(
        config,
        accounts=(
            config.accounts[0],
            replace(config.accounts[1], rate_limit=RateLimitSettings(900, 0)),
        ),
    )
    exporter = Exporter(config, clock=clock)
    assert poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    budget = "northflank_exporter_rate_limit_budget_requests_per_hour"
    assert pick(samples, budget, account="team-a") == 500
    assert pick(samples, budget, account="team-b") == 900
    assert exporter.parts[0].budget is not exporter.parts[1].budget
    requests = "northflank_exporter_api_requests_total"
    for account, simulator in (("team-a", first), ("team-b", second)):
        made = sum(
            value
            for (name, labels), value in samples.items()
            if name == requests and ("account", account) in labels
        )
        assert made == len(simulator.requests)


BASE = {"northflank": {"api_url": "https://nf.example"}, "rate_limit": {"requests_per_hour": 600}}


def test_accounts_in_yaml_inherit_the_top_level_defaults():
    config = build_config(
        {
            **BASE,
            "accounts": [
                {"name": "team-a", "token": "a-token", "destinations": ["db-backups"]},
                {
                    "name": "team-b",
                    "token": "b-token",
                    "api_url": "https://other.example",
                    "team": "platform",
                    "rate_limit": {"reserve": 5},
                },
            ],
        },
        {},
        "test.yaml",
    )
    first, second = config.accounts
    assert (first.name, first.northflank.api_url, first.destinations) == (
        "team-a",
        "https://nf.example",
        ("db-backups",),
    )
    assert first.rate_limit == RateLimitSettings(600, 100)
    assert (second.northflank.api_url, second.northflank.team) == (
        "https://other.example",
        "platform",
    )
    assert second.rate_limit == RateLimitSettings(600, 5)
    assert config.tokens() == ["a-token", "b-token"]


def test_without_accounts_there_is_one_named_default():
    config = build_config({"northflank": {"token": "t0ken"}}, {}, "test.yaml")
    (account,) = config.accounts
    assert account.name == "default" and account.northflank.token == "t0ken"


@pytest.mark.parametrize(
    ("accounts", "extra", "message"),
    [
        ([{"token": "x"}], {}, r"^accounts\[0\]\.name: missing"),
        ([{"name": "a"}], {}, r"^accounts\[0\]\.token: missing"),
        ([{"name": "a", "token": "x"}, {"name": "a", "token": "y"}], {}, "used twice"),
        (  # polled and exported twice, silently, before; the message never shows the token
            [{"name": "a", "token": "s3cret-token"}, {"name": "b", "token": "s3cret-token"}],
            {},
            r"^accounts\[1\]\.token: account 'b' has the same API token as 'a'[^3]*$",
        ),
        ([{"name": "a", "token": "x", "colour": "red"}], {}, r"accounts\[0\]\.colour: unknown key"),
        ([], {}, "expected a list of accounts"),
        ([{"name": "a", "token": "x"}], {"destinations": ["d"]}, "^destinations: with accounts"),
        (
            [{"name": "a", "token": "x"}],
            {"northflank": {"token": "t"}},
            "^northflank.token: with accounts",
        ),
    ],
)
def test_account_mistakes_are_named(accounts, extra, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"accounts": accounts, **extra}, {}, "test.yaml")


def test_the_commented_accounts_example_works_once_uncommented(tmp_path):
    example = (Path(__file__).parent.parent / "config.example.yaml").read_text().splitlines()
    start = example.index("# accounts:")
    lines = [line for line in example[:start] if not line.strip().startswith("token:")]
    lines += [line[2:] for line in example[start:] if line.startswith("#")]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    environ = {"PLATFORM_TOKEN": "platform-token"}
    secret = tmp_path / "data-team-token"
    secret.write_text("data-token\n")
    path.write_text(path.read_text().replace("/run/secrets/data-team-token", str(secret)))
    config = load_config(str(path), environ)
    assert [a.name for a in config.accounts] == ["platform", "data-team"]
    assert config.accounts[1].rate_limit.requests_per_hour == 200


def test_a_thousand_accounts_of_one_api_url_make_one_pool(clock):
    """Each account used to make its own httpx client, with its own TLS context: 1,000 accounts
    took 824 MB at start. They now share one (11 MB)."""
    accounts = tuple(
        Account(f"a{n}", NorthflankSettings(api_url="http://127.0.0.1:9", token=f"tok-{n:04d}"))
        for n in range(1000)
    )
    exporter = Exporter(replace(Config(), accounts=accounts), clock=clock)
    pools = {id(part.context.client._http) for part in exporter.parts}
    assert len(pools) == 1
    run(exporter.aclose())
