"""deploy/: Kubernetes manifests against the real API schemas, and the compose stack checked by
Compose's own parser and each mounted config by its own tool."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from exporter import __version__

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
CRD_CHECK = ROOT / "tests" / "crd" / "validate.mjs"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def manifests() -> dict[str, dict]:
    """Every Kubernetes object in deploy/kubernetes, by kind."""
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


def core_problems(resource: dict) -> list[str]:
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{resource['kind']} ({version}): {error.message}")
    return problems


def operator_problems(resources: list[dict]) -> list[str]:
    node = shutil.which("node")
    assert node, "node is required: the Prometheus Operator schemas come from npm (make tools)"
    result = subprocess.run(
        [node, str(CRD_CHECK)],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        check=False,
        cwd=CRD_CHECK.parent,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.splitlines()


def test_every_core_manifest_matches_the_kubernetes_schemas():
    resources = [r for kind, r in manifests().items() if kind not in OPERATOR_KINDS]
    assert {r["kind"] for r in resources} >= {"Deployment", "Service", "ConfigMap", "Secret"}
    assert [problem for r in resources for problem in core_problems(r)] == []


def test_the_operator_resources_match_the_operator_schemas():
    resources = [r for kind, r in manifests().items() if kind in OPERATOR_KINDS]
    assert {r["kind"] for r in resources} == OPERATOR_KINDS
    assert operator_problems(resources) == []


def test_the_validators_do_reject_broken_resources():
    broken = copy.deepcopy(manifests()["Deployment"])
    broken["spec"]["replicas"] = "one"
    assert core_problems(broken)
    unknown = copy.deepcopy(manifests()["Service"])
    unknown["spec"]["colour"] = "red"
    assert core_problems(unknown)
    monitor = copy.deepcopy(manifests()["ServiceMonitor"])
    monitor["spec"]["endpoints"][0]["port"] = 10117  # a port *name* is a string
    rule = copy.deepcopy(manifests()["PrometheusRule"])
    rule["spec"]["groups"][0]["rules"][0]["for"] = 300  # a duration is a string
    assert len(operator_problems([monitor, rule])) == 2


def test_the_prometheusrule_carries_the_alert_rules():
    """Both are the mixin's render (tests/test_mixin.py proves that they are up to date)."""
    alerts = yaml.safe_load((ROOT / "monitoring" / "alerts.yaml").read_text())
    assert manifests()["PrometheusRule"]["spec"]["groups"] == alerts["groups"]


def test_the_deployment_probes_runs_unprivileged_and_reads_the_token_from_a_secret():
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].endswith(f":{__version__}")
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    secret_volumes = [v for v in pod["volumes"] if "secret" in v]
    assert secret_volumes[0]["secret"]["secretName"] == manifests()["Secret"]["metadata"]["name"]
    config = yaml.safe_load(manifests()["ConfigMap"]["data"]["config.yaml"])
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["northflank"]["token_file"].startswith(mounted[secret_volumes[0]["name"]])
    assert "token" not in config["northflank"]


def test_service_and_servicemonitor_point_at_the_container_port():
    found = manifests()
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    (service_port,) = found["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    labels = found["Service"]["metadata"]["labels"]
    selector = found["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert found["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == service_port["name"]
    # The alert rules expect job="northflank-backup-exporter": the jobLabel gives it.
    assert labels[found["ServiceMonitor"]["spec"]["jobLabel"]] == "northflank-backup-exporter"


def test_the_kustomization_lists_files_that_exist():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert all((KUBERNETES / name).is_file() for name in kustomization["resources"])
    assert "secret.example.yaml" not in kustomization["resources"]


# --- docker compose ---


@pytest.fixture(scope="module")
def compose():
    binary = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def bind_mounts(service: dict) -> list[tuple[Path, str]]:
    return [
        (Path(volume["source"]), volume["target"])
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]


def mirror(service: dict, root: Path) -> Path:
    """The service's bind mounts copied into `root`, at the paths the container sees."""
    for source, target in bind_mounts(service):
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, destination)
    return root


def test_the_stack_has_everything_and_every_mounted_file_exists(compose):
    services = compose["services"]
    assert set(services) == {"exporter", "prometheus", "alertmanager", "grafana"}
    assert services["exporter"]["command"] == ["--demo"]
    assert Path(services["exporter"]["build"]["context"]) == ROOT
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert source.is_file(), f"{name} mounts {source}, which does not exist"
        if name != "exporter":
            assert ":" in service["image"] and not service["image"].endswith(":latest")
    mounted = {source.resolve() for s in services.values() for source, _ in bind_mounts(s)}
    assert (ROOT / "monitoring" / "alerts.yaml").resolve() in mounted
    assert (ROOT / "monitoring" / "dashboard.json").resolve() in mounted


def test_promtool_accepts_the_prometheus_config_with_the_rules(compose, tmp_path):
    root = mirror(compose["services"]["prometheus"], tmp_path)
    config = root / "etc/prometheus/prometheus.yml"
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 22 rules found" in result.stdout
    scraped = yaml.safe_load(config.read_text())["scrape_configs"][0]
    assert scraped["job_name"] == "northflank-backup-exporter"
    assert scraped["static_configs"][0]["targets"] == ["exporter:10117"]


def test_amtool_accepts_the_alertmanager_config(compose, tmp_path):
    root = mirror(compose["services"]["alertmanager"], tmp_path)
    result = subprocess.run(
        ["amtool", "check-config", str(root / "etc/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose, tmp_path):
    root = mirror(compose["services"]["grafana"], tmp_path)
    provisioning = root / "etc/grafana/provisioning"
    (datasource,) = yaml.safe_load(next((provisioning / "datasources").iterdir()).read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(next((provisioning / "dashboards").iterdir()).read_text())[
        "providers"
    ]
    dashboards = list((root / provider["options"]["path"].lstrip("/")).glob("*.json"))
    assert [json.loads(d.read_text())["title"] for d in dashboards]
