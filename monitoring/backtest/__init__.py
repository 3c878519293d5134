"""The alert backtest: the rules of monitoring/alerts.yaml replayed on simulated history.
`python -m monitoring.backtest --help` says how to run it; `__main__.py` says how it works."""
