"""Write prometheusrule.yaml from monitoring/alerts.yaml, so the two never drift.

python deploy/kubernetes/make_prometheusrule.py          # rewrite prometheusrule.yaml
python deploy/kubernetes/make_prometheusrule.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent.parent / "monitoring" / "alerts.yaml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = (
    "# Generated from monitoring/alerts.yaml by make_prometheusrule.py: edit those rules and\n"
    "# run the script again (a test fails while this file is out of date).\n"
)


def render() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "northflank-backup-exporter",
            "namespace": "monitoring",
            "labels": {
                "app.kubernetes.io/name": "northflank-backup-exporter",
                # The label your Prometheus's ruleSelector matches (kube-prometheus-stack).
                "release": "prometheus",
            },
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(resource, sort_keys=False, width=100)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
