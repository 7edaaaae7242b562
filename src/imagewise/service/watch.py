"""Polling for registries that send no notifications: the service config's ``watch:`` list.

Every ``interval`` seconds each watched repository's tags are listed and HEADed; a tag whose
digest is new to the service (or changed) is queued for a check, as a push notification
would. Unchanged tags cost one HEAD each and queue nothing.

    watch:
      - {repository: registry.example/team/app, interval: 300}
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from imagewise.errors import ConfigError, ImagewiseError
from imagewise.service.db import image_refs


def parse_watch(doc: Any) -> list[tuple[str, str, float]]:
    """(registry host, repository, interval) of each watched repository."""
    out = []
    for i, item in enumerate(doc or []):
        if not isinstance(item, dict) or not isinstance(item.get("repository"), str):
            raise ConfigError(
                f"config watch[{i}]: expected {{repository: REGISTRY/REPO, interval: SECONDS}}"
            )
        host, _, repo = item["repository"].removeprefix("docker://").partition("/")
        if not repo:
            raise ConfigError(
                f"config watch[{i}]: {item['repository']}: expected REGISTRY/REPOSITORY"
            )
        interval = float(item.get("interval", 300))
        if interval < 1:
            raise ConfigError(f"config watch[{i}]: interval must be at least 1 second")
        out.append((host, repo, interval))
    return out


def poll_once(engine: Engine, queue: Any, host: str, repo: str, insecure: bool) -> int:
    """Queue checks for the tags of ``repo`` whose digest the service has not seen on them."""
    from imagewise.registry.client import RegistryClient
    from imagewise.tags import is_bookkeeping_tag

    client = RegistryClient.get(host, insecure=insecure)
    with engine.begin() as conn:
        known = {
            r.tag: r.digest
            for r in conn.execute(
                select(image_refs.c.tag, image_refs.c.digest).where(
                    (image_refs.c.registry == host) & (image_refs.c.repository == repo)
                )
            )
        }
    queued = 0
    for tag in client.list_tags(repo):
        if is_bookkeeping_tag(tag):
            continue
        digest = str(client.head_manifest(repo, tag).digest)
        if known.get(tag) == digest:
            continue
        payload = {
            "registry": host,
            "repository": repo,
            "tag": tag,
            "digest": digest,
            "insecure": insecure,
        }
        queue.submit("check", f"check:{digest}:{tag}", payload, priority=1)
        queued += 1
    return queued


class Watcher:
    def __init__(
        self, engine: Engine, queue: Any, watched: list[tuple[str, str, float]], insecure: bool
    ) -> None:
        self.engine, self.queue, self.watched, self.insecure = engine, queue, watched, insecure
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for host, repo, interval in self.watched:
            t = threading.Thread(target=self._loop, args=(host, repo, interval), daemon=True)
            t.start()
            self.threads.append(t)

    def _loop(self, host: str, repo: str, interval: float) -> None:
        while not self.stop.is_set():
            try:
                poll_once(self.engine, self.queue, host, repo, self.insecure)
            except (ImagewiseError, DBAPIError):
                pass  # the registry or the database unreachable for now: the next round retries
            self.stop.wait(interval)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
