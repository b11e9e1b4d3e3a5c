"""The Helm chart: lint, render with every feature, and have the real API server check each object."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from doraflow.core import crds
from tests.testenv.kubernetes import KubeCluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "doraflow"
REQUIRED = [
    "--set",
    "database.url=postgresql+asyncpg://doraflow:pw@db:5432/doraflow",
    "--set",
    "apiSecretKey=s3cret",
]
EVERYTHING = [
    *REQUIRED,
    "--set",
    "api.autoscaling.enabled=true",
    "--set",
    "api.podDisruptionBudget.enabled=true",
    "--set",
    "processor.autoscaling.enabled=true",
    "--set",
    "processor.podDisruptionBudget.enabled=true",
    "--set",
    "api.ingress.enabled=true",
    "--set",
    "api.ingress.className=nginx",
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "serviceMonitor.enabled=true",
    "--set",
    "redis.url=redis://redis:6379/0",
    "--set",
    "operator.watchNamespaces={team-a,team-b}",
]
# The prometheus-operator owns the real ServiceMonitor CRD; this minimal one lets the API server
# accept the object in a dry run (its fields are the operator's concern, not Kubernetes').
SERVICE_MONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names:
    {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def run_helm(helm_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_bin), *args], capture_output=True, text=True, check=False, timeout=120)


def render(helm_bin: Path, *values: str) -> list[dict[str, Any]]:
    result = run_helm(
        helm_bin,
        "template",
        "doraflow",
        str(CHART),
        "--namespace",
        "doraflow",
        "--kube-version",
        "1.36.0",
        *values,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_helm_lint_passes_and_rejects_bad_values(helm: Path) -> None:
    good = run_helm(helm, "lint", str(CHART), "--strict", *REQUIRED)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run_helm(helm, "lint", str(CHART), *REQUIRED, "--set", "api.replicas=0")
    assert bad.returncode != 0
    assert "/api/replicas" in bad.stdout + bad.stderr


def test_missing_database_url_is_a_clear_error(helm: Path) -> None:
    result = run_helm(helm, "template", "doraflow", str(CHART), "--set", "apiSecretKey=x")
    assert result.returncode != 0
    assert "database.url is required" in result.stderr


def test_default_render_has_the_expected_objects(helm: Path) -> None:
    kinds = sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in render(helm, *REQUIRED))
    assert kinds == sorted(
        [
            "ClusterRole/doraflow-operator",
            "ClusterRoleBinding/doraflow-operator",
            "Deployment/doraflow-api",
            "Deployment/doraflow-operator",
            "Deployment/doraflow-processor",
            "Job/doraflow-migrate",
            "Secret/doraflow-runtime",
            "Service/doraflow-api",
            "Service/doraflow-processor",
            "ServiceAccount/doraflow-api",
            "ServiceAccount/doraflow-migrations",
            "ServiceAccount/doraflow-operator",
            "ServiceAccount/doraflow-processor",
        ]
    )


def test_every_pod_runs_restricted(helm: Path) -> None:
    for doc in render(helm, *EVERYTHING):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert "resources" in container or doc["kind"] == "Job"


def test_chart_crds_equal_the_generated_crds() -> None:
    for name, text in crds.render_all().items():
        assert (CHART / "crds" / name).read_text() == text
        assert (ROOT / "crds" / name).read_text() == text


def test_rendered_manifests_pass_server_side_dry_run(kube: KubeCluster, helm: Path, tmp_path: Path) -> None:
    """Every object, with every optional feature on, is validated by the real API server's schemas."""
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    kube.kubectl("apply", "-f", "-", input=SERVICE_MONITOR_CRD)
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/integrations.doraflow.dev",
        "crd/organizations.doraflow.dev",
    )
    kube.kubectl("create", "namespace", "doraflow", check=False)
    for values in (REQUIRED, EVERYTHING):
        manifest = tmp_path / "rendered.yaml"
        manifest.write_text(yaml.safe_dump_all(render(helm, *values)))
        result = kube.kubectl("apply", "--dry-run=server", "-n", "doraflow", "-f", str(manifest), check=False)
        assert result.returncode == 0, result.stderr
        assert "created (server dry run)" in result.stdout


def test_examples_are_accepted_by_the_crds(kube: KubeCluster) -> None:
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/integrations.doraflow.dev",
        "crd/organizations.doraflow.dev",
    )
    kube.kubectl("create", "namespace", "examples", check=False)
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        if example.name == "kind-values.yaml":
            continue
        result = kube.kubectl("apply", "--dry-run=server", "-n", "examples", "-f", str(example), check=False)
        assert result.returncode == 0, f"{example.name}: {result.stderr}"


def test_crd_rejects_a_bad_integration_with_the_api_servers_message(kube: KubeCluster) -> None:
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/integrations.doraflow.dev")
    bad = """
apiVersion: doraflow.dev/v1alpha1
kind: Integration
metadata: {name: bad, namespace: default}
spec:
  organizationRef: {name: acme}
  provider: github
  schedules: {commits: hourly}
"""
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "spec.schedules.commits" in result.stderr
    assert "credentialsSecretRef is required for every provider except git" in result.stderr
