"""Apply a tag set by manifest PUT only: the source manifest's exact bytes under each tag."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from imagewise.errors import ImagewiseError, NotFound, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing what it guards at start-up
if TYPE_CHECKING:
    from imagewise.policy.model import Policy
    from imagewise.registry.client import FetchedManifest, RegistryClient

T = TypeVar("T")
R = TypeVar("R")


class TagChange:
    """One tag's move: its digest before (None: new tag) and after."""

    __slots__ = ("tag", "old", "new")  # noqa: RUF023

    def __init__(self, tag: str, old: str | None, new: str) -> None:
        self.tag, self.old, self.new = tag, old, new

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def to_json(self) -> dict[str, object]:
        return {"tag": self.tag, "old": self.old, "new": self.new, "changed": self.changed}


class ImmutableTag(ImagewiseError):
    """A tag the policy declares immutable would move: nothing is written (exit 1, a gate)."""

    exit_code = 1


def apply_tags(
    client: RegistryClient,
    repo: str,
    source: str,
    tags: list[str],
    *,
    dry_run: bool = False,
    immutable: tuple[str, ...] = (),
    fetched: FetchedManifest | None = None,
) -> list[TagChange]:
    """Point each of ``tags`` at the manifest ``source`` names (tag or digest).

    The manifest (image or index) is fetched once (``fetched``: it was already); its bytes are
    PUT as is under each tag, so no blob is uploaded again. Tags already at that digest are left
    alone. When a tag matching one of the ``immutable`` patterns already names another digest,
    nothing at all is written.
    """
    if fetched is None:
        fetched = client.get_manifest(repo, source)
    new = str(fetched.digest)

    def current(tag: str) -> str | None:
        try:
            return str(client.head_manifest(repo, tag).digest)
        except NotFound:
            return None

    changes = [
        TagChange(tag, old, new) for tag, old in zip(tags, _each(current, tags), strict=True)
    ]
    frozen = [
        c
        for c in changes
        if c.old is not None and c.changed and any(re.search(p, c.tag) for p in immutable)
    ]
    if frozen:
        c = frozen[0]
        raise ImmutableTag(
            f"refused: {c.tag} is immutable (version_management.tagging.immutable) and names "
            f"{c.old[:19]}, not {new[:19]}; nothing was tagged"  # type: ignore[index]
        )
    if not dry_run:
        _each(
            lambda c: client.put_manifest(repo, c.tag, fetched.raw, fetched.media_type),
            [c for c in changes if c.changed],
        )
    return changes


def _each(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """``fn`` over ``items`` concurrently (one thread each past the first: a handful of
    requests on the client's pooled connections), results in order; the first error raised."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    import threading

    results: list[R | None] = [None] * len(items)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = fn(items[i])
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, len(items))]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


class TagRun:
    """What ``imagewise tag`` did (or, with ``dry_run``, would do) to one repository."""

    __slots__ = ("repository", "source", "digest", "changes", "dry_run")  # noqa: RUF023

    def __init__(
        self, repository: str, source: str, digest: str, changes: list[TagChange], dry_run: bool
    ) -> None:
        self.repository, self.source, self.digest = repository, source, digest
        self.changes, self.dry_run = changes, dry_run

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "source": self.source,
            "digest": self.digest,
            "dry_run": self.dry_run,
            "tags": [c.to_json() for c in self.changes],
        }


def tag_image(
    image: str,
    *,
    semver: str | None = None,
    env: str | None = None,
    timestamp: bool = False,
    git_sha: bool = False,
    git_dir: str | None = None,
    extra: tuple[str, ...] = (),
    dry_run: bool = False,
    insecure: bool = False,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> TagRun:
    """Give the registry image IMAGE (tag or digest) its conventional tags in its own
    repository: ``semver`` (``1.4.2`` plus the moving ``1.4`` and ``1``, forward only),
    ``env``, a UTC ``timestamp`` tag, ``sha-<7>`` of the git HEAD (``git_dir``, else found from
    the current directory up) and ``extra`` tags. Manifest PUTs only; an index is PUT as is."""
    from imagewise.policy.model import default_policy
    from imagewise.reference import parse_transport
    from imagewise.release.tagging import find_git_dir, git_head_sha, plan_tags
    from imagewise.sources.registry import client_for

    transport = parse_transport(image)
    if not transport.is_registry or transport.reference is None:
        raise UsageError(f"{image}: tag needs a registry image (docker://REGISTRY/REPO:TAG)")
    ref = transport.reference
    if not (semver or env or timestamp or git_sha or extra):
        raise UsageError("nothing to tag: give --semver, --env, --timestamp, --git-sha or --tag")
    sha = None
    if git_sha:
        sha = git_head_sha(Path(git_dir) if git_dir else find_git_dir(Path.cwd()))
    client = client_for(ref, insecure)
    source = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    # the source manifest and (for --semver) the repository's tags, side by side
    got: list[Any] = _each(
        lambda what: (
            client.get_manifest(ref.repository, source)
            if what == "manifest"
            else (client.list_tags(ref.repository) if semver else [])
        ),
        ["manifest", "tags"],
    )
    fetched: FetchedManifest = got[0]
    existing: list[str] = got[1]
    when = (now or datetime.now(timezone.utc)) if timestamp else None
    tagging = (policy or default_policy()).version_management.tagging
    tags = plan_tags(
        existing,
        semver=semver,
        env=env,
        timestamp=when,
        git_sha=sha,
        extra=extra,
        timestamp_format=tagging.timestamp_format,
    )
    changes = apply_tags(
        client,
        ref.repository,
        source,
        tags,
        dry_run=dry_run,
        immutable=tagging.immutable,
        fetched=fetched,
    )
    digest = changes[0].new if changes else source
    return TagRun(ref.name, source, digest, changes, dry_run)


def tag_table(run: TagRun) -> str:
    """One line a tag: ``TAG  OLD -> NEW`` (``new`` for a new tag, ``unchanged``)."""
    width = max((len(c.tag) for c in run.changes), default=3)
    head = f"{run.repository} {run.digest}" + (" (dry run: nothing written)" if run.dry_run else "")
    lines = [head]
    for c in run.changes:
        if not c.changed:
            what = "unchanged"
        elif c.old is None:
            what = f"new -> {c.new[:19]}"
        else:
            what = f"{c.old[:19]} -> {c.new[:19]}"
        lines.append(f"  {c.tag:<{width}}  {what}")
    return "\n".join(lines) + "\n"
