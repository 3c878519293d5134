"""A built-in simulator of the Northflank API for tests, benchmarks and `--demo`."""

from exporter.simulator.data import World, build_world
from exporter.simulator.server import Faults, Simulator

__all__ = ["Faults", "Simulator", "World", "build_world"]
