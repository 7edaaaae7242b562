"""Waiting on a running service in the service tests (processes, brokers, databases)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """``predicate()``'s first truthy value (an HTTP error counts as not yet), polled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = predicate()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(base_url: str) -> bool:
    """Whether the service at ``base_url`` answers /healthz."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def celery_workers_ready(queue: Any, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` Celery workers answer a ping through ``queue``'s broker (a worker
    process takes a few seconds to import and start its pool)."""
    wait_for(lambda: len(queue.app.control.ping(timeout=0.5)) >= count, timeout, "the workers")
