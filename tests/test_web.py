"""Every HTTP endpoint of a serving exporter, over real loopback connections."""

import gzip
import shutil
import subprocess
import time

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from exporter.runtime import Exporter
from tests.conftest import Serving, config_for, parse_samples, pick, series


@pytest.fixture
def serving(simulator, clock):
    with Serving(Exporter(config_for(simulator), clock=clock)) as running:
        yield running


def test_metrics_in_the_text_format(serving):
    serving.wait_ready()
    response = httpx.get(f"{serving.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_samples(response.text)
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert (
        "# HELP northflank_backups Backups listed and not yet expired, by status. "
        "Cached from the last poll" in response.text
    )


def without_process_metrics(text):
    return [line for line in text.splitlines() if not line.startswith("process_")]


def test_metrics_gzip_when_asked(serving):
    serving.wait_ready()
    raw = httpx.get(f"{serving.url}/metrics", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    plain = httpx.get(f"{serving.url}/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    unzipped = gzip.decompress(raw.content).decode() if raw.content[:2] == b"\x1f\x8b" else raw.text
    assert without_process_metrics(unzipped) == without_process_metrics(plain.text)


def test_metrics_in_openmetrics_when_negotiated(serving):
    serving.wait_ready()
    response = httpx.get(
        f"{serving.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in parse_om(response.text)}
    assert families["northflank_backup_destination"].type == "info"
    assert families["northflank_exporter_api_requests"].type == "counter"
    assert families["northflank_backups"].type == "gauge"


def test_landing_page_links_to_metrics(serving):
    response = httpx.get(f"{serving.url}/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<a href="/metrics">' in response.text


def test_health_and_readiness(start_simulator, clock):
    simulator = start_simulator()
    simulator.gate.clear()  # nothing is answered: the first poll cannot end
    with Serving(Exporter(config_for(simulator), clock=clock)) as running:
        assert httpx.get(f"{running.url}/-/healthy").status_code == 200
        assert httpx.get(f"{running.url}/-/ready").status_code == 503
        simulator.gate.set()
        running.wait_ready()
        assert httpx.get(f"{running.url}/-/ready").status_code == 200


def test_healthy_says_which_reads_wait_for_a_slot(simulator, clock):
    """Read around the slots (the default), the first reads put the next ones off to the
    addons' slots: /-/healthy stays 200 and names as many as the gauge has past an interval
    away, and the soonest of them."""
    config = config_for(simulator, around_slots=True)
    with Serving(Exporter(config, clock=clock)) as running:
        running.wait_ready()
        answer = httpx.get(f"{running.url}/-/healthy")
        samples = parse_samples(httpx.get(f"{running.url}/metrics").text)
    due = series(samples, "northflank_exporter_next_poll_timestamp_seconds")
    assert len(due) == 2
    put_off = sorted(
        (at, dict(labels)["destination"]) for labels, at in due.items() if at > clock.now + 300
    )
    assert put_off  # the simulator's scheduled addons put at least one off
    at, first = put_off[0]
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    assert answer.status_code == 200
    assert answer.text == (
        f"Healthy\npoll:default: {len(put_off)} of 2 destinations read after their addons' "
        f"next slots (poll.around_slots); the next, {first}, at {when}\n"
    )


def test_unknown_paths_and_methods(serving):
    assert httpx.get(f"{serving.url}/nope").status_code == 404
    assert httpx.post(f"{serving.url}/metrics").status_code == 405


def test_no_default_python_collectors(serving):
    serving.wait_ready()
    text = httpx.get(f"{serving.url}/metrics").text
    assert "python_gc_" not in text
    assert "python_info" not in text
    assert "process_resident_memory_bytes" in text


def test_promtool_check_metrics_passes(serving):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required: .ci/run installs Debian's prometheus package"
    serving.wait_ready()
    exposition = httpx.get(f"{serving.url}/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == result.stderr == b""
