"""Prometheus exporter for Northflank backups."""

__version__ = "0.1.0"
