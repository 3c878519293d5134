"""The benchmarks still run: each script on a scenario small enough for the test suite (their
figures are judged by `make bench`, never here)."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench"


def run_bench(script: str, *args: str, exit_code: int = 0) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == exit_code, out.stderr[-2000:]
    return out.stdout


def test_the_poll_benchmark_runs_the_floor_and_the_exporter_side_by_side():
    out = run_bench(
        "poll.py",
        "--scenarios",
        "1k",
        "--latencies",
        "0",
        "--runs",
        "2",
        "--roles",
        "floor,exporter",
    )
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    # requests: 10 pages of 100 backups; the exporter also lists the destinations
    assert (rows["floor"][4], rows["exporter"][4]) == ("10", "11")
    ratios = out.split("exporter CPU / floor CPU, run by run:")[1].splitlines()[0].split()
    assert len(ratios) == 2 and all(ratio.endswith("x") for ratio in ratios)


def test_the_requests_benchmark_counts_both_modes_from_the_simulators_log():
    # so few backups a destination that a full poll is only 3 pages: the target is missed,
    # and the script says so and fails
    out = run_bench(
        "requests.py",
        "--destinations",
        "2",
        "--backups",
        "300",
        "--minutes",
        "10",
        "--managed",
        "4",
        "--hours",
        "6",
        exit_code=1,
    )
    assert "(target >= 20x: MISSED)" in out
    counted = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()[2:4]}
    # 2 destinations x 3 pages + the listing, every minute, for an hour's rate
    assert counted["full"] == 7 * 60
    assert counted["incremental"] < counted["full"]
    assert "incremental exposition equals a full poll's: yes" in out
    # the managed-storage listings: every poll (12 reads an hour each) against the cadence
    reads = {
        line.split()[0]: line.split() for line in out.split("listing reads")[1].splitlines()[1:3]
    }
    # 12 reads an hour each, and the first read at the start
    assert 4 * 12 <= int(reads["every"][2]) <= 4 * 12 + 4
    assert int(reads["cadence"][1]) < 4 * 12
    assert "plus the heartbeat: met)" in out


def test_the_first_data_benchmark_times_a_user_start_and_the_estimates():
    out = run_bench(
        "first_data.py",
        "--runs",
        "1",
        "--latencies",
        "0",
        "--accounts",
        "3x450",
        "--estimate-pages",
        "90",
    )
    (row,) = [line.split() for line in out.splitlines() if line.startswith("3x450")]
    assert row[:3] == ["3x450", "16", "0"]  # the listing and 5 pages for each destination
    assert "estimates within" in out and "(target <= 20%): met" in out


def test_the_coverage_benchmark_serves_every_loop_on_virtual_time():
    """A small account whose first read and inventory fit the first hour: every unprotected
    addon is on /metrics at the first look (15 s), the steady cost is counted by kind, every
    slot of its hourly volumes is read before it turns overdue, and no hour is full."""
    out = run_bench(
        "coverage.py", "--addons", "60", "--projects", "6", "--unprotected", "3", "--hours", "4"
    )
    times = dict(line.split()[-2:] for line in out.splitlines()[1:5])
    assert times == {"numbers": "15s", "backups": "15s", "unprotected": "15s", "complete": "15s"}
    assert "steady cost:" in out and "destinations" in out
    (slots,) = [line for line in out.splitlines() if "slots read before" in line]
    read, _, scheduled = slots.split(": ")[-1].partition(" of ")
    assert read == scheduled and int(scheduled) > 0
    assert "at background's ceiling (225): 0 of " in out
    verdicts = [line.split(": ")[-1] for line in out.splitlines()[-3:]]
    assert verdicts == ["met", "met", "met"]
