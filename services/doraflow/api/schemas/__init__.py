"""Request and response models of the REST API, kept apart from the ORM models on purpose:
the wire format is a contract with clients and must not change when a column does."""
