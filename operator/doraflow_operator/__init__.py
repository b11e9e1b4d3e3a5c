"""The Doraflow operator: turns Organization and Integration resources into running collectors,
Kafka topics and API registrations (DESIGN.md §7). Handlers (handlers.py) are thin; the decisions
live in plain functions (conditions, manifests, reconcile) that are tested without a cluster."""
