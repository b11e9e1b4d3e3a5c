"""A real Kubernetes control plane for tests, the way controller-runtime's envtest runs one.

etcd, kube-apiserver and kube-controller-manager (garbage-collector and namespace controllers
only) run as local processes on loopback ports; there is no kubelet, so nothing ever runs a pod.
The binaries come from `scripts/testenv kubernetes` ($DORAFLOW_CACHE/bin) or from the folder in
KUBEBUILDER_ASSETS; helm from `scripts/testenv helm` or HELM_BIN. See docs/testenv-kubernetes.md.

Fixtures: `kube` (session) -> KubeCluster, `helm` (session) -> Path of the helm binary.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.testenv.common import ManagedProcess, cache_dir, free_port, unavailable, wait_until

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

ADMIN_USER = "doraflow-admin"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"  # only ever allocated, never routed: there is no kube-proxy
STARTUP_TIMEOUT = 90.0  # generous for a loaded 2-core CI machine; a warm start takes a few seconds


def kube_bin_dir() -> Path:
    """Where etcd, kube-apiserver, kube-controller-manager and kubectl are looked up."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(assets) if assets else cache_dir() / "bin"


def helm_bin() -> Path | None:
    """The helm binary: HELM_BIN if set, else the one `scripts/testenv helm` built; None if absent."""
    configured = os.environ.get("HELM_BIN")
    path = Path(configured) if configured else cache_dir() / "bin" / "helm"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message carries kubectl's stderr (the API server's own words)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}\nstdout: {self.output}"


@dataclass
class KubeCluster:
    """A running control plane. Use `api_client()` for the official client, `kubectl()` for the CLI."""

    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    kubectl_bin: Path
    has_controller_manager: bool
    startup_seconds: float
    processes: list[ManagedProcess] = field(default_factory=list)
    _kubectl_cache: Path | None = None

    def api_client(self) -> ApiClient:
        """A `kubernetes.client.ApiClient` configured from the kubeconfig file (caller closes it)."""
        from kubernetes import config

        new_client: Any = config.new_client_from_config  # untyped in the package
        api_client: ApiClient = new_client(config_file=str(self.kubeconfig))
        return api_client

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args]
        if self._kubectl_cache is not None:
            argv.insert(1, f"--cache-dir={self._kubectl_cache}")
        result = subprocess.run(argv, input=input, capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (operator, helm, kubectl) that should talk to this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """A raw GET against the API server as the admin (or with `token`): (status, decoded JSON)."""
        return _request(self.server + path, token or self.token, self.ca_file)


def _ssl_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _request(url: str, token: str, ca_file: Path) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 - https URLs we built
    try:
        with urllib.request.urlopen(req, timeout=5, context=_ssl_context(ca_file)) as resp:  # noqa: S310
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")


def _make_pki(pki: Path) -> None:
    """Throwaway CA, serving certificate for 127.0.0.1/localhost and service-account signing key."""
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make the test API server's certificates")
    pki.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=doraflow-testenv-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )
    _openssl(
        "req",
        *ec,
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=pki,
    )
    (pki / "apiserver.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        "2",
        "-extfile",
        "apiserver.ext",
        cwd=pki,
    )
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "doraflow-test", "cluster": {"server": server, "certificate-authority-data": ca_data}},
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "doraflow-test", "context": {"cluster": "doraflow-test", "user": user}}],
        "current-context": "doraflow-test",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    path.chmod(0o600)


def _etcd_healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def _https_ok(url: str, token: str | None, ca_file: Path | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if ca_file is None:  # kube-controller-manager serves a self-signed certificate of its own
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = _ssl_context(ca_file)
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 - https URLs we built
    with urllib.request.urlopen(req, timeout=2, context=context) as resp:  # noqa: S310
        return bool(resp.status == 200)


def _wait(proc: ManagedProcess, probe: Callable[[], bool], what: str) -> None:
    """Wait for `probe`; a process that dies ends the wait at once, with its log tail."""
    try:
        wait_until(lambda: not proc.alive() or probe(), STARTUP_TIMEOUT, what)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{proc.name} log:\n{proc.tail()}") from None
    proc.check_alive()


def start_control_plane(workdir: Path) -> KubeCluster:
    """Start etcd, kube-apiserver and (if present) kube-controller-manager under `workdir`."""
    bins = kube_bin_dir()
    required = ["etcd", "kube-apiserver", "kubectl"]
    missing = [name for name in required if not (bins / name).is_file()]
    if missing:
        unavailable(
            f"Kubernetes test binaries missing in {bins}: {', '.join(missing)} "
            "(run `scripts/testenv kubernetes` or set KUBEBUILDER_ASSETS)"
        )
    kcm_bin = bins / "kube-controller-manager"
    started = time.monotonic()
    processes: list[ManagedProcess] = []
    try:
        pki = workdir / "pki"
        _make_pki(pki)
        ca_file = pki / "ca.crt"
        token = secrets.token_hex(24)
        kcm_token = secrets.token_hex(24)
        # a static token file: admin and the controller manager are both cluster admins
        tokens = workdir / "tokens.csv"
        tokens.write_text(
            f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            f'{kcm_token},system:kube-controller-manager,system:kube-controller-manager,"system:masters"\n'
        )
        tokens.chmod(0o600)

        etcd_port, etcd_peer_port = free_port(), free_port()
        etcd = ManagedProcess(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=default",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
                "--unsafe-no-fsync",  # test data: durability is not wanted, speed is
                "--log-level=warn",
            ],
            workdir / "logs" / "etcd.log",
        )
        processes.append(etcd)

        api_port = free_port()
        server = f"https://127.0.0.1:{api_port}"
        apiserver_argv = [
            str(bins / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={ca_file}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            # no serviceaccount-token controller runs, so pods would wait for a default account forever
            "--disable-admission-plugins=ServiceAccount",
            # no --advertise-address: a loopback one is invalid for the `kubernetes` Endpoints, and
            # with no reconciler the host address it picks is never published or dialled
            "--endpoint-reconciler-type=none",
        ]
        # etcd must be up before kube-apiserver, or the apiserver spends seconds in retry backoff
        _wait(etcd, lambda: _etcd_healthy(etcd_port), "etcd")
        apiserver = ManagedProcess("kube-apiserver", apiserver_argv, workdir / "logs" / "kube-apiserver.log")
        processes.append(apiserver)

        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, ca_file, ADMIN_USER, token)
        _write_kubeconfig(
            workdir / "kcm.kubeconfig", server, ca_file, "system:kube-controller-manager", kcm_token
        )
        _wait(apiserver, lambda: _https_ok(f"{server}/readyz", token, ca_file), "kube-apiserver /readyz")

        has_kcm = kcm_bin.is_file()
        if has_kcm:
            kcm_port = free_port()
            kcm = ManagedProcess(
                "kube-controller-manager",
                [
                    str(kcm_bin),
                    f"--kubeconfig={workdir / 'kcm.kubeconfig'}",
                    f"--authentication-kubeconfig={workdir / 'kcm.kubeconfig'}",
                    f"--authorization-kubeconfig={workdir / 'kcm.kubeconfig'}",
                    "--leader-elect=false",
                    "--controllers=garbage-collector-controller,namespace-controller",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={kcm_port}",
                    f"--cert-dir={workdir / 'kcm-certs'}",
                ],
                workdir / "logs" / "kube-controller-manager.log",
            )
            processes.append(kcm)
            _wait(
                kcm,
                lambda: _https_ok(f"https://127.0.0.1:{kcm_port}/healthz", None, None),
                "kube-controller-manager /healthz",
            )
    except BaseException:
        for proc in reversed(processes):
            proc.stop(timeout=10)
        raise
    return KubeCluster(
        server=server,
        token=token,
        kubeconfig=kubeconfig,
        ca_file=ca_file,
        kubectl_bin=bins / "kubectl",
        has_controller_manager=has_kcm,
        startup_seconds=time.monotonic() - started,
        processes=processes,
        _kubectl_cache=workdir / "kubectl-cache",
    )


def stop_control_plane(cluster: KubeCluster) -> None:
    for proc in reversed(cluster.processes):  # controller manager, apiserver, then etcd
        proc.stop(timeout=10)


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    """A running control plane for the whole session; everything is removed afterwards.

    DORAFLOW_KUBE_KEEP=1 keeps the data, certificates and logs (logs/*.log) for a post-mortem.
    """
    workdir = Path(tempfile.mkdtemp(prefix="doraflow-kube-"))
    try:
        cluster = start_control_plane(workdir)
        try:
            yield cluster
        finally:
            stop_control_plane(cluster)
    finally:
        if os.environ.get("DORAFLOW_KUBE_KEEP", "") in {"", "0"}:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nkube: kept {workdir} (DORAFLOW_KUBE_KEEP)")


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of the helm binary (HELM_BIN or the one built by `scripts/testenv helm`)."""
    path = helm_bin()
    if path is None:
        unavailable("helm missing (run `scripts/testenv helm` or set HELM_BIN)")
    return path
