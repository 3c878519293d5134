"""`python -m exporter.simulator`: serve a simulated Northflank API on loopback."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import datetime

from exporter.simulator.data import build_world
from exporter.simulator.scenarios import COVERAGE_SCENARIOS, SCENARIOS
from exporter.simulator.server import Faults, RateLimit, Simulator


def _moment(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve a simulated Northflank API with deterministic backups.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="simulator-token")
    parser.add_argument(
        "--accounts", type=int, default=0, help="also accept TOKEN-0000 ... for so many accounts"
    )
    parser.add_argument("--team", default=None, help="serve /v1/teams/TEAM/... as well")
    parser.add_argument("--destinations", type=int, default=3)
    parser.add_argument("--backups-per-destination", type=int, default=200)
    parser.add_argument("--addons-per-destination", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--now", type=_moment, default=None, help="freeze the clock at this ISO 8601 time"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        choices=[*SCENARIOS, *COVERAGE_SCENARIOS, "all"],
        help="add a named situation on an addon of its own (repeatable; 'all' for every one)",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="add what no destination lists: managed-storage addons, a paused addon, volumes",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=1000, help="requests per hour")
    parser.add_argument(
        "--rate-limit-used",
        type=int,
        default=0,
        help="requests other clients of the token already spent in the first window",
    )
    parser.add_argument(
        "--retry-after", action="store_true", help="send Retry-After with 429 responses"
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of HTTP 500s")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0, help="share of HTTP 429s")
    parser.add_argument("--stall-rate", type=float, default=0.0, help="share of stalled answers")
    parser.add_argument("--stall-seconds", type=float, default=60.0)
    parser.add_argument(
        "--malformed-rate", type=float, default=0.0, help="share of truncated JSON bodies"
    )
    return parser.parse_args(argv)


def simulator_from_args(args: argparse.Namespace) -> Simulator:
    frozen = args.now
    clock = (lambda: frozen) if frozen is not None else time.time
    world = build_world(
        args.seed,
        clock(),
        args.destinations,
        args.backups_per_destination,
        addons_per_destination=args.addons_per_destination,
        scenarios=(*SCENARIOS, *COVERAGE_SCENARIOS)
        if "all" in args.scenario
        else tuple(args.scenario),
        fleet=args.fleet,
    )
    faults = Faults(
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        stall_rate=args.stall_rate,
        stall_seconds=args.stall_seconds,
        malformed_rate=args.malformed_rate,
        latency_ms=args.latency_ms,
    )
    return Simulator(
        world,
        token=(args.token, *(f"{args.token}-{n:04d}" for n in range(args.accounts))),
        team=args.team,
        rate_limit=RateLimit(args.rate_limit, args.rate_limit_used, args.retry_after),
        faults=faults,
        clock=clock,
        address=(args.host, args.port),
    )


def main(argv: list[str] | None = None) -> int:
    simulator = simulator_from_args(parse_args(argv)).start()
    print(simulator.base_url, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
