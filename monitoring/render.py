"""Render the monitoring mixin (monitoring/mixin/) into the files users take as they are.

    python -m monitoring.render           # rewrite them (`make monitoring`)
    python -m monitoring.render --check   # exit 1, naming the file, if one differs from the render

The rules (monitoring/alerts.yaml), the PrometheusRule that carries them
(deploy/kubernetes/prometheusrule.yaml) and the dashboard (monitoring/dashboard.json) are the
mixin's default render: edit the mixin, never them. Needs the `jsonnet` command (Debian's
package `jsonnet`, which `make tools` installs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MIXIN = ROOT / "monitoring" / "mixin"
ALERTS = ROOT / "monitoring" / "alerts.yaml"
DASHBOARD = ROOT / "monitoring" / "dashboard.json"
PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"
DASHBOARD_NAME = "northflank-backups.json"
GENERATED = (
    "# Generated from monitoring/mixin/ by `make monitoring`: edit the mixin, not this file. To\n"
    "# tune a threshold, the selector or a runbook link, override _config in your own jsonnet,\n"
    '# or render with it (monitoring/README.md, "Tuning").\n'
)
RULE_KEYS = ("alert", "expr", "for", "keep_firing_for", "labels", "annotations")
ANNOTATION_KEYS = ("summary", "description", "runbook_url")


def evaluate(config: str = "{}") -> dict[str, Any]:
    """The mixin with `config` (a jsonnet object) merged into its _config: its alerts and
    dashboards, as `jsonnet` evaluates them."""
    code = (
        f"local mixin = (import 'mixin.libsonnet') + {{ _config+:: {config} }};\n"
        "{ alerts: mixin.prometheusAlerts, dashboards: mixin.grafanaDashboards }"
    )
    jsonnet = shutil.which("jsonnet")
    if jsonnet is None:
        raise RuntimeError("jsonnet is not installed: `make tools` installs Debian's jsonnet")
    result = subprocess.run(  # noqa: S603 - jsonnet from PATH, the mixin's own code
        [jsonnet, "-J", str(MIXIN), "-e", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=MIXIN,
    )
    if result.returncode != 0:
        raise RuntimeError(f"jsonnet: {result.stderr.strip()}")
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def _block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Expressions over several lines as YAML blocks (`|`), as a person would write them."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, _block_strings)


def _in_order(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rule's keys in the order people read them (jsonnet sorts them)."""
    return [
        {"name": group["name"], "rules": [_rule_in_order(rule) for rule in group["rules"]]}
        for group in groups
    ]


def _rule_in_order(rule: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: rule[key] for key in RULE_KEYS if key in rule}
    annotations = rule["annotations"]
    ordered["annotations"] = {key: annotations[key] for key in ANNOTATION_KEYS}
    if set(ordered) != set(rule) or set(annotations) != set(ANNOTATION_KEYS):
        raise ValueError(f"{rule['alert']}: a key the render does not place (RULE_KEYS)")
    return ordered


def alerts_yaml(rendered: dict[str, Any]) -> str:
    groups = _in_order(rendered["alerts"]["groups"])
    body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=100)
    return GENERATED + body


def prometheus_rule_yaml(rendered: dict[str, Any]) -> str:
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
        "spec": {"groups": _in_order(rendered["alerts"]["groups"])},
    }
    return GENERATED + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100)


def dashboard_json(rendered: dict[str, Any]) -> str:
    return json.dumps(rendered["dashboards"][DASHBOARD_NAME], indent=2) + "\n"


def files(rendered: dict[str, Any]) -> dict[Path, str]:
    return {
        ALERTS: alerts_yaml(rendered),
        PROMETHEUS_RULE: prometheus_rule_yaml(rendered),
        DASHBOARD: dashboard_json(rendered),
    }


def main(argv: list[str]) -> int:
    wanted = files(evaluate())
    if "--check" in argv:
        stale = [path for path, text in wanted.items() if path.read_text() != text]
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} differs from the mixin's render: run `make monitoring`"
            )
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
