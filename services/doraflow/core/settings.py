"""The one settings class (DESIGN.md §3): every process reads its configuration here, from
`DORAFLOW_*` environment variables. An unset URL selects the embedded implementation
(embedded PostgreSQL, in-process bus, in-process cache), so `doraflow up` needs no configuration.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("doraflow", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DORAFLOW_", extra="ignore", frozen=True)

    # SecretStr: URLs carry passwords, and settings get logged at start-up.
    database_url: SecretStr | None = Field(
        default=None, description="postgresql+asyncpg://… ; unset → embedded PostgreSQL under `home`"
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    redis_url: SecretStr | None = Field(default=None, description="redis://… ; unset → in-process cache")
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port] ; unset → in-process bus"
    )
    kafka_topic_prefix: str = Field(default="doraflow", pattern=r"^[a-zA-Z0-9_-]+$")
    api_secret_key: SecretStr | None = Field(default=None, description="HMAC pepper for API key hashes")
    home: Path = Field(default_factory=default_home, description="embedded mode data directory")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    cache_ttl_seconds: int = Field(default=300, ge=1)
    rate_limit_per_ip: int = Field(default=600, ge=1, description="requests per window per endpoint and IP")
    rate_limit_per_key: int = Field(default=600, ge=1, description="requests per window per endpoint and key")
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    # A backlog (first sync, catch-up after an outage) is stored ~20% faster in batches of 10k than
    # of 5k: each batch pays ~25 statements' planning and round trips (benchmarks/processor_ingest).
    processor_batch_size: int = Field(default=10_000, ge=1)
    processor_linger_ms: int = Field(default=200, ge=0)
    processor_retry_max_seconds: float = Field(default=30.0, gt=0, description="cap of the database back-off")
    processor_rollup_refresh_seconds: float = Field(default=60.0, gt=0, description="materialized views")
    processor_cache_invalidation_seconds: float = Field(default=1.0, ge=0, description="coalescing interval")
    processor_statistics_seconds: float = Field(default=5.0, gt=0, description="ANALYZE during bulk loads")

    # The operator: where the API is, and what it gives the collector Deployments it creates.
    api_url: str = Field(default="http://doraflow-api:8080", description="API service, for the operator")
    collector_image: str = Field(default="ghcr.io/doraflow/doraflow:0.1.0")
    collector_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    collector_env_secret: str | None = Field(
        default=None, description="Secret whose keys become the collectors' environment (URLs, tokens)"
    )
    collector_resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    )
    watch_namespaces: list[str] = Field(default_factory=list, description="empty: every namespace")
    operator_resync_seconds: float = Field(default=60.0, gt=0, description="drift-correction interval")

    @field_validator("kafka_bootstrap_servers", "database_url", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests build `Settings(...)` directly instead."""
    return Settings()
