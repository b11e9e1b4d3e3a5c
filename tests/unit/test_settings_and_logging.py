from __future__ import annotations

import io
import json
import logging

import pytest

from doraflow.core.logging import JsonFormatter
from doraflow.core.settings import Settings


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DORAFLOW_DATABASE_URL", "postgresql+asyncpg://app:hunter2@db/doraflow")
    monkeypatch.setenv("DORAFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DORAFLOW_KAFKA_TOPIC_PREFIX", "df")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_topic_prefix == "df"
    assert not settings.embedded_database
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_unset_urls_select_the_embedded_implementations(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(f"DORAFLOW_{name}", raising=False)
    monkeypatch.setenv("DORAFLOW_KAFKA_BOOTSTRAP_SERVERS", "")
    settings = Settings()
    assert settings.embedded_database
    assert settings.redis_url is None
    assert settings.kafka_bootstrap_servers is None


def test_invalid_topic_prefix_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DORAFLOW_KAFKA_TOPIC_PREFIX", "bad prefix!")
    with pytest.raises(ValueError, match="kafka_topic_prefix"):
        Settings()


def test_json_logs_are_one_object_per_line_with_secrets_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.json")
    log.addHandler(handler)
    log.propagate = False
    log.warning("synced %s", "acme/api", extra={"repository": "acme/api", "api_token": "ghp_secret"})
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "synced acme/api"
    assert entry["level"] == "warning"
    assert entry["repository"] == "acme/api"
    assert entry["api_token"] == "***"
    assert "ghp_secret" not in stream.getvalue()
