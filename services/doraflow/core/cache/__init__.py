"""Cache: Redis in a cluster, in-process in the embedded mode (same interface)."""

from doraflow.core.cache.base import Cache, CacheUnavailableError
from doraflow.core.cache.memory import MemoryCache
from doraflow.core.cache.redis import RedisCache


def create_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


__all__ = ["Cache", "CacheUnavailableError", "MemoryCache", "RedisCache", "create_cache"]
