"""A real Prometheus serving the replayed history, and the steps at which an expression held."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from monitoring.backtest.alerting import EVALUATION
from monitoring.backtest.replay import KEEPALIVE, POLL

MAX_POINTS = 10_000  # Prometheus answers at most 11,000 points a series per query_range


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Replayed:
    """A Prometheus serving the history's TSDB, for query_range."""

    def __init__(self, workdir: Path) -> None:
        """Each history-N.om file of `workdir` becomes blocks of one TSDB (the workers'
        series differ by instance, so their blocks overlap in time and never in series)."""
        self.workdir = workdir
        blocks = workdir / "tsdb"
        for data in sorted(workdir.glob("history-*.om")):
            subprocess.run(  # noqa: S603 - promtool from PATH, our own arguments
                [
                    binary("promtool"),
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    # promtool reads the whole file again for every block (2 h by default):
                    # with one block for the month, a 30-day run imports in 9 s, not 12 min
                    # (the flag is hidden in promtool 2.42, and honoured)
                    "--max-block-duration=1458h",
                    str(data),
                    str(blocks),
                ],
                check=True,
                capture_output=True,
            )
            data.unlink()
        (workdir / "prometheus.yml").write_text("global: {}\n")
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603 - prometheus from PATH, our own arguments
            [
                binary("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={blocks}",
                "--storage.tsdb.retention.time=100y",
                f"--query.lookback-delta={KEEPALIVE + POLL + EVALUATION:.0f}s",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=(workdir / "prometheus.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the replay Prometheus did not start: see prometheus.log")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def true_steps(
        self, expr: str, start: float, end: float
    ) -> dict[tuple[tuple[str, str], ...], list[float]]:
        """For each series of the result, the evaluation steps at which the expression held."""
        found: dict[tuple[tuple[str, str], ...], list[float]] = {}
        chunk = MAX_POINTS * EVALUATION
        begin = start
        while begin <= end:
            finish = min(end, begin + chunk - EVALUATION)
            answer = httpx.post(
                f"{self.url}/api/v1/query_range",
                data={"query": expr, "start": begin, "end": finish, "step": EVALUATION},
                timeout=600,
            ).json()
            if answer["status"] != "success":
                raise RuntimeError(f"{expr}: {answer}")
            for result in answer["data"]["result"]:
                key = tuple(sorted(result["metric"].items()))
                found.setdefault(key, []).extend(float(t) for t, _ in result["values"])
            begin = finish + EVALUATION
        return found


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is needed: `make test` installs Debian's prometheus packages")
    return path
