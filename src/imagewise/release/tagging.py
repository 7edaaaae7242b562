"""Conventional tag sets and the forward-only rule for moving tags (pure; no registry)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from imagewise.errors import UsageError

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


class TagError(UsageError):
    """A bad tagging input (bad semver, bad tag, no git repository...): exit 2."""


def parse_semver(text: str) -> tuple[int, int, int, str]:
    """(major, minor, patch, prerelease) of a semantic version; TagError when not one."""
    m = _SEMVER.match(text)
    if not m:
        raise TagError(f"not a semantic version: {text!r} (expected MAJOR.MINOR.PATCH)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or ""


def release_tags(version: str) -> list[str]:
    """``1.4.2`` -> ``[1.4.2, 1.4, 1]``; a pre-release names only itself."""
    major, minor, patch, pre = parse_semver(version)
    full = f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
    if pre:
        return [full]
    return [full, f"{major}.{minor}", f"{major}"]


def moving_tags_allowed(version: str, existing: list[str]) -> list[str]:
    """The moving tags (``1.4``, ``1``) that ``version`` may take: forward only.

    A moving tag is held back when an existing full release tag with the same prefix is newer
    than ``version`` (so ``1.4`` never points at an older patch than the one it has now).
    """
    major, minor, patch, pre = parse_semver(version)
    if pre:
        return []
    mine = (major, minor, patch)
    newest_minor = newest_major = mine
    for tag in existing:
        try:
            ma, mi, pa, tpre = parse_semver(tag)
        except TagError:
            continue
        if tpre or ma != major:
            continue
        newest_major = max(newest_major, (ma, mi, pa))
        if mi == minor:
            newest_minor = max(newest_minor, (ma, mi, pa))
    allowed = []
    if newest_minor == mine:
        allowed.append(f"{major}.{minor}")
    if newest_major == mine:
        allowed.append(f"{major}")
    return allowed


def timestamp_tag(now: datetime | None = None, fmt: str = "%Y%m%d-%H%M%S") -> str:
    """``YYYYMMDD-HHMMSS`` in UTC (or ``fmt``, the policy's ``timestamp_format``)."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime(fmt)


def git_head_sha(git_dir: Path) -> str:
    """The commit HEAD names, read from ``git_dir`` (HEAD -> loose ref -> packed-refs)."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError as exc:
        raise TagError(f"no git repository at {git_dir}: {exc.strerror}") from exc
    if not head.startswith("ref: "):
        sha = head
    else:
        ref = head[5:].strip()
        loose = git_dir / ref
        if loose.is_file():
            sha = loose.read_text().strip()
        else:
            sha = _packed_ref(git_dir / "packed-refs", ref)
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        raise TagError(f"git HEAD in {git_dir} is not a commit id: {sha!r}")
    return sha


def _packed_ref(path: Path, ref: str) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and not line.startswith(("#", "^")):
            return parts[0]
    raise TagError(f"git ref {ref} not found (HEAD points at a branch with no commits?)")


def find_git_dir(start: Path) -> Path:
    """The ``.git`` directory of the repository containing ``start``."""
    for d in [start, *start.parents]:
        if (d / ".git").is_dir():
            return d / ".git"
    raise TagError(f"no git repository in {start} or its parents")


def sha_tag(sha: str) -> str:
    return f"sha-{sha[:7]}"


_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_tag(tag: str) -> str:
    """``tag`` when it is a valid tag (OCI distribution grammar), else TagError."""
    if not _TAG.match(tag):
        raise TagError(
            f"not a valid tag: {tag!r} (letters, digits, '_', '.', '-'; at most 128; "
            "not starting with '.' or '-')"
        )
    return tag


def plan_tags(
    existing: list[str],
    semver: str | None = None,
    env: str | None = None,
    timestamp: datetime | None = None,
    git_sha: str | None = None,
    extra: tuple[str, ...] = (),
    timestamp_format: str = "%Y%m%d-%H%M%S",
) -> list[str]:
    """The tags to apply, in order, without duplicates; moving tags only go forward."""
    tags: list[str] = []
    if semver:
        full = release_tags(semver)[0]
        tags.append(full)
        tags.extend(moving_tags_allowed(semver, existing))
    if env:
        tags.append(env)
    if timestamp is not None:
        tags.append(timestamp_tag(timestamp, timestamp_format))
    if git_sha:
        tags.append(sha_tag(git_sha))
    tags.extend(extra)
    return [check_tag(t) for t in dict.fromkeys(tags)]
