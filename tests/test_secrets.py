"""The API token never appears in a log line, a metric, a page or an error, whatever happens."""

import os
import subprocess
import sys

import httpx
import pytest

from exporter.simulator import Faults
from tests.conftest import free_port, wait_until_ready

TOKEN = "nfTOKENcanary0123456789abcdefXYZ"
EXPORTER = [sys.executable, "-m", "exporter"]


def config_file(tmp_path, simulator, token_line):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"northflank:\n  api_url: {simulator.base_url}\n{token_line}\n"
        "poll: {interval: 1s, retry_backoff: 10ms, max_retries: 2}\n"
        "rate_limit: {requests_per_hour: 100000, reserve: 0}\n"
    )
    return str(path)


def test_token_is_absent_from_every_output(start_simulator, tmp_path):
    simulator = start_simulator(
        token=TOKEN,
        faults=Faults(error_rate=0.2, malformed_rate=0.1, destination_status={"backups-02": 403}),
    )
    outputs = []
    env = {**os.environ, "CANARY": TOKEN}
    for log_format in ("text", "json"):
        once = subprocess.run(
            [
                *EXPORTER,
                "--config.file",
                config_file(tmp_path, simulator, "  token: ${CANARY}"),
                "--once",
                "--log.level",
                "debug",
                "--log.format",
                log_format,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        outputs += [once.stdout, once.stderr]
        assert "northflank_up" in once.stdout

    port = free_port()
    process = subprocess.Popen(
        [
            *EXPORTER,
            "--config.file",
            config_file(tmp_path, simulator, "  token: ${CANARY}"),
            "--log.level",
            "debug",
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(port)
        for path in ("/", "/metrics", "/-/healthy", "/-/ready", "/nope"):
            outputs.append(httpx.get(f"http://127.0.0.1:{port}{path}").text)
        outputs.append(
            httpx.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Accept": "application/openmetrics-text"},
            ).text
        )
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    outputs += [out, err]

    # a wrong token: the 401 path
    wrong = subprocess.run(
        [
            *EXPORTER,
            "--config.file",
            config_file(tmp_path, simulator, f"  token: {TOKEN}x"),
            "--once",
            "--log.level",
            "debug",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr
    outputs += [wrong.stdout, wrong.stderr]

    # a config error around the token
    bad = subprocess.run(
        [*EXPORTER, "--config.file", config_file(tmp_path, simulator, f"  token: [{TOKEN}]")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    outputs += [bad.stdout, bad.stderr]

    assert any("poll failed" in text for text in outputs)  # errors were logged...
    leaks = [text for text in outputs if TOKEN in text]
    assert leaks == []  # ...and none of them carried the token
    assert not any("simulated-secret-key" in text or "AKIASIMULATED" in text for text in outputs)


def test_log_redaction_covers_exception_text(capsys):
    import logging

    from exporter.logs import redact, setup_logging

    setup_logging("debug", "text")
    redact([TOKEN])
    try:
        raise RuntimeError(f"something echoed {TOKEN}")
    except RuntimeError:
        logging.getLogger("test").exception("failure with %s", TOKEN)
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert err.count("<redacted>") == 2
    assert len(err.strip().splitlines()) == 1


def test_an_error_message_echoing_the_token_is_scrubbed_before_it_is_cut():
    import asyncio

    from exporter.api import ApiError
    from exporter.client import NorthflankClient
    from exporter.config import NorthflankSettings, PollSettings
    from exporter.exchange import RequestStats

    token = "eyJhbGciOiJIUzI1NiJ9.a-token-of-plausible-length"
    echo = {"error": {"status": 400, "message": "x" * 170 + f" your token {token} is bad"}}
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json=echo))

    async def ask():
        client = NorthflankClient(
            NorthflankSettings(api_url="http://api.test", token=token),
            PollSettings(),
            RequestStats(),
            transport=transport,
        )
        try:
            await client.list_destinations()
        finally:
            await client.aclose()

    with pytest.raises(ApiError) as error:
        asyncio.run(ask())
    message = str(error.value)
    assert "<redacted>" in message
    assert all(token[i : i + 8] not in message for i in range(len(token) - 8))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_token_with_quotes_and_backslashes_is_scrubbed_in_both_formats(capsys, fmt):
    import logging

    from exporter.logs import redact, setup_logging

    token = 'tok"en\\with-quotes-and-slashes'
    setup_logging("info", fmt)
    redact([token])
    logging.getLogger("test").warning("the API said: %s", token)
    err = capsys.readouterr().err
    assert "<redacted>" in err
    assert "with-quotes" not in err


def test_a_short_token_is_not_scrubbed_out_of_ordinary_text(capsys):
    import logging

    from exporter.logs import redact, setup_logging

    setup_logging("info", "text")
    redact(["2026"])
    logging.getLogger("test").warning("polled at 2026-12-02")
    assert "2026-12-02" in capsys.readouterr().err


def test_a_token_the_api_echoes_in_names_never_reaches_a_label(start_simulator, clock):
    """Names and types are the API's text: one that carries the token is scrubbed in every
    family, as a log line would be."""
    from exporter.runtime import Exporter
    from tests.conftest import config_for, poll_once

    simulator = start_simulator(token=TOKEN, destinations=1)
    echoed = {
        "id": "echo-1",
        "name": f"backup {TOKEN}",
        "status": "completed",
        "project": {"id": "p1", "name": f"project {TOKEN}"},
        "addon": {"id": "a1", "name": f"addon {TOKEN}"},
        "config": {"size": "10", "addonType": TOKEN, "addonVersion": f"v-{TOKEN}"},
        "createdAt": "2026-11-30T10:00:00Z",
        "completedAt": "2026-11-30T10:01:00Z",
        "expiredBy": 1_900_000_000_000,
    }
    simulator.add_backups("primary-backups", [echoed])
    exporter = Exporter(config_for(simulator), clock=clock)
    assert poll_once(exporter)
    text = exporter.exposition().decode()
    assert TOKEN not in text
    assert 'addon_name="addon <redacted>"' in text
    assert 'addon_type="<redacted>"' in text
