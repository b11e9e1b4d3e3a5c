"""The resource models are the single source of truth for CRDs and the embedded --config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doraflow.core import crds
from doraflow.core.resources import (
    Integration,
    Organization,
    ResourceError,
    load_resources,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[3]

EXAMPLE = """
apiVersion: doraflow.dev/v1alpha1
kind: Organization
metadata: {name: acme, namespace: doraflow}
spec:
  displayName: Acme Inc.
  teams:
    - {slug: payments, name: Payments, members: [ana@acme.io], repositories: ["acme/pay-*"]}
---
apiVersion: doraflow.dev/v1alpha1
kind: Integration
metadata: {name: acme-github, namespace: doraflow}
spec:
  organizationRef: {name: acme}
  provider: github
  credentialsSecretRef: {name: github-token}
  scope: {repositories: ["acme/*"], exclude: ["acme/sandbox-*"]}
  schedules: {pullRequests: 10m}
"""


def test_yaml_file_of_resources_parses_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "doraflow.yaml"
    path.write_text(EXAMPLE)
    organization, integration = load_resources(path)
    assert isinstance(organization, Organization)
    assert organization.slug == "acme"
    assert organization.spec.kafka.partitions == 10
    assert isinstance(integration, Integration)
    assert integration.key == "doraflow/acme-github"
    assert integration.spec.schedules.pull_requests == "10m"
    assert integration.spec.schedules.commits == "1h"  # the seed's default
    assert integration.spec.deployments.tag_pattern == r"^v?\d+(\.\d+)*$"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provider": "svn"}, "spec.provider: Input should be 'github'"),
        ({"schedules": {"commits": "hourly"}}, "spec.schedules.commits: String should match pattern"),
        ({"credentialsSecretRef": None}, "credentialsSecretRef is required for provider github"),
        ({"deployments": {"tagPattern": "v(("}}, "spec.deployments.tagPattern: Value error, not a valid"),
        ({"colour": "blue"}, "spec.colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_name_the_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    documents = list(yaml.safe_load_all(EXAMPLE))
    documents[1]["spec"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(ResourceError, match="document 2") as error:
        load_resources(path)
    assert message in str(error.value)


def test_unknown_kind_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: Pod\nmetadata: {name: x}\n")
    with pytest.raises(ResourceError, match="kind must be Organization or Integration"):
        load_resources(path)
    path.write_text("kind: [unclosed")
    with pytest.raises(ResourceError, match="not valid YAML"):
        load_resources(path)


def test_durations() -> None:
    assert parse_duration("15m").total_seconds() == 900
    assert parse_duration("1d").total_seconds() == 86400
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("0h")


def test_checked_in_crds_match_the_generator() -> None:
    assert crds.main(["--root", str(ROOT)]) == 0, "run `make crds` and commit the result"


def test_crd_schemas_are_structural() -> None:
    for plural in crds.CRD_SOURCES:
        crd = crds.render_crd(plural)
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        text = yaml.safe_dump(schema)
        assert "$ref" not in text
        assert "anyOf" not in text
        assert "additionalProperties: false" not in text
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_integration_crd_defaults_schedules_and_has_printer_columns() -> None:
    crd = crds.render_crd("integrations")
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["schedules"]["default"] == {}
    assert spec["properties"]["schedules"]["properties"]["pullRequests"]["default"] == "30m"
    assert spec["properties"]["provider"]["enum"] == [
        "github",
        "gitlab",
        "bitbucket",
        "git",
        "jira",
        "linear",
        "asana",
    ]
    columns = {column["name"] for column in version["additionalPrinterColumns"]}
    assert {"Provider", "Organization", "Ready", "Last Sync", "Age"} <= columns
    assert crd["spec"]["names"]["shortNames"] == ["dfint"]
