# `make demo` and `make test` do all set-up on a fresh machine (Python 3.11+ with venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test tools bench backtest monitoring

demo: $(VENV)/.installed
	$(BIN)/northflank-backup-exporter --demo

# The suite runs in four processes (most tests wait on loopback servers, not the CPU); a file's
# tests stay together, so a module's servers start once.
test: $(VENV)/.installed-test tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 4 --dist loadfile

# Every benchmark, side by side with the floor and the SDK peer (about an hour and a half on two cores).
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/requests.py
	$(BIN)/python bench/first_data.py
	$(BIN)/python bench/coverage.py

# The alert rules replayed on simulated history (monitoring/README.md, "Backtest"): the default
# month of 200 addons, then ten seeds of 80 addons over 10 days, and one summary (about 15 minutes).
backtest: $(VENV)/.installed-test tools
	$(BIN)/python -m monitoring.backtest --suite

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

# The alert rules, the PrometheusRule and the dashboard, rendered from the mixin
# (monitoring/mixin/); a test fails while a committed one differs from the render.
monitoring: $(VENV)/.installed-test tools
	$(BIN)/python -m monitoring.render

# Prometheus, promtool and Alertmanager (Debian's packages) run in the end-to-end tests,
# faketime sets the installed command's clock, and jsonnet renders the monitoring mixin; the
# Prometheus Operator's API schemas (npm) check the ServiceMonitor and PrometheusRule.
tools: tests/crd/node_modules/.installed
	@command -v prometheus-alertmanager >/dev/null && command -v promtool >/dev/null && \
	  command -v faketime >/dev/null && command -v jsonnetfmt >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	  prometheus prometheus-alertmanager faketime jsonnet >/dev/null; }

tests/crd/node_modules/.installed: tests/crd/package.json tests/crd/package-lock.json
	npm ci --prefix tests/crd --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@
