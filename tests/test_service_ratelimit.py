"""Rate limits per registry shared through Redis (redis-server started here): two worker
processes sending requests to one registry together stay within its limit; a registry without
a limit is not slowed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from fixtures_redis import RedisServer
from fixtures_registry import RegistryServer, push_image, unique_repo

from imagewise.errors import ConfigError
from imagewise.service.ratelimit import install, parse_limits

REQUESTS = """
import sys, time
from imagewise.registry.client import RegistryClient
from imagewise.service.ratelimit import install
host, url, repo, limit, n = sys.argv[1:6]
install({"broker": url, "rate_limits": {host: float(limit)} if float(limit) else {}})
client = RegistryClient(host, "http://" + host, insecure=True)
for _ in range(int(n)):
    client.list_tags(repo)
"""


def _burst(registry: RegistryServer, redis: RedisServer, repo: str, limit: float) -> float:
    """Two processes, 20 tag listings each; the wall time of both."""
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REQUESTS, registry.host, redis.url, repo, str(limit), "20"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-2000:]
    return time.monotonic() - started


def test_two_workers_share_one_registry_limit(
    registry: RegistryServer, redis_server: RedisServer
) -> None:
    repo = unique_repo("paced")
    push_image(registry, repo, "1.0")
    free = _burst(registry, redis_server, repo, 0)
    paced = _burst(registry, redis_server, repo, 10)
    # 40 requests at 10/s with a burst of 10: the last waits (40 - 10) / 10 = 3 s
    assert 2.8 <= paced < 15, (free, paced)
    assert free < paced - 1.5, (free, paced)


def test_bad_limits_are_named() -> None:
    with pytest.raises(ConfigError, match="a positive number"):
        parse_limits({"r.example": 0})
    with pytest.raises(ConfigError, match="needs broker"):
        install({"rate_limits": {"r.example": 5}})
