"""The monitoring mixin (monitoring/mixin/): the committed rules, PrometheusRule and dashboard
are exactly its default render; a user's _config reaches every series selector of every alert
and dashboard query; tuned thresholds change promtool's verdicts; the sources are formatted
as jsonnetfmt writes them. `jsonnet` and `jsonnetfmt` come from Debian (`make tools`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring import render

MIXIN = render.MIXIN
TUNED = MIXIN / "tests" / "tuned.libsonnet"
# A metric's name where a selector starts: ours, and Prometheus's `up` (not `northflank_up`).
METRIC = re.compile(r"(?<![\w-])(northflank_[a-z0-9_]+|up)\b(\{[^}]*\})?")


@pytest.fixture(scope="module")
def tuned() -> dict:
    return render.evaluate(TUNED.read_text())


def test_the_committed_files_are_the_default_render():
    for path, text in render.files(render.evaluate()).items():
        assert path.read_text() == text, f"{path} differs: run `make monitoring`"


def test_the_check_names_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "alerts.yaml"
    stale.write_text(render.ALERTS.read_text() + "# edited by hand\n")
    monkeypatch.setattr(render, "ALERTS", stale)
    monkeypatch.setattr(render, "ROOT", tmp_path.parent)
    assert render.main(["--check"]) == 1
    assert f"{tmp_path.name}/alerts.yaml differs from the mixin's render" in capsys.readouterr().out


def queries(rendered: dict) -> list[str]:
    """Every PromQL text: each alert's expression, each dashboard target and variable."""
    texts = [rule["expr"] for group in rendered["alerts"]["groups"] for rule in group["rules"]]
    dashboard = rendered["dashboards"][render.DASHBOARD_NAME]
    texts += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    texts += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return texts


def test_every_series_selector_carries_the_configured_matchers(tuned):
    texts = queries(tuned)
    assert len(texts) > 60
    selectors = [m for text in texts for m in METRIC.finditer(text)]
    assert len(selectors) >= 100
    bare = [
        m.group(0) for m in selectors if not (m.group(2) or "").startswith('{job="x", cluster="y"')
    ]
    assert bare == []
    # and the default render carries the default job the same way
    default = [m for text in queries(render.evaluate()) for m in METRIC.finditer(text)]
    assert {m.group(2).split(",")[0].rstrip("}") for m in default} == {
        '{job="northflank-backup-exporter"'
    }


def test_nothing_in_the_render_asks_to_be_edited():
    for path in (render.ALERTS, render.PROMETHEUS_RULE):
        assert "TUNE" not in path.read_text()


def test_the_dashboard_takes_its_identity_from_the_config():
    config = "{ dashboard+: { uid: 'nb', tags: ['t'], refresh: '5m', datasource: 'thanos' } }"
    dashboard = render.evaluate(config)["dashboards"][render.DASHBOARD_NAME]
    assert (dashboard["uid"], dashboard["tags"], dashboard["refresh"]) == ("nb", ["t"], "5m")
    assert dashboard["templating"]["list"][0]["query"] == "thanos"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert ids == list(range(2, 2 + len(ids)))


def test_tuned_rules_pass_promtool_and_change_its_verdicts(tuned, tmp_path):
    (tmp_path / "alerts.yaml").write_text(render.alerts_yaml(tuned))
    shutil.copy(MIXIN / "tests" / "tuned.test.yaml", tmp_path)
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus) is installed by `make tools`"
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "tuned.test.yaml"]):
        result = subprocess.run(
            [promtool, *args], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # the same tests on the default render fail: every case there is a verdict the config made
    (tmp_path / "alerts.yaml").write_text(render.ALERTS.read_text())
    result = subprocess.run(
        [promtool, "test", "rules", "tuned.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    cases = yaml.safe_load((MIXIN / "tests" / "tuned.test.yaml").read_text())["tests"]
    assert all(case["name"] in result.stdout + result.stderr for case in cases)


def test_the_mixin_is_formatted_as_jsonnetfmt_writes_it():
    sources = sorted(MIXIN.rglob("*.libsonnet"))
    assert len(sources) >= 5
    result = subprocess.run(
        ["jsonnetfmt", "--test", *map(str, sources)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"not formatted: {result.stdout}{result.stderr}"


def test_the_prometheusrule_carries_the_rules_as_rendered():
    rule = yaml.safe_load(render.PROMETHEUS_RULE.read_text())
    alerts = yaml.safe_load(render.ALERTS.read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == alerts["groups"]
    assert len(alerts["groups"][0]["rules"]) == 22
    assert Path(render.DASHBOARD).is_file()
