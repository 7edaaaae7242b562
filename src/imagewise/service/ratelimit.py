"""Rate limits per registry shared by every worker of a fleet: a token bucket in Redis.

The config's ``rate_limits`` maps a registry host to requests per second (the burst is the same
number). Every request any worker process sends to that registry takes a token first; the
bucket lives in Redis (the broker), updated by one atomic script on Redis' own clock, so a
fleet of workers on many machines together stays within the limit. A token taken ahead of time
makes its taker wait its turn, so requests queue fairly instead of retrying.
"""

from __future__ import annotations

import time
from typing import Any

from imagewise.errors import ConfigError

# tokens may go below zero: each taker reserves its slot and is told how long to wait for it
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or t)
tokens = math.min(burst, tokens + (t - last) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('EXPIRE', KEYS[1], 3600)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


def parse_limits(doc: Any) -> dict[str, float]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("config rate_limits: expected a mapping of registry host: requests/s")
    out = {}
    for host, rate in doc.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
            raise ConfigError(f"config rate_limits.{host}: a positive number of requests/s")
        out[str(host)] = float(rate)
    return out


class RedisTokenBucket:
    def __init__(self, redis_url: str, limits: dict[str, float]) -> None:
        import redis

        self.limits = limits
        self.redis = redis.Redis.from_url(redis_url)
        self.take = self.redis.register_script(_TAKE)

    def __call__(self, host: str) -> None:
        rate = self.limits.get(host)
        if rate is None:
            return
        wait = float(self.take(keys=[f"imagewise:rate:{host}"], args=[rate, rate]))
        if wait > 0:
            time.sleep(wait)


def install(config: dict[str, Any] | None) -> None:
    """Pace this process's registry requests by the config's ``rate_limits`` (needs its
    ``broker``: the buckets live there)."""
    limits = parse_limits((config or {}).get("rate_limits"))
    if not limits:
        return
    broker = (config or {}).get("broker")
    if not broker:
        raise ConfigError("config rate_limits needs broker: the shared buckets live in Redis")
    from imagewise.registry.session import set_pacer

    set_pacer(RedisTokenBucket(str(broker), limits))
