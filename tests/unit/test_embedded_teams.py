"""`doraflow up` declares an Organization's `spec.teams` through the API's sync, as the operator
does: the body it sends, a declaration the API would refuse stopping start-up before anything
starts, and the line that tells the user what the sync did (the sync itself runs end to end in
tests/e2e/test_up.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from doraflow.api.schemas.teams import DeclaredTeam
from doraflow.api.services.declared_teams import SyncedTeam, TeamSync
from doraflow.core.resources import Organization, ResourceError
from doraflow.core.settings import Settings
from doraflow.embedded import declared_teams, run_up, teams_line


def organization(*teams: dict[str, object]) -> Organization:
    return Organization.model_validate(
        {
            "apiVersion": "doraflow.dev/v1alpha1",
            "kind": "Organization",
            "metadata": {"name": "acme", "namespace": "team-a"},
            "spec": {"displayName": "Acme", "teams": list(teams)},
        }
    )


def test_spec_teams_are_the_body_the_operator_sends() -> None:
    declared = declared_teams(
        organization({"slug": "core", "name": "Core", "members": ["ana@acme.io"], "repositories": ["acme/*"]})
    )
    assert declared == [
        DeclaredTeam(slug="core", name="Core", members=["ana@acme.io"], repositories=["acme/*"])
    ]


def test_a_declaration_the_api_refuses_names_the_organization() -> None:
    too_many = organization(
        {"slug": "core", "name": "Core", "members": [f"p{i}@acme.io" for i in range(1001)]}
    )
    with pytest.raises(
        ResourceError,
        match=r"^Organization team-a/acme: spec\.teams\[0\]\.members: List should have at most 1000 items",
    ):
        declared_teams(too_many)


async def test_up_refuses_such_a_file_before_starting_anything(tmp_path: Path) -> None:
    config = tmp_path / "doraflow.yaml"
    members = ", ".join(f"p{i}@acme.io" for i in range(1001))
    config.write_text(
        f"""
apiVersion: doraflow.dev/v1alpha1
kind: Organization
metadata: {{name: acme}}
spec:
  displayName: Acme
  teams: [{{slug: core, name: Core, members: [{members}]}}]
---
apiVersion: doraflow.dev/v1alpha1
kind: Integration
metadata: {{name: here}}
spec: {{organizationRef: {{name: acme}}, provider: git, scope: {{repositories: ["."]}}}}
"""
    )
    home = tmp_path / "home"
    with pytest.raises(ResourceError, match=r"^Organization default/acme: spec\.teams\[0\]\.members"):
        await run_up(Settings(home=home, api_secret_key="s"), "127.0.0.1", 0, config)
    assert not (home / "postgres").exists()


def test_the_line_says_what_waits_and_what_to_fix() -> None:
    core = SyncedTeam(
        uuid.uuid4(), "core", "Core", ambiguous_members=["jdoe"], waiting_repositories=["acme/*"]
    )
    web = SyncedTeam(uuid.uuid4(), "web", "Web", waiting_repositories=["acme/web", "acme/*"])
    line = teams_line("acme", TeamSync([core, web], removed=["old"], created_developers=0))
    assert line == (
        "doraflow: acme: 2 teams from spec.teams — removed old — members naming different people on "
        "different providers (write provider:username): jdoe — repositories linked once collected: "
        "acme/*, acme/web"
    )
    one = TeamSync([SyncedTeam(uuid.uuid4(), "core", "Core")], removed=[], created_developers=0)
    assert teams_line("acme", one) == "doraflow: acme: 1 team from spec.teams"
