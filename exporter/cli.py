"""Command line: `northflank-backup-exporter [--config.file F] [--once] [--demo] ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import re
import secrets
import signal
import sys
import time
from dataclasses import replace

from exporter import __version__
from exporter.config import (
    Account,
    Config,
    ConfigError,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
    RestoreSettings,
    load_config,
)
from exporter.durations import DAY
from exporter.logs import redact, setup_logging
from exporter.runtime import Exporter, coverage_left_out
from exporter.shard import Shard
from exporter.simulator import Simulator, build_world
from exporter.simulator.scenarios import COVERAGE_SCENARIOS, SCENARIOS
from exporter.webconfig import WebConfig, load_web_config

PROG = "northflank-backup-exporter"
DEMO_POLL_INTERVAL = 30.0
# The demo's simulated token allows more than a real one so the first sync is instant.
DEMO_RATE_LIMIT = 5000
DEMO_BUDGET = 3000
log = logging.getLogger("exporter")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Prometheus exporter for Northflank backups. Polls every backup destination and "
            "serves backup counts, bytes, freshness, expiry and exporter health on /metrics."
        ),
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML configuration file (see config.example.yaml)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="ADDR",
        help='address to serve on, e.g. ":10117" (overrides web.listen_address)',
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS and basic auth, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll once, print the metrics, exit 0 if every poll was clean else 1",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="poll a built-in simulator of the Northflank API; needs no token",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument("--log.format", dest="log_format", default="text", choices=["text", "json"])
    parser.add_argument(
        "--shard",
        type=int,
        default=0,
        metavar="N",
        help="poll only the destinations whose stable hash lands on shard N (0-based)",
    )
    parser.add_argument(
        "--total-shards",
        dest="total_shards",
        type=int,
        default=1,
        metavar="M",
        help="how many exporters share the destinations (default 1: unsharded)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser.parse_args(argv)


def start_demo_simulator() -> Simulator:
    world = build_world(
        seed=1,
        anchor=time.time(),
        destinations=3,
        backups_per_destination=200,
        scenarios=(*SCENARIOS, *COVERAGE_SCENARIOS),
        fleet=True,
    )
    return Simulator(world, token=secrets.token_urlsafe(24), rate_limit=DEMO_RATE_LIMIT).start()


def demo_config(simulator: Simulator) -> Config:
    account = Account(
        northflank=NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
        rate_limit=RateLimitSettings(requests_per_hour=DEMO_BUDGET),
    )
    # the scenarios' addons under a 30-day drill: their restores are read, and shown, at once
    drills = ((re.compile("scenarios/.*"), 30.0 * DAY),)
    return Config(
        accounts=(account,),
        # every 30s, not around the slots: the demo shows the data move, not what it saves
        poll=replace(PollSettings(), interval=DEMO_POLL_INTERVAL, around_slots=False),
        restores=RestoreSettings(drills=drills),
        source="(demo)",
    )


def _with_flags(config: Config, args: argparse.Namespace) -> Config:
    """The config with what the command line overrides; ValueError names the flag."""
    try:
        shard = Shard(args.shard, args.total_shards)
    except ValueError as error:
        raise ValueError(f"--shard/--total-shards: {error}") from None
    if args.listen_address is not None:
        try:
            config = config.with_listen_address(args.listen_address)
        except ValueError as error:
            raise ValueError(f"--web.listen-address: {error}") from None
    return replace(config, shard=shard)


def _fail_config(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


async def _once(exporter: Exporter) -> int:
    """Poll every destination once (waiting for the budget if it must), then take what of the
    coverage the budget allows now; print the exposition, and on stderr what coverage left."""
    try:
        clean = await exporter.poll_once(coverage_waits=False)
    finally:
        await exporter.aclose()
    sys.stdout.write(exporter.exposition().decode())
    for line in coverage_left_out(exporter.parts):
        print(f"{PROG}: {line}", file=sys.stderr)
    return 0 if clean else 1


async def _reload(exporter: Exporter, args: argparse.Namespace) -> None:
    """SIGHUP: read the config file again; a bad one is reported and the old one kept."""
    try:
        config = _with_flags(load_config(args.config_file), args)
    except (ConfigError, ValueError) as error:
        log.error("reload failed, keeping the running configuration: %s", error)
        exporter.reload_rejected()
        return
    redact([*exporter.config.tokens(), *config.tokens()])
    try:
        await exporter.reload(config)
    except Exception:
        log.exception("reload failed while applying %s", config.source)
        exporter.health.failed("reload")


async def _serve(exporter: Exporter, args: argparse.Namespace, web_config: WebConfig | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    def on_hangup() -> None:
        if args.demo:
            log.warning("SIGHUP ignored: the demo has no configuration file to reload")
            return
        task = loop.create_task(_reload(exporter, args))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await exporter.serve(stop, web_config)
    except OSError as error:
        log.error(
            "cannot serve on %s:%d: %s",
            exporter.config.listen_host or "*",
            exporter.config.listen_port,
            error.strerror,
        )
        await exporter.aclose()
        return 1
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.version:
        print(f"{PROG} {__version__} (Python {platform.python_version()})")
        return 0
    setup_logging(args.log_level, args.log_format)
    simulator = start_demo_simulator() if args.demo else None
    try:
        try:
            config = demo_config(simulator) if simulator else load_config(args.config_file)
            config = _with_flags(config, args)
            web_config = load_web_config(args.web_config_file) if args.web_config_file else None
        except ConfigError as error:
            return _fail_config(str(error))
        except ValueError as error:
            return _fail_config(str(error))
        redact(config.tokens())
        if simulator:
            log.info("demo mode: polling the built-in simulator at %s", simulator.base_url)
        exporter = Exporter(config)
        return asyncio.run(_once(exporter) if args.once else _serve(exporter, args, web_config))
    finally:
        if simulator:
            simulator.stop()


if __name__ == "__main__":
    sys.exit(main())
