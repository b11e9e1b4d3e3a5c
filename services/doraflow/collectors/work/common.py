"""What the Jira, Linear and Asana clients share that git hosts do not.

* `UPDATED_WINDOW`: how the trackers read the shared "updated since" cursor
  (`collectors.common.stream_window`). Work items change in place (a status moves, points are
  re-estimated), so the only way to see changes is "everything updated since"; the boundary item is
  read again, because it is cheap and trackers round their filters.
* `IncidentMatcher`: the Integration's incident rules (types, labels, priorities, a provider
  filter) and how an incident names its service (a field, a label prefix, a component).
* `category_from_name`: a status-name heuristic for trackers without status categories (Asana
  sections), and for Jira statuses deleted since a transition happened.
* `field_text`, `number`: custom-field values as text and as estimates.

Times, people, scope patterns, the cursor itself and the error hints are shared with the git
collectors (`collectors.common`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from doraflow.collectors.common import WindowRules, clip
from doraflow.core.resources import IncidentRules

Category = Literal["todo", "in_progress", "done"]

# Work cursors have always been saved with `owed: {from, to}`; git cursors with `{after, before}`.
UPDATED_WINDOW = WindowRules(reread_since=True, owed_keys=("from", "to"))


# -- statuses ------------------------------------------------------------------------------------

_DONE_WORDS = re.compile(r"(?i)\b(done|complete[d]?|closed|resolved|shipped|released|deployed|finished)\b")
_PROGRESS_WORDS = re.compile(
    r"(?i)\b(in[ -]?progress|doing|started|active|review|reviewing|qa|testing|wip|development|"
    r"implementing|blocked)\b"
)


def category_from_name(name: str | None) -> Category | None:
    """Best effort for names without a category: "Done"/"Closed" → done, "In Progress"/"Review" →
    in_progress, anything else named → todo."""
    if not name:
        return None
    if _DONE_WORDS.search(name):
        return "done"
    if _PROGRESS_WORDS.search(name):
        return "in_progress"
    return "todo"


# -- incidents -----------------------------------------------------------------------------------


class IncidentMatcher:
    """The Integration's `incidents` rules for one provider. A work item is an incident when its
    type, one of its labels or its priority is listed, or when the provider filter selects it;
    `types_are_labels` lets trackers without issue types (Linear, Asana) match a type by label."""

    def __init__(self, rules: IncidentRules, *, types_are_labels: bool = False) -> None:
        self.rules = rules
        self._types = {t.lower() for t in rules.issue_types}
        self._labels = {label.lower() for label in rules.labels}
        self._priorities = {p.lower() for p in rules.priorities}
        self._types_are_labels = types_are_labels

    def matches(
        self, issue_type: str | None, labels: Iterable[str], priority: str | None, *, filtered: bool = False
    ) -> bool:
        names = {label.lower() for label in labels}
        if filtered:
            return True
        if issue_type and issue_type.lower() in self._types:
            return True
        if self._types_are_labels and names & self._types:
            return True
        if names & self._labels:
            return True
        return bool(priority and priority.lower() in self._priorities)

    def service(
        self, labels: Sequence[str], components: Sequence[str], field_value: str | None = None
    ) -> str | None:
        """The service an incident names: the service field, else a label with the prefix (the
        prefix removed), else the first component when components name services."""
        if field_value:
            return clip(field_value, 255)
        prefix = self.rules.service_label_prefix
        if prefix:
            for label in labels:
                if label.lower().startswith(prefix.lower()) and len(label) > len(prefix):
                    return clip(label[len(prefix) :], 255)
        if self.rules.use_components and components:
            return clip(components[0], 255)
        return None


def field_text(value: Any) -> str | None:
    """A custom field's value as text: a string, a select option (`value`/`name`), the first of a
    multi-select, or a number."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        for key in ("value", "name", "displayName", "display_value"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
        return None
    if isinstance(value, list):
        for item in value:
            text = field_text(item)
            if text:
                return text
    return None


def number(value: Any) -> float | None:
    """A non-negative estimate, or None (story points are never negative in the event schema)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result >= 0 else None
