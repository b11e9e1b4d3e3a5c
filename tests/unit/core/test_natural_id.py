"""`natural_id` is RFC 4122 uuid5 of the joined natural key: ids already stored must not change."""

from __future__ import annotations

import uuid

from doraflow.core.models import NAMESPACE_DORAFLOW, natural_id


def reference(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE_DORAFLOW, "\x1f".join([kind, *(str(part) for part in parts)]))


def test_natural_id_is_uuid5_of_the_joined_key() -> None:
    organization = uuid.UUID("0b6d1b5e-3c1a-4d3e-9a57-2f0a7c3d9e10")
    cases: list[tuple[str, tuple[object, ...]]] = [
        ("deployment", (organization, "github", "42")),
        ("review", (uuid.uuid4(), 123456789)),
        ("developer", (organization, "dévelopeur@acme.io")),
        ("organization", ("acme",)),
        ("issue", ()),
    ]
    for kind, parts in cases:
        made = natural_id(kind, *parts)
        assert made == reference(kind, *parts)
        assert made.version == 5
        assert made.variant == uuid.RFC_4122


def test_equal_parts_of_different_types_are_not_confused_by_the_cache() -> None:
    assert natural_id("x", True) == reference("x", True)
    assert natural_id("x", 1) == reference("x", 1)
    assert natural_id("x", 1) != natural_id("x", True)
