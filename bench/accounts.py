"""Many accounts on one API URL: how soon they are all ready, with no false timeout.

Each account has its own token and polls the same loopback fake (the simulator, in a process
of its own, accepting every account's token) with `poll.timeout: 10s`. The exporter runs as a
user runs it, in a process of its own, with the default configuration otherwise (coverage on).
Before the accounts of one URL waited for a connection inside the request's deadline, 1,000
accounts logged dozens of timeouts and were not ready after 55 s.

    python bench/accounts.py [--accounts 1000] [--latency-ms 0]

Prints the seconds to `/-/ready`, the exporter's peak RSS, the timeouts it logged, the requests
it made, and the time its requests waited for a connection in all.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

TOKEN = "bench-accounts"  # noqa: S105 - the simulator's, not a secret
READY_WITHIN = 60.0  # seconds: the target
RSS_BELOW = 200 * 2**20  # bytes: the target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def total(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def start_simulator(accounts: int, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    fake = ["--token", TOKEN, "--destinations", "1", "--backups-per-destination", "100"]
    fake += ["--accounts", str(accounts), "--rate-limit", str(10**9)]
    simulator = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", *fake, "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdout is not None
    return simulator, simulator.stdout.readline().strip()


def write_config(path: Path, url: str, accounts: int) -> None:
    listed = [{"name": f"a{n:04d}", "token": f"{TOKEN}-{n:04d}"} for n in range(accounts)]
    settings = {"northflank": {"api_url": url}, "poll": {"timeout": "10s"}}
    path.write_text(yaml.safe_dump({**settings, "accounts": listed}))


def wait_ready(port: int, began: float) -> float | None:
    while time.monotonic() - began < 3 * READY_WITHIN:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return None


def stop(*processes: subprocess.Popen[Any]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:  # still busy: the figures are taken
            process.kill()
            process.wait(30)


def measure(config: Path, log: Path) -> tuple[float | None, str, int]:
    """(seconds to ready, the metrics then, peak RSS) of the exporter with `config`."""
    port = free_port()
    command = [sys.executable, "-m", "exporter", "--config.file", str(config)]
    command += ["--web.listen-address", f"127.0.0.1:{port}"]
    with log.open("w") as out:
        began = time.monotonic()
        exporter = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            ready = wait_ready(port, began)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
            return ready, metrics, peak_rss(exporter.pid)
        finally:
            stop(exporter)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    simulator, url = start_simulator(args.accounts, args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            config, log = Path(scratch) / "config.yaml", Path(scratch) / "exporter.log"
            write_config(config, url, args.accounts)
            ready, metrics, rss = measure(config, log)
            timeouts = len(re.findall(r"timed out", log.read_text()))
    finally:
        stop(simulator)
    requests = total(metrics, "northflank_exporter_api_requests_total")
    waited = total(metrics, "northflank_exporter_connection_wait_seconds_total")
    shown = "not ready" if ready is None else f"{ready:.1f} s"
    print(f"{args.accounts} accounts on one API URL, {args.latency_ms:g} ms a page")
    print(f"  ready after:        {shown} (target: under {READY_WITHIN:.0f} s)")
    print(f"  peak RSS:           {rss / 2**20:.0f} MB (target: under {RSS_BELOW / 2**20:.0f} MB)")
    print(f"  timeouts logged:    {timeouts} (target: none)")
    print(f"  requests made:      {requests:.0f}")
    print(f"  connection waits:   {waited:.1f} s in all, none of it in a request's timeout")
    met = ready is not None and ready < READY_WITHIN and rss < RSS_BELOW and timeouts == 0
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
