"""The operator against a real kube-apiserver, a real Kafka broker and the real API service.

`kubectl apply -f examples/` must end with: the organization registered with the API and its admin
key in a Secret, its topics on the broker, a collector Deployment owned by the Integration (with its
own ServiceAccount allowed exactly to patch its Integration's status), status conditions that say what
is going on — and the Deployment following spec changes, coming back when deleted, and garbage-
collected with its Integration.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doraflow.core import migrate
from doraflow.core.bus import create_bus
from doraflow.core.database import create_engine
from doraflow.core.settings import Settings
from tests.testenv.common import ManagedProcess, free_port, port_open, wait_until
from tests.testenv.kubernetes import KubeCluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "team-a"
SECRET = "operator-test-secret"
COLLECTOR = "doraflow-collector-acme-github"


def get_json(kube: KubeCluster, *args: str) -> Any:
    result = kube.kubectl("get", "-n", NAMESPACE, "-o", "json", *args, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll until `check` returns something truthy; return it."""
    found: list[Any] = []

    def probe() -> bool:
        value = check()
        if value:
            found.append(value)
        return bool(value)

    wait_until(probe, timeout, what, interval=0.5)
    return found[-1]


def condition(body: Any, kind: str = "Ready") -> dict[str, Any] | None:
    for item in (body or {}).get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return None


@pytest.fixture(scope="module")
def api_url(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API service (`doraflow api`) on a migrated database of the test PostgreSQL."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"operator_{os.getpid()}"
    admin = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def create() -> str:
        connection = await asyncpg.connect(admin)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
        await connection.close()
        url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        engine = create_engine(Settings(), url=url)
        await migrate.upgrade(engine)
        await engine.dispose()
        return url

    database_url = asyncio.run(create())
    port = free_port()
    api = ManagedProcess(
        "doraflow api",
        [sys.executable, "-m", "doraflow.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        tmp_path_factory.mktemp("api") / "api.log",
        env={
            "DORAFLOW_DATABASE_URL": database_url,
            "DORAFLOW_API_SECRET_KEY": SECRET,
            "DORAFLOW_KAFKA_BOOTSTRAP_SERVERS": "",
            "DORAFLOW_REDIS_URL": "",
        },
    )
    try:
        wait_until(lambda: api.check_alive() and port_open(port), 60, "doraflow api")
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


@pytest.fixture(scope="module")
def operator(
    kube: KubeCluster, kafka_bootstrap: str, api_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/integrations.doraflow.dev",
        "crd/organizations.doraflow.dev",
    )
    kube.kubectl("create", "namespace", NAMESPACE, check=False)
    process = ManagedProcess(
        "doraflow operator",
        [sys.executable, "-m", "doraflow.cli", "operator", "--liveness-port", str(free_port())],
        tmp_path_factory.mktemp("operator") / "operator.log",
        env={
            "KUBECONFIG": str(kube.kubeconfig),
            "DORAFLOW_API_URL": api_url,
            "DORAFLOW_API_SECRET_KEY": SECRET,
            "DORAFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DORAFLOW_KAFKA_TOPIC_PREFIX": "optest",
            "DORAFLOW_COLLECTOR_IMAGE": "doraflow:test",
            "DORAFLOW_COLLECTOR_ENV_SECRET": "doraflow-runtime",
            "DORAFLOW_OPERATOR_RESYNC_SECONDS": "3",
            "DORAFLOW_WATCH_NAMESPACES": json.dumps([NAMESPACE]),
        },
    )
    time.sleep(1)
    process.check_alive()
    yield process
    process.stop()
    print(process.tail(80))


@pytest.fixture(scope="module")
def applied(kube: KubeCluster, operator: ManagedProcess) -> None:
    for example in ("organization.yaml", "github-token-secret.yaml", "integration-github.yaml"):
        kube.kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples" / example))


def test_organization_is_registered_with_topics_and_an_admin_key(
    kube: KubeCluster, applied: None, api_url: str, kafka_bootstrap: str
) -> None:
    organization = eventually(
        lambda: (
            (body := get_json(kube, "organization", "acme"))
            and (ready := condition(body))
            and ready["status"] == "True"
            and body
        ),
        "Organization Ready",
    )
    status = organization["status"]
    assert condition(organization)["reason"] == "Registered"  # type: ignore[index]
    assert condition(organization)["observedGeneration"] == organization["metadata"]["generation"]  # type: ignore[index]
    assert "optest.acme.git.commits" in status["topics"]
    assert "optest.acme.dlq" in status["topics"]

    secret = get_json(kube, "secret", "acme-doraflow-admin-key")
    key = base64.b64decode(secret["data"]["apiKey"]).decode()
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Organization"
    me = httpx.get(f"{api_url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["organization"]["id"] == status["organizationId"]
    assert me.json()["role"] == "admin"

    import asyncio

    async def topics() -> set[str]:
        bus = create_bus(kafka_bootstrap)
        await bus.start()
        try:
            return await bus.list_topics()
        finally:
            await bus.stop()

    assert set(status["topics"]) <= asyncio.run(topics())


def test_integration_gets_an_owned_collector_with_least_privilege(kube: KubeCluster, applied: None) -> None:
    deployment = eventually(lambda: get_json(kube, "deployment", COLLECTOR), "collector Deployment")
    integration = get_json(kube, "integration", "acme-github")
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Integration",
        "acme-github",
        integration["metadata"]["uid"],
    )
    assert owner["controller"] is True
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "doraflow:test"
    assert container["args"][:4] == ["collect", "git", "--integration", f"{NAMESPACE}/acme-github"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["DORAFLOW_CREDENTIALS_FILE"] == "/var/run/secrets/doraflow/credentials"
    assert env["DORAFLOW_KAFKA_TOPIC_PREFIX"] == "optest"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == COLLECTOR
    config = get_json(kube, "configmap", COLLECTOR)
    assert "kind: Organization" in config["data"]["integration.yaml"]

    # The collector may patch its own Integration's status, and nothing else.
    account = f"system:serviceaccount:{NAMESPACE}:{COLLECTOR}"

    def can(*args: str) -> bool:
        result = kube.kubectl("auth", "can-i", "-n", NAMESPACE, f"--as={account}", *args, check=False)
        return result.stdout.strip() == "yes"

    assert eventually(
        lambda: can("patch", "integrations.doraflow.dev/acme-github", "--subresource=status"),
        "collector RBAC",
    )
    assert not can("patch", "integrations.doraflow.dev/other", "--subresource=status")
    assert not can("patch", "integrations.doraflow.dev/acme-github")
    assert not can("get", "secrets")

    # No kubelet runs pods here, so the collector never becomes available — and the status says so.
    ready = eventually(lambda: condition(get_json(kube, "integration", "acme-github")), "Integration status")
    assert (ready["status"], ready["reason"]) == ("False", "CollectorUnavailable")
    printed = kube.kubectl("get", "integrations", "-n", NAMESPACE).stdout
    assert "PROVIDER" in printed
    assert "github" in printed
    assert "acme" in printed


def test_deployment_follows_spec_changes_and_comes_back_when_deleted(
    kube: KubeCluster, applied: None
) -> None:
    first = eventually(lambda: get_json(kube, "deployment", COLLECTOR), "collector Deployment")
    first_hash = first["spec"]["template"]["metadata"]["annotations"]["doraflow.dev/config-hash"]
    kube.kubectl(
        "patch",
        "integration",
        "acme-github",
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"backfillDays": 30}}),
    )

    def rolled() -> Any:
        body = get_json(kube, "deployment", COLLECTOR)
        new_hash = body["spec"]["template"]["metadata"]["annotations"]["doraflow.dev/config-hash"]
        return body if new_hash != first_hash else None

    eventually(rolled, "Deployment updated after the spec change")
    assert "backfillDays: 30" in get_json(kube, "configmap", COLLECTOR)["data"]["integration.yaml"]

    uid = get_json(kube, "deployment", COLLECTOR)["metadata"]["uid"]
    kube.kubectl("delete", "deployment", COLLECTOR, "-n", NAMESPACE, "--wait=true")
    restored = eventually(
        lambda: (body := get_json(kube, "deployment", COLLECTOR)) and body["metadata"]["uid"] != uid and body,
        "Deployment restored",
    )
    assert restored["spec"]["replicas"] == 1


def test_integration_with_a_missing_secret_says_what_to_create(kube: KubeCluster, applied: None) -> None:
    kube.kubectl(
        "apply",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "doraflow.dev/v1alpha1",
                "kind": "Integration",
                "metadata": {"name": "no-secret"},
                "spec": {
                    "organizationRef": {"name": "acme"},
                    "provider": "gitlab",
                    "credentialsSecretRef": {"name": "gitlab-token"},
                },
            }
        ),
    )
    ready = eventually(lambda: condition(get_json(kube, "integration", "no-secret")), "status of no-secret")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert "kubectl create secret generic gitlab-token" in ready["message"]
    assert get_json(kube, "deployment", "doraflow-collector-no-secret") is None


def test_deleting_the_integration_garbage_collects_its_collector(
    kube: KubeCluster, applied: None, operator: ManagedProcess
) -> None:
    eventually(lambda: get_json(kube, "deployment", COLLECTOR), "collector Deployment")
    kube.kubectl("delete", "integration", "acme-github", "-n", NAMESPACE, "--wait=true")
    # The garbage collector of the test control plane notices new resource types every 30 s.
    eventually(lambda: get_json(kube, "deployment", COLLECTOR) is None, "Deployment collected", timeout=120)
    assert get_json(kube, "serviceaccount", COLLECTOR) is None
    operator.check_alive()


def test_declared_teams_are_synced_into_the_api_and_follow_the_spec(
    kube: KubeCluster, applied: None, api_url: str
) -> None:
    """`spec.teams` of examples/organization.yaml become the organization's teams, managed by the
    resource; editing the spec updates them and a team taken out of it goes."""
    synced = eventually(
        lambda: (
            (ready := condition(get_json(kube, "organization", "acme"), "TeamsSynced"))
            and ready["status"] == "True"
            and ready
        ),
        "TeamsSynced",
    )
    # No repository has been collected here: the declared names wait for their first collection.
    assert "not collected yet" in synced["message"]
    assert "payments/acme/payments-*" in synced["message"]
    secret = get_json(kube, "secret", "acme-doraflow-admin-key")
    headers = {"Authorization": f"Bearer {base64.b64decode(secret['data']['apiKey']).decode()}"}

    def teams() -> dict[str, Any]:
        response = httpx.get(f"{api_url}/api/v1/teams", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return {team["slug"]: team for team in response.json()["items"]}

    declared = eventually(
        lambda: (found := teams()) and {"payments", "platform"} <= set(found) and found, "teams"
    )
    assert declared["payments"]["managed_by"] == f"Organization {NAMESPACE}/acme"
    assert (declared["payments"]["member_count"], declared["platform"]["member_count"]) == (2, 1)
    by_hand = httpx.post(
        f"{api_url}/api/v1/teams", json={"name": "By hand", "slug": "by-hand"}, headers=headers, timeout=10
    )
    assert by_hand.status_code == 201, by_hand.text

    kube.kubectl(
        "patch",
        "organization",
        "acme",
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        json.dumps(
            {
                "spec": {
                    "teams": [
                        {
                            "slug": "payments",
                            "name": "Payments & Billing",
                            "members": ["ana@acme.io", "github:bo-acme", "chen@acme.io"],
                            "repositories": ["acme/payments-*"],
                        }
                    ]
                }
            }
        ),
    )
    after = eventually(
        lambda: (
            (found := teams())
            and "platform" not in found
            and found["payments"]["member_count"] == 3
            and found
        ),
        "teams follow the spec",
    )
    assert after["payments"]["name"] == "Payments & Billing"
    assert set(after) == {"payments", "by-hand"}  # the team made through the API stays
