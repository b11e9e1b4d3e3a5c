"""Pure pieces of the API: keys and tokens, cursors, windows and buckets, rate-limit verdicts,
field errors, and the degradable cache's circuit breaker."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from doraflow.api.auth import KeyHasher, Role, generate_key, service_token_matches
from doraflow.api.cache import DegradableCache
from doraflow.api.instrumentation import UNMATCHED, RouteTable
from doraflow.api.pagination import decode_cursor, encode_cursor, parse_sort
from doraflow.api.problems import Problem, _field_errors
from doraflow.api.ratelimit import Verdict, _tighter
from doraflow.api.services.analytics import buckets, resolve_window
from doraflow.core.cache import Cache, CacheUnavailableError
from doraflow.core.models import Team
from doraflow.core.security import derive_service_token
from doraflow.core.settings import Settings
from doraflow.metrics import Window


def test_generated_keys_have_a_visible_prefix_and_enough_entropy() -> None:
    keys = {generate_key().secret for _ in range(200)}
    assert len(keys) == 200
    key = generate_key()
    assert key.secret.startswith(key.prefix + "_")
    assert key.prefix.startswith("dfk_")
    assert len(key.prefix) == 12
    assert len(key.secret) - len(key.prefix) - 1 >= 43  # 32 random bytes, base64url


def test_hashes_are_hmac_sha256_with_the_secret_as_pepper() -> None:
    hasher = KeyHasher.from_settings(Settings(api_secret_key="pepper"))
    assert hasher.hash("dfk_x") == hmac.new(b"pepper", b"dfk_x", hashlib.sha256).hexdigest()
    unpeppered = KeyHasher.from_settings(Settings(api_secret_key=None))
    assert unpeppered.hash("dfk_x") != hasher.hash("dfk_x")


def test_service_token_is_derived_and_checked_in_constant_time() -> None:
    settings = Settings(api_secret_key="s3cret")
    token = derive_service_token("s3cret")
    assert token.startswith("dfs_")
    assert len(token) == 4 + 64
    assert service_token_matches(settings, token)
    assert not service_token_matches(settings, token[:-1] + "0")
    assert not service_token_matches(Settings(api_secret_key=None), token)
    assert not service_token_matches(settings, "\ud800")


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.includes(Role.MEMBER)
    assert Role.MEMBER.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.MEMBER)


def test_cursors_round_trip_and_refuse_tampering() -> None:
    sort = parse_sort("-created_at", {"name": Team.name, "created_at": Team.created_at}, Team.id)
    at, row_id = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    cursor = encode_cursor(sort, [at, row_id])
    assert decode_cursor(cursor, sort) == [at, row_id]
    other = parse_sort("name", {"name": Team.name}, Team.id)
    for bad, against in [
        (cursor, other),
        ("!!", sort),
        ("WyJ4Il0", sort),
        (encode_cursor(sort, [1, 2]), sort),
    ]:
        with pytest.raises(Problem) as caught:
            decode_cursor(bad, against)
        assert caught.value.status == 422
        assert caught.value.errors
        assert caught.value.errors[0].field == "cursor"
    with pytest.raises(Problem):
        parse_sort("colour", {"name": Team.name}, Team.id)


def test_named_windows_end_at_the_next_utc_midnight() -> None:
    now = datetime(2025, 6, 15, 13, 30, tzinfo=UTC)
    window = resolve_window("7d", None, None, now=now)
    assert window == Window(datetime(2025, 6, 9, tzinfo=UTC), datetime(2025, 6, 16, tzinfo=UTC))
    assert resolve_window(None, None, None, now=now).duration == timedelta(days=30)
    explicit = resolve_window(None, datetime(2025, 1, 1, tzinfo=UTC), None, now=now)
    assert explicit.end == now
    for args, field in [
        (("7d", datetime(2025, 1, 1, tzinfo=UTC), None), "window"),
        ((None, None, datetime(2025, 1, 1, tzinfo=UTC)), "from"),
        ((None, datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)), "to"),
        ((None, datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)), "from"),
    ]:
        with pytest.raises(Problem) as caught:
            resolve_window(*args, now=now)
        assert caught.value.errors
        assert caught.value.errors[0].field == field


@pytest.mark.parametrize(
    ("start", "end", "granularity", "expected"),
    [
        (
            "2025-06-04",
            "2025-06-20",
            "week",
            [
                ("2025-06-04", "2025-06-09", True),
                ("2025-06-09", "2025-06-16", False),
                ("2025-06-16", "2025-06-20", True),
            ],
        ),
        (
            "2025-06-01",
            "2025-06-04",
            "day",
            [
                ("2025-06-01", "2025-06-02", False),
                ("2025-06-02", "2025-06-03", False),
                ("2025-06-03", "2025-06-04", False),
            ],
        ),
        (
            "2024-12-15",
            "2025-03-01",
            "month",
            [
                ("2024-12-15", "2025-01-01", True),
                ("2025-01-01", "2025-02-01", False),
                ("2025-02-01", "2025-03-01", False),
            ],
        ),
    ],
)
def test_buckets(start: str, end: str, granularity: str, expected: list[tuple[str, str, bool]]) -> None:
    window = Window(
        datetime.fromisoformat(start).replace(tzinfo=UTC), datetime.fromisoformat(end).replace(tzinfo=UTC)
    )
    got = [
        (w.start.date().isoformat(), w.end.date().isoformat(), partial)
        for w, partial in buckets(window, granularity)
    ]
    assert got == expected


def test_the_tighter_rate_limit_verdict_wins() -> None:
    roomy, tight = Verdict(True, 100, 90, 30), Verdict(True, 10, 2, 30)
    refused = Verdict(False, 10, 0, 12)
    assert _tighter(roomy, tight) is tight
    assert _tighter(tight, roomy) is tight
    assert _tighter(roomy, refused) is refused
    assert _tighter(refused, Verdict(False, 5, 0, 40)).reset_seconds == 40


def test_route_table_prefers_literal_segments() -> None:
    table = RouteTable(
        [
            "/api/v1/teams",
            "/api/v1/teams/{team_id}",
            "/api/v1/analytics/dora/trend",
            "/api/v1/teams/{team_id}/members/{developer_id}",
            "/static/{path}",
        ]
    )
    assert table.lookup("/api/v1/teams") == "/api/v1/teams"
    assert table.lookup("/api/v1/teams/abc") == "/api/v1/teams/{team_id}"
    assert table.lookup("/api/v1/teams/a/members/b") == "/api/v1/teams/{team_id}/members/{developer_id}"
    assert table.lookup("/static/vendor/chart.umd.min.js") == "/static/{path}"
    assert table.lookup("/nope") == UNMATCHED


def test_field_errors_use_the_names_clients_sent() -> None:
    exc = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "repository", "id"), "msg": "Field required"},
            {
                "type": "value_error",
                "loc": ("body", "name", "function-after[_storable(), str]"),
                "msg": "bad",
            },
            {"type": "json_invalid", "loc": ("body", 7), "msg": "x", "ctx": {"error": "EOF"}},
            {"type": "missing", "loc": ("body",), "msg": "Field required"},
            {"type": "enum", "loc": ("query", "window"), "msg": "Input should be '7d'"},
        ]
    )
    assert [(e.field, e.location) for e in _field_errors(exc)] == [
        ("repository.id", "body"),
        ("name", "body"),
        ("body", "body"),
        ("body", "body"),
        ("window", "query"),
    ]


class FlakyCache(Cache):
    """Fails while `down`; counts the calls that reached it."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def _maybe_fail(self) -> None:
        self.calls += 1
        if self.down:
            raise CacheUnavailableError("connection refused")

    async def get(self, key: str) -> bytes | None:
        await self._maybe_fail()
        return b"v"

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        await self._maybe_fail()

    async def delete(self, *keys: str) -> int:
        await self._maybe_fail()
        return len(keys)

    async def delete_pattern(self, pattern: str) -> int:
        await self._maybe_fail()
        return 0

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        await self._maybe_fail()
        return 1, window_seconds

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        await self._maybe_fail()
        return [b"v" for _ in keys]

    async def ping(self) -> bool:
        return not self.down

    async def close(self) -> None:
        return None


def is_degraded(cache: DegradableCache) -> bool:
    """A function, not the property, so type checkers do not carry a narrowed value across awaits."""
    return cache.degraded


async def test_degradable_cache_breaks_the_circuit_and_recovers(monkeypatch: Any) -> None:
    primary = FlakyCache()
    cache = DegradableCache(primary, retry_seconds=30)
    assert await cache.get("k") == b"v"
    assert not is_degraded(cache)
    primary.down = True
    assert await cache.get("k") is None
    assert is_degraded(cache)
    calls = primary.calls
    # While the breaker is open, Redis is not asked at all; limits count in-process.
    assert await cache.get("k") is None
    await cache.set("k", b"v")
    assert [await cache.incr_window("r", 60) for _ in range(3)][-1][0] == 3
    assert await cache.get_many(["a", "b"]) == [None, None]
    assert primary.calls == calls
    assert await cache.ping() is False
    primary.down = False
    assert await cache.ping() is True
    assert not is_degraded(cache)
    assert await cache.get("k") == b"v"
