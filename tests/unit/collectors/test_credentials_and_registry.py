"""Credentials from env or file (never echoed in errors) and the provider registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from doraflow.collectors import registry
from doraflow.collectors.credentials import CredentialsError, load_credentials, load_webhook_secret
from doraflow.collectors.git.local import LocalGitClient
from doraflow.collectors.service import load_integration
from doraflow.core.resources import ResourceError
from tests.unit.collectors.helpers import FakeClient, integration


def test_credentials_from_the_environment_win_over_the_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    assert load_credentials({"DORAFLOW_CREDENTIALS": " from-env "}) == "from-env"
    assert load_credentials({"DORAFLOW_CREDENTIALS_FILE": str(secret_file)}) == "from-file"
    assert load_credentials({}) is None
    assert load_webhook_secret({"DORAFLOW_WEBHOOK_SECRET_FILE": str(secret_file)}) == "from-file"


def test_unreadable_or_empty_files_name_the_path_not_the_content(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read the file"):
        load_credentials({"DORAFLOW_CREDENTIALS_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(CredentialsError, match="is empty"):
        load_credentials({"DORAFLOW_CREDENTIALS_FILE": str(empty)})


def test_registry_resolves_providers_lazily() -> None:
    assert registry.client_class("git") is LocalGitClient
    client = registry.create_client(integration("git", scope={"repositories": ["."]}), None)
    assert isinstance(client, LocalGitClient)
    with pytest.raises(registry.UnknownProviderError, match="no collector for provider 'nope'"):
        registry.client_class("nope")


def test_registering_a_class_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    registry.register("github", FakeClient)
    assert registry.client_class("github") is FakeClient


def test_a_provider_entry_must_name_a_source_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.PROVIDERS, "broken", "doraflow.collectors.status:CollectorStatus")
    with pytest.raises(registry.UnknownProviderError, match="not a SourceClient"):
        registry.client_class("broken")


def test_load_integration_from_a_resource_file(tmp_path: Path) -> None:
    config = tmp_path / "doraflow.yaml"
    config.write_text(
        """
apiVersion: doraflow.dev/v1alpha1
kind: Organization
metadata: {name: acme, namespace: team}
spec: {displayName: ACME, slug: acme-corp, kafka: {partitions: 2}}
---
apiVersion: doraflow.dev/v1alpha1
kind: Integration
metadata: {name: repo, namespace: team}
spec:
  organizationRef: {name: acme}
  provider: git
  scope: {repositories: [.]}
"""
    )
    found, organization = load_integration(config, "team/repo")
    assert found.key == "team/repo"
    assert organization is not None
    assert organization.slug == "acme-corp"
    assert organization.spec.kafka.partitions == 2
    with pytest.raises(ResourceError, match=r"no Integration default/repo \(found: team/repo\)"):
        load_integration(config, "repo")
