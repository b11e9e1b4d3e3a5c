"""Records: timezone handling and validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from doraflow.metrics import Change, Incident, IssueTransition, StatusCategory, Window
from tests.unit.metrics.builders import T0, deploy

PLUS_TWO = timezone(timedelta(hours=2))


def test_naive_datetimes_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"Change\.authored_at is a naive datetime"):
        Change(sha="a", authored_at=datetime(2024, 3, 4, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match=r"Deployment\.finished_at is a naive datetime"):
        deploy("d", datetime(2024, 3, 4, 10, 0), "r")  # noqa: DTZ001
    with pytest.raises(ValueError, match=r"Incident\.resolved_at is a naive datetime"):
        Incident("i", created_at=T0, resolved_at=datetime(2024, 3, 4, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        Window(datetime(2024, 3, 4), datetime(2024, 3, 5))  # noqa: DTZ001


def test_offsets_are_normalised_to_utc() -> None:
    # 12:00 at +02:00 is 10:00 UTC
    change = Change(sha="a", authored_at=datetime(2024, 3, 4, 12, 0, tzinfo=PLUS_TWO))
    assert change.authored_at == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert change.authored_at.utcoffset() == timedelta(0)


def test_window_is_half_open_and_must_not_be_empty() -> None:
    window = Window(T0, T0 + timedelta(days=1))
    assert window.contains(T0)
    assert not window.contains(T0 + timedelta(days=1))
    assert window.days == 1
    with pytest.raises(ValueError, match="must be after"):
        Window(T0, T0)


def test_commit_lists_become_tuples_and_categories_enums() -> None:
    deployment = deploy("d", T0, "r", ["a", "b"])  # type: ignore[arg-type]
    assert deployment.commit_shas == ("a", "b")
    transition = IssueTransition("W", T0, "done")  # type: ignore[arg-type]
    assert transition.to_category is StatusCategory.DONE


def test_incident_impact_start_defaults_to_creation() -> None:
    assert Incident("i", created_at=T0).impact_started_at == T0
    assert Incident(
        "i", created_at=T0, started_at=T0 - timedelta(hours=1)
    ).impact_started_at == T0 - timedelta(hours=1)
