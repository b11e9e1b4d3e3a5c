"""`doraflow up` end to end: a real repository with release tags → embedded PostgreSQL → numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pgserver
import pytest

from tests.testenv.common import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.e2e


def git(repo: Path, *args: str, when: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_AUTHOR_NAME": "Ana",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
    }
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def commit(repo: Path, name: str, when: str) -> None:
    (repo / name).write_text(f"{name}\n")
    git(repo, "add", name, when=when)
    git(repo, "commit", "-q", "-m", f"add {name}", when=when)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """Two releases a day apart, recent enough to fall in the 90-day window.

    v1.0.0 ships a (authored 2 days before it) and b (1 day before); v1.1.0 ships c (1 hour before).
    Lead times: 48h, 24h, 1h → median 24h."""
    repo = tmp_path / "service"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    day = 86400
    now = int(time.time()) - 10 * day
    commit(repo, "a", f"@{now - 2 * day} +0000")
    commit(repo, "b", f"@{now - day} +0000")
    git(repo, "tag", "-a", "-m", "release", "v1.0.0", when=f"@{now} +0000")
    commit(repo, "c", f"@{now + day - 3600} +0200")
    git(repo, "tag", "-a", "-m", "release", "v1.1.0", when=f"@{now + day} +0000")
    git(repo, "tag", "v1.2.0-rc1", when=f"@{now + day} +0000")  # a pre-release: not a deployment
    return repo


def start_up(home: Path, port: int, *args: str, cwd: Path) -> ManagedProcess:
    """`doraflow up` with everything embedded (no database, Kafka or Redis from the environment),
    its data under `home`, its output in `home`'s sibling `up.log`."""
    env = {"DORAFLOW_HOME": str(home), "DORAFLOW_LOG_LEVEL": "WARNING"}
    for name in ("DORAFLOW_DATABASE_URL", "DORAFLOW_KAFKA_BOOTSTRAP_SERVERS", "DORAFLOW_REDIS_URL"):
        env[name] = ""
    return ManagedProcess(
        " ".join(["doraflow up", *args]),
        [sys.executable, "-m", "doraflow.cli", "up", "--port", str(port), *args],
        home.parent / "up.log",
        env=env,
        cwd=cwd,
    )


def test_up_collects_the_current_repository_and_serves_its_metrics(repository: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    up = start_up(home, port, cwd=repository)
    try:

        def summary_printed() -> bool:
            up.check_alive()
            return "dashboard and API at" in up.tail(200)

        wait_until(summary_printed, 120, "doraflow up")
        output = up.tail(200)
        assert "organization 'default' created" in output
        assert "✓ service commits: 3 events" in output
        assert "2 deployments" in output
        key_file = home / "admin.key"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        key = key_file.read_text().strip()
        assert key in output  # printed once, at creation

        headers = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        dora = httpx.get(
            f"{base}/api/v1/analytics/dora", params={"window": "90d"}, headers=headers, timeout=30
        )
        assert dora.status_code == 200, dora.text
        metrics = dora.json()["metrics"]
        assert metrics["lead_time_for_changes"]["sample_size"] == 3
        assert metrics["lead_time_for_changes"]["value"] == pytest.approx(24 * 3600)
        assert metrics["deployment_frequency"]["sample_size"] == 2
        assert httpx.get(f"{base}/", timeout=10).status_code == 200  # the dashboard
        assert httpx.get(f"{base}/api/v1/analytics/dora", timeout=10).status_code == 401

        # Branches, tags and contributors of the repository are stored too (read from the embedded
        # database while `up` runs; the handle leaves the server to the last process using it).
        with pgserver.get_server(home / "postgres") as database:

            def stored(sql: str) -> str:
                return str(database.psql(f"COPY ({sql}) TO STDOUT;")).strip()

            refs = (
                "SELECT (SELECT string_agg(name || ':' || is_default, ',') FROM branches)"
                " || ' ' || (SELECT string_agg(name, ',' ORDER BY name) FROM tags)"
                " || ' ' || (SELECT string_agg(d.email || ':' || c.contributions, ',')"
                "            FROM repository_contributors c JOIN developers d ON d.id = c.developer_id)"
            )
            wait_until(
                lambda: up.check_alive() and stored(refs) not in ("", "\\N"), 30, "refs and contributors"
            )
            assert stored(refs) == "main:true v1.0.0,v1.1.0,v1.2.0-rc1 ana@example.com:3"
    finally:
        up.stop()
    assert up.process.returncode == 0, up.tail()


def test_up_with_a_config_makes_the_organizations_declared_teams(repository: Path, tmp_path: Path) -> None:
    """`spec.teams` of the file's Organization become its teams, as the operator makes them: the
    member by email, the repository glob remembered and linked once the repository is collected."""
    home = tmp_path / "home"
    config = tmp_path / "doraflow.yaml"
    config.write_text(
        f"""
apiVersion: doraflow.dev/v1alpha1
kind: Organization
metadata:
  name: acme
spec:
  displayName: Acme
  teams:
    - slug: core
      name: Core
      members: [ana@example.com]
      repositories: ["serv*"]
---
apiVersion: doraflow.dev/v1alpha1
kind: Integration
metadata:
  name: service
spec:
  organizationRef:
    name: acme
  provider: git
  scope:
    repositories: [{json.dumps(str(repository))}]
"""
    )
    port = free_port()
    up = start_up(home, port, "--config", str(config), cwd=tmp_path)
    try:
        wait_until(lambda: up.check_alive() and "dashboard and API at" in up.tail(200), 120, "doraflow up")
        assert "acme: 1 team from spec.teams — repositories linked once collected: serv*" in up.tail(200)
        headers = {"Authorization": f"Bearer {(home / 'admin-acme.key').read_text().strip()}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        teams = httpx.get(f"{base}/teams", headers=headers, timeout=30)
        assert teams.status_code == 200, teams.text
        [team] = teams.json()["items"]
        assert (team["slug"], team["name"], team["managed_by"]) == (
            "core",
            "Core",
            "Organization default/acme",
        )
        detail = httpx.get(f"{base}/teams/{team['id']}", headers=headers, timeout=30).json()
        assert [r["name"] for r in detail["repositories"]] == ["service"]
        [member] = detail["members"]
        developer = httpx.get(f"{base}/developers/{member['developer_id']}", headers=headers, timeout=30)
        assert developer.json()["email"] == "ana@example.com"
    finally:
        up.stop()
    assert up.process.returncode == 0, up.tail()
