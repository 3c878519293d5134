"""The command line as a user runs it: real processes, real ports, real signals."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.simulator import Faults
from tests.conftest import TOKEN, free_port, parse_samples, pick, series, wait_until_ready

EXPORTER = [sys.executable, "-m", "exporter"]


def write_config(tmp_path, simulator, **extra):
    lines = [
        "northflank:",
        f"  api_url: {simulator.base_url}",
        "  token: ${TEST_NF_TOKEN}",
        "poll:",
        "  interval: 1s",
        "  retry_backoff: 10ms",
        "  max_retries: 1",
        "rate_limit:",
        "  requests_per_hour: 100000",
        "  reserve: 0",
    ]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_exporter(*args, timeout=60, at=None):
    """The installed command; `at`: its clock starts at that moment (Debian's faketime), so
    that it judges the simulator's data as of the simulator's own clock."""
    env = {**os.environ, "TEST_NF_TOKEN": TOKEN}
    command = [*EXPORTER, *args]
    if at is not None:
        moment = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        command = ["faketime", moment, *command]
        env["TZ"] = "UTC"
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_version():
    result = run_exporter("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"northflank-backup-exporter {__version__} (Python 3.")


def completed_at(simulator, moment):
    """Completed backups of backups-02 that have not expired at `moment` (epoch seconds)."""
    return sum(
        1
        for b in simulator.backups("backups-02")
        if b["status"] == "completed" and float(b["expiredBy"]) / 1000 > moment
    )


def test_once_prints_a_parseable_exposition_and_exits_0(clock, start_simulator, tmp_path):
    """The command's clock starts where the simulator's stands (NOW), on any date: the count is
    exact. No backup of this world expires in the minute the command may take."""
    simulator = start_simulator()
    assert completed_at(simulator, clock.now) == completed_at(simulator, clock.now + 60)
    config = write_config(tmp_path, simulator)
    result = run_exporter("--config.file", config, "--once", at=clock.now)
    assert result.returncode == 0, result.stderr
    families = {f.name for f in text_string_to_metric_families(result.stdout)}
    assert {"northflank_backups", "northflank_up", "northflank_exporter_build_info"} <= families
    samples = parse_samples(result.stdout)
    completed = pick(samples, "northflank_backups", destination="backups-02", status="completed")
    assert completed == completed_at(simulator, clock.now) > 100


def test_once_exits_1_when_a_destination_failed(start_simulator, tmp_path):
    simulator = start_simulator(faults=Faults(destination_status={"backups-02": 500}))
    result = run_exporter("--config.file", write_config(tmp_path, simulator), "--once")
    assert result.returncode == 1
    samples = parse_samples(result.stdout)
    assert pick(samples, "northflank_up", destination="backups-02") == 0
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    failure = [line for line in result.stderr.splitlines() if "poll failed" in line]
    assert len(failure) == 1
    assert "destination=backups-02" in failure[0]
    assert "HTTP 500" in failure[0]


def test_demo_once_needs_no_token_or_config(monkeypatch):
    for name in ("NORTHFLANK_API_TOKEN", "NF_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = run_exporter("--demo", "--once")
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert {
        dict(labels)["destination"] for (name, labels) in samples if name == "northflank_up"
    } == {"primary-backups", "backups-02", "backups-03"}
    # the scenarios are under a drill: their restores are read at once, and shown
    drilled = {"project": "scenarios", "addon": "restore-drilled-postgresql"}
    assert pick(samples, "northflank_addon_restore_drill_interval_seconds", **drilled) == 30 * 86400
    assert pick(samples, "northflank_addon_restores", status="completed", **drilled) == 3


def test_json_log_lines(start_simulator, tmp_path):
    simulator = start_simulator(faults=Faults(destination_status={"backups-02": 404}))
    result = run_exporter(
        "--config.file", write_config(tmp_path, simulator), "--once", "--log.format", "json"
    )
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(
        r["level"] == "warning" and "destination=backups-02" in r["msg"] and "HTTP 404" in r["msg"]
        for r in records
    )
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_stops_cleanly_on_signals(simulator, tmp_path, signum):
    port = free_port()
    process = subprocess.Popen(
        [
            *EXPORTER,
            "--config.file",
            write_config(tmp_path, simulator),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        env={**os.environ, "TEST_NF_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(port)
        assert httpx.get(f"http://127.0.0.1:{port}/-/healthy").status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'northflank_up{account="default",destination="primary-backups"} 1.0' in metrics
        process.send_signal(signum)
        assert process.wait(timeout=5) == 0  # inside any orchestrator's grace period
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    assert "stopped" in stderr
    assert TOKEN not in stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/-/healthy")


def test_demo_serves_metrics(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [*EXPORTER, "--demo", "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(port)
        samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert pick(samples, "northflank_up", destination="backups-03") == 1
        assert (
            pick(samples, "northflank_backups", destination="backups-03", status="completed") > 100
        )
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_a_port_in_use_is_one_clear_error(simulator, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_exporter(
            "--config.file",
            write_config(tmp_path, simulator),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            timeout=20,
        )
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in result.stderr


def scraped_destinations(port):
    samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    return {dict(labels)["destination"] for (name, labels) in samples if name == "northflank_up"}


def wait_until(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sighup_reloads_a_good_config_and_keeps_the_old_one_when_bad(simulator, tmp_path):
    port = free_port()
    path = write_config(tmp_path, simulator, destinations="[primary-backups]")
    log = tmp_path / "stderr.log"
    process = subprocess.Popen(
        [*EXPORTER, "--config.file", path, "--web.listen-address", f"127.0.0.1:{port}"],
        env={**os.environ, "TEST_NF_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        wait_until_ready(port)
        assert scraped_destinations(port) == {"primary-backups"}
        write_config(tmp_path, simulator, destinations="[backups-02]")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: scraped_destinations(port) == {"backups-02"})
        samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert pick(samples, "northflank_exporter_config_last_reload_successful") == 1
        Path(path).write_text(Path(path).read_text() + "poll: {interval: soon}\n")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload failed" in log.read_text())
        assert process.poll() is None
        assert scraped_destinations(port) == {"backups-02"}
        samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert pick(samples, "northflank_exporter_config_last_reload_successful") == 0
        # a rejected file is no failure of anything that runs
        assert not series(samples, "northflank_exporter_loop_failures_total")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
    stderr = log.read_text()
    assert "configuration reloaded" in stderr
    failed = [line for line in stderr.splitlines() if "reload failed" in line]
    assert len(failed) == 1
    assert f"keeping the running configuration: {path}: poll" in failed[0]


def test_sigterm_during_a_stalled_request_still_exits_0_within_5_seconds(start_simulator, tmp_path):
    simulator = start_simulator(
        faults=Faults(stall_seconds=30.0, destination_fault={"backups-02": "stall"})
    )
    port = free_port()
    path = Path(write_config(tmp_path, simulator))
    path.write_text(path.read_text().replace("poll:\n", "poll:\n  timeout: 60s\n"))
    process = subprocess.Popen(
        [*EXPORTER, "--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}"],
        env={**os.environ, "TEST_NF_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: any("backups-02/backups" in path for path in simulator.stalled))
        assert not any("backups-02/backups" in r.path for r in simulator.requests)  # unanswered
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0  # inside any orchestrator's grace period
    finally:
        if process.poll() is None:
            process.kill()


def test_runs_on_a_read_only_root_filesystem():
    """As the image runs with `--read-only`: a private mount namespace whose / is read-only."""
    script = 'mount -o remount,bind,ro / && exec "$@"'
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *EXPORTER, "--demo", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert 'northflank_up{account="default",destination="primary-backups"} 1.0' in result.stdout
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", script + " && touch /probe", "sh"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Read-only file system" in probe.stderr  # the filesystem really was read-only
