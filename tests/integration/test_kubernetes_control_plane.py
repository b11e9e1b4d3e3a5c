"""The test control plane is a real one: CRDs, validation, status, GC, namespaces, RBAC, helm.

Each test would fail against a fake API server or against plain envtest (no controller manager).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.testenv.common import unavailable, wait_until
from tests.testenv.kubernetes import KubeCluster

pytestmark = pytest.mark.integration

GROUP = "testenv.doraflow.io"
VERSION = "v1"
PLURAL = "deliverypipelines"
KIND = "DeliveryPipeline"
CRD_NAME = f"{PLURAL}.{GROUP}"
VERSIONS_ENV = Path(__file__).resolve().parents[2] / "scripts" / "testenv.d" / "kubernetes" / "versions.env"

PIPELINE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "deliverypipeline", "kind": KIND, "listKind": f"{KIND}List"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["repository", "deployFrequencyTarget"],
                                "properties": {
                                    "repository": {"type": "string", "pattern": "^[a-z0-9-]+/[a-z0-9-]+$"},
                                    "deployFrequencyTarget": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "maximum": 1000,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string"},
                                    "deploymentsPerDay": {"type": "number"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _versions() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in VERSIONS_ENV.read_text().splitlines():
        key, sep, rest = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = rest.split("#")[0].strip()
    return values


def _pipeline(name: str, repository: str = "doraflow/api", target: int = 5) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"repository": repository, "deployFrequencyTarget": target},
    }


def _obj(value: object) -> dict[str, Any]:
    """CustomObjectsApi answers are typed `object`; they are the decoded JSON objects."""
    assert isinstance(value, dict)
    return value


def _gone(read: Any, *args: str) -> bool:
    """True once `read(*args)` answers 404."""
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[client.ApiClient]:
    api_client = kube.api_client()
    try:
        yield api_client
    finally:
        close: Any = api_client.close  # untyped in the package
        close()


@pytest.fixture(scope="module")
def pipeline_crd(kube: KubeCluster) -> str:
    """The DeliveryPipeline CRD, applied once and Established (early, so the GC discovers it soon)."""
    kube.kubectl("apply", "-f", "-", input=json.dumps(PIPELINE_CRD))
    kube.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return CRD_NAME


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_versions_are_the_built_ones(kube: KubeCluster) -> None:
    reported = json.loads(kube.kubectl("version", "--output=json").stdout)
    if os.environ.get("KUBEBUILDER_ASSETS"):
        assert reported["serverVersion"]["gitVersion"].startswith("v1.")
        return
    expected = _versions()["KUBE_VERSION"]
    assert reported["clientVersion"]["gitVersion"] == expected
    assert reported["serverVersion"]["gitVersion"] == expected
    assert reported["serverVersion"]["minor"] == expected.split(".")[1]


def test_startup_is_quick(kube: KubeCluster) -> None:
    # measured, and kept honest: a warm start takes a few seconds (docs/testenv-kubernetes.md)
    print(f"control plane ready in {kube.startup_seconds:.1f}s")
    assert kube.startup_seconds < 60


def test_crd_is_established(api: client.ApiClient, pipeline_crd: str) -> None:
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(pipeline_crd)
    assert crd.status is not None
    assert crd.status.conditions is not None
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"


def test_custom_resource_status_subresource(api: client.ApiClient, pipeline_crd: str, namespace: str) -> None:
    custom = client.CustomObjectsApi(api)
    created = _obj(
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _pipeline("checkout"))
    )
    assert created["metadata"]["generation"] == 1
    assert "status" not in created

    patched = _obj(
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "checkout",
            {"status": {"phase": "Measuring", "deploymentsPerDay": 2.5}},
        )
    )
    assert patched["status"] == {"phase": "Measuring", "deploymentsPerDay": 2.5}
    # status writes don't bump the generation; spec writes do
    assert patched["metadata"]["generation"] == 1

    # with the status subresource enabled, the main resource ignores status and the status one ignores spec
    main = _obj(
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "checkout",
            {"spec": {"deployFrequencyTarget": 7}, "status": {"phase": "Hijacked"}},
        )
    )
    assert main["spec"]["deployFrequencyTarget"] == 7
    assert main["status"]["phase"] == "Measuring"
    assert main["metadata"]["generation"] == 2
    sub = _obj(
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "checkout",
            {"spec": {"deployFrequencyTarget": 9}},
        )
    )
    assert sub["spec"]["deployFrequencyTarget"] == 7


def test_validation_rejects_bad_spec(
    kube: KubeCluster, api: client.ApiClient, pipeline_crd: str, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _pipeline("bad", repository="Not A Repo", target=0)
        )
    assert rejected.value.status == 422
    assert rejected.value.body is not None
    status = json.loads(rejected.value.body)
    assert status["reason"] == "Invalid"
    message = status["message"]
    assert f'{KIND}.{GROUP} "bad" is invalid' in message
    assert (
        "spec.deployFrequencyTarget: Invalid value: 0: "
        "spec.deployFrequencyTarget in body should be greater than or equal to 1" in message
    )
    assert "spec.repository in body should match '^[a-z0-9-]+/[a-z0-9-]+$'" in message
    causes = {cause["field"] for cause in status["details"]["causes"]}
    assert causes == {"spec.deployFrequencyTarget", "spec.repository"}

    # kubectl shows the same words, and a required field is enforced too
    missing = {**_pipeline("incomplete"), "spec": {"repository": "doraflow/api"}}
    result = kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(missing), check=False)
    assert result.returncode != 0
    assert "spec.deployFrequencyTarget: Required value" in result.stderr
    assert _gone(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, "bad")


def _deployment(name: str, owner: dict[str, Any] | None = None) -> client.V1Deployment:
    labels = {"app": name}
    owners = None
    if owner is not None:
        owners = [
            client.V1OwnerReference(
                api_version=owner["apiVersion"],
                kind=owner["kind"],
                name=owner["metadata"]["name"],
                uid=owner["metadata"]["uid"],
                controller=True,
                block_owner_deletion=True,
            )
        ]
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels, owner_references=owners),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="doraflow/api:test")]),
            ),
        ),
    )


def _wait_until_gc_resolves(core: client.CoreV1Api, namespace: str) -> None:
    """Wait until the garbage collector can look DeliveryPipelines up.

    The GC rediscovers resource types every 30 s, so it learns of a new CRD up to 30 s late; owner
    lookups that fail before then are retried with a growing backoff. Each probe is a ConfigMap owned
    by a DeliveryPipeline that never existed (a fresh uid, so a fresh backoff): the GC deletes it as
    soon as it can resolve the kind.
    """
    probes: list[str] = []

    def probe_collected() -> bool:
        if any(_gone(core.read_namespaced_config_map, name, namespace) for name in probes):
            return True
        probes.append(f"gc-probe-{len(probes)}")
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=probes[-1],
                    owner_references=[
                        client.V1OwnerReference(
                            api_version=f"{GROUP}/{VERSION}",
                            kind=KIND,
                            name="never-existed",
                            uid=str(uuid.uuid4()),
                        )
                    ],
                )
            ),
        )
        return False

    wait_until(probe_collected, 90, "garbage collector discovering the DeliveryPipeline CRD", interval=1.0)


def test_garbage_collector_removes_owned_deployment(
    kube: KubeCluster, api: client.ApiClient, pipeline_crd: str, namespace: str
) -> None:
    if not kube.has_controller_manager:
        unavailable("no kube-controller-manager in KUBEBUILDER_ASSETS: nothing collects garbage")
    custom = client.CustomObjectsApi(api)
    apps = client.AppsV1Api(api)
    _wait_until_gc_resolves(client.CoreV1Api(api), namespace)

    owner = _obj(
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _pipeline("owner"))
    )
    apps.create_namespaced_deployment(namespace, _deployment("owned", owner))
    apps.create_namespaced_deployment(namespace, _deployment("bystander"))
    owned = apps.read_namespaced_deployment("owned", namespace).metadata
    assert owned is not None
    assert owned.owner_references is not None
    assert owned.owner_references[0].uid == owner["metadata"]["uid"]

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "owner")
    wait_until(
        lambda: _gone(apps.read_namespaced_deployment, "owned", namespace),
        30,
        "garbage collection of the owned Deployment",
    )
    bystander = apps.read_namespaced_deployment("bystander", namespace).metadata
    assert bystander is not None
    assert bystander.name == "bystander"


def test_namespace_deletion_is_finalised(kube: KubeCluster, api: client.ApiClient, pipeline_crd: str) -> None:
    if not kube.has_controller_manager:
        unavailable("no kube-controller-manager in KUBEBUILDER_ASSETS: namespaces stay Terminating")
    core = client.CoreV1Api(api)
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"k": "v"})
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, name, PLURAL, _pipeline("p"))
    spec = core.read_namespace(name).spec
    assert spec is not None
    assert spec.finalizers == ["kubernetes"]

    core.delete_namespace(name)
    # the API server only marks it Terminating; the namespace controller empties it and finalises it
    status = core.read_namespace(name).status
    assert status is not None
    assert status.phase == "Terminating"
    wait_until(lambda: _gone(core.read_namespace, name), 90, f"namespace {name} finalised")
    assert _gone(core.read_namespaced_config_map, "settings", name)


def test_rbac_allows_exactly_the_granted_verb(
    kube: KubeCluster, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"window": "30d"})
    )
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-getter"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-gets-configmaps"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-getter"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )

    # a real bound token from the TokenRequest API, signed with the throwaway service-account key
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=600
        )
    )
    issued = core.create_namespaced_service_account_token("reader", namespace, request).status
    assert issued is not None
    assert issued.token is not None
    sa_token = issued.token
    assert sa_token.count(".") == 2  # a JWT

    status, _ = kube.get("/apis/authentication.k8s.io/v1", token=sa_token)
    assert status == 200  # authenticated (discovery is open to every authenticated user)

    def can_get() -> bool:
        code, body = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/settings", token=sa_token)
        return code == 200 and body["data"] == {"window": "30d"}

    wait_until(can_get, 10, "RBAC grant of get on configmaps")  # the authorizer reads from an informer

    for path, verb_and_resource in [
        (f"/api/v1/namespaces/{namespace}/configmaps", 'cannot list resource "configmaps"'),
        (f"/api/v1/namespaces/{namespace}/secrets/anything", 'cannot get resource "secrets"'),
        ("/api/v1/namespaces/default/configmaps/kube-root-ca.crt", 'cannot get resource "configmaps"'),
    ]:
        code, body = kube.get(path, token=sa_token)
        assert code == 403, path
        assert body["reason"] == "Forbidden"
        assert f'User "system:serviceaccount:{namespace}:reader" {verb_and_resource}' in body["message"]

    for verb, answer in [("get", "yes"), ("delete", "no"), ("list", "no")]:
        can_i = kube.kubectl(
            "auth", "can-i", verb, "configmaps", "-n", namespace, f"--token={sa_token}", check=False
        )
        assert can_i.stdout.strip() == answer, verb


def test_helm_version(helm: Path) -> None:
    version = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    if os.environ.get("HELM_BIN"):
        assert version.startswith("v3.")
    else:
        assert version == _versions()["HELM_VERSION"]


def test_helm_installs_a_chart(
    kube: KubeCluster, api: client.ApiClient, helm: Path, namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "metrics-config"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: metrics-config\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("window: 30d\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  window: {{ .Values.window | quote }}\n"
        "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    subprocess.run(
        [
            str(helm),
            "install",
            "metrics",
            str(chart),
            "--namespace",
            namespace,
            "--set",
            "window=7d",
            "--kubeconfig",
            str(kube.kubeconfig),
            "--wait",
            "--timeout",
            "60s",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    data = client.CoreV1Api(api).read_namespaced_config_map("metrics-config", namespace).data
    assert data is not None
    assert data["window"] == "7d"
    server = json.loads(kube.kubectl("version", "--output=json").stdout)["serverVersion"]["gitVersion"]
    assert data["kube"] == server  # helm asked the real API server for its version
