"""Generate the CustomResourceDefinitions from the resource models (doraflow.core.resources).

The pydantic models are the one source of truth: this turns their JSON Schema into the structural
OpenAPI v3 schema Kubernetes requires (refs inlined, `null` unions turned into `nullable`, no
`additionalProperties: false`, free-form maps marked to preserve unknown fields), and adds the status
subresource, printer columns and short names. `python -m doraflow.core.crds --write` regenerates
`crds/` and the Helm chart's copy; a test fails when the checked-in files drift.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from doraflow.core.resources import (
    API_GROUP,
    API_VERSION,
    IntegrationSpec,
    IntegrationStatus,
    OrganizationSpec,
    OrganizationStatus,
)

READY = '.status.conditions[?(@.type=="Ready")].status'
_DROP = {"title", "additionalProperties", "$defs"}

CRD_SOURCES: dict[str, dict[str, Any]] = {
    "organizations": {
        "kind": "Organization",
        "singular": "organization",
        "short_names": ["dforg"],
        "spec": OrganizationSpec,
        "status": OrganizationStatus,
        "columns": [
            {"name": "Slug", "type": "string", "jsonPath": ".spec.slug"},
            {"name": "Ready", "type": "string", "jsonPath": READY},
            {
                "name": "Organization ID",
                "type": "string",
                "jsonPath": ".status.organizationId",
                "priority": 1,
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    },
    "integrations": {
        "kind": "Integration",
        "singular": "integration",
        "short_names": ["dfint"],
        "spec": IntegrationSpec,
        "status": IntegrationStatus,
        # The model validator of IntegrationSpec, as a CEL rule the API server enforces too.
        "rules": [
            {
                "rule": "self.provider == 'git' || has(self.credentialsSecretRef)",
                "message": "credentialsSecretRef is required for every provider except git",
            }
        ],
        "columns": [
            {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
            {"name": "Organization", "type": "string", "jsonPath": ".spec.organizationRef.name"},
            {"name": "Ready", "type": "string", "jsonPath": READY},
            {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSyncTime"},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    },
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's validation schema as a Kubernetes structural schema (camelCase field names)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    converted: dict[str, Any] = _convert(schema, schema.get("$defs", {}))
    return converted


def _convert(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(definitions[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, definitions)
    node = dict(node)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option != {"type": "null"}]
        nullable = len(options) < len(node["anyOf"])
        del node["anyOf"]
        if len(options) != 1:
            raise ValueError(f"a structural schema cannot express the union {options}")
        node = {**options[0], **node}
        if nullable:
            node["nullable"] = True
        if "$ref" in node:
            return _convert(node, definitions)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            required = set(node.get("required", ()))
            result[key] = {
                name: _with_empty_default(_convert(sub, definitions), optional=name not in required)
                for name, sub in value.items()
            }
        elif key == "default" and value is None:
            continue
        else:
            result[key] = _convert(value, definitions)
    additional = node.get("additionalProperties")
    if node.get("type") == "object" and "properties" not in node:
        if isinstance(additional, dict) and additional:
            result["additionalProperties"] = _convert(additional, definitions)
        else:
            result["x-kubernetes-preserve-unknown-fields"] = True
    if result.get("type") == "object" and "properties" in result and "default" in result:
        del result["default"]
    return result


def _with_empty_default(schema: dict[str, Any], *, optional: bool) -> dict[str, Any]:
    """Give optional nested objects without required fields `default: {}`, so the API server also
    applies the defaults inside them (the seed's schedules) when the user omits the whole object."""
    if optional and schema.get("type") == "object" and "properties" in schema and not schema.get("required"):
        return {**schema, "default": {}}
    return schema


def render_crd(plural: str) -> dict[str, Any]:
    source = CRD_SOURCES[plural]
    spec_schema = structural_schema(source["spec"])
    if source.get("rules"):
        spec_schema["x-kubernetes-validations"] = source["rules"]
    status_schema = structural_schema(source["status"])
    status_schema["x-kubernetes-preserve-unknown-fields"] = True  # kopf keeps its progress here
    kind = source["kind"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "doraflow", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": source["singular"],
                "shortNames": source["short_names"],
                "categories": ["doraflow"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": source["columns"],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (source["spec"].__doc__ or kind).strip().split("\n\n")[0],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = (
    "# Generated by `python -m doraflow.core.crds --write` from doraflow/core/resources.py. Do not edit.\n"
)


def render_all() -> dict[str, str]:
    """File name → YAML text for every CRD."""
    return {
        f"{plural}.{API_GROUP}.yaml": HEADER + yaml.safe_dump(render_crd(plural), sort_keys=False, width=120)
        for plural in CRD_SOURCES
    }


def output_dirs(root: Path) -> list[Path]:
    return [root / "crds", root / "charts" / "doraflow" / "crds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--write", action="store_true", help="write the files (default: check them)")
    args = parser.parse_args(argv)
    stale = []
    for directory in output_dirs(args.root):
        for name, text in render_all().items():
            path = directory / name
            if args.write:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            elif not path.exists() or path.read_text() != text:
                stale.append(str(path))
    if stale:
        print("out of date (run `make crds`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
