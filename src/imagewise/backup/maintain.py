"""Keeping a backup store in shape: ``backup forget`` (grandfather-father-son snapshot
retention), ``backup prune`` (mark and sweep of blobs no snapshot needs) and ``backup du``.

Forget rules, as restic's: ``keep_last`` N most recent snapshots; ``keep_daily`` N: for each of
the N most recent days that have snapshots, its newest; ``keep_weekly`` (ISO weeks) and
``keep_monthly`` likewise. A snapshot any rule keeps stays. Every snapshot is self-contained
(its record lists every manifest and blob it needs), so forgetting an incremental snapshot's
parent loses nothing of the child.

Prune marks every blob a remaining snapshot needs (manifests, their configs and layers, the
platforms of indexes, config files) and removes the others; a blob written less than ``grace``
seconds ago is kept (a backup may be about to record it). Both hold the store's writer lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from imagewise.backup.store import open_store
from imagewise.errors import UsageError


def _when(record: dict[str, Any]) -> datetime:
    text = str(record.get("time", ""))
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def keep_set(
    snaps: list[dict[str, Any]],
    *,
    last: int = 0,
    daily: int = 0,
    weekly: int = 0,
    monthly: int = 0,
) -> dict[str, str]:
    """snapshot id -> why it is kept (the first rule that keeps it)."""
    newest_first = sorted(snaps, key=lambda s: s["time"], reverse=True)
    kept: dict[str, str] = {}
    for s in newest_first[:last]:
        kept.setdefault(s["id"], f"keep-last {last}")
    for n, name, bucket in (
        (daily, "keep-daily", lambda t: t.strftime("%Y-%m-%d")),
        (weekly, "keep-weekly", lambda t: "%d-W%02d" % t.isocalendar()[:2]),
        (monthly, "keep-monthly", lambda t: t.strftime("%Y-%m")),
    ):
        seen: list[str] = []
        for s in newest_first:
            b = bucket(_when(s))
            if b in seen:
                continue
            if len(seen) >= n:
                break
            seen.append(b)
            kept.setdefault(s["id"], f"{name} {n} ({b})")
    return kept


class ForgetResult:
    def __init__(self) -> None:
        self.kept: list[dict[str, str]] = []
        self.forgotten: list[str] = []
        self.dry_run = False

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "forgotten": self.forgotten, "dry_run": self.dry_run}


def forget(
    store_path: str,
    *,
    last: int = 0,
    daily: int = 0,
    weekly: int = 0,
    monthly: int = 0,
    dry_run: bool = False,
    key: bytes | None = None,
) -> ForgetResult:
    if not any((last, daily, weekly, monthly)):
        raise UsageError(
            "forget needs a rule: --keep-last, --keep-daily, --keep-weekly or --keep-monthly"
        )
    store = open_store(store_path, key=key)
    result = ForgetResult()
    result.dry_run = dry_run
    with store.locked():
        snaps = store.snapshots()
        kept = keep_set(snaps, last=last, daily=daily, weekly=weekly, monthly=monthly)
        for s in snaps:
            if s["id"] in kept:
                result.kept.append({"id": s["id"], "why": kept[s["id"]]})
            else:
                result.forgotten.append(s["id"])
                if not dry_run:
                    store.remove_snapshot(s["id"])
    return result


def live_blobs(snaps: list[dict[str, Any]]) -> set[str]:
    live: set[str] = set()
    for s in snaps:
        for digest, info in s.get("manifests", {}).items():
            live.add(digest)
            live.update(info.get("blobs", []))
        for f in s.get("config_files", {}).values():
            live.add(f["digest"])
        for tree in s.get("data", []):
            for f in tree["files"].values():
                live.update(f.get("chunks", []))
    return live


class PruneResult:
    def __init__(self) -> None:
        self.removed = 0
        self.freed_bytes = 0
        self.kept_recent = 0
        self.dry_run = False

    def to_json(self) -> dict[str, Any]:
        return {
            "removed_blobs": self.removed,
            "freed_bytes": self.freed_bytes,
            "kept_recent": self.kept_recent,
            "dry_run": self.dry_run,
        }


def prune(
    store_path: str, *, grace: float = 3600, dry_run: bool = False, key: bytes | None = None
) -> PruneResult:
    store = open_store(store_path, key=key)
    result = PruneResult()
    result.dry_run = dry_run
    with store.locked():
        live = live_blobs(store.snapshots())
        for digest, size in list(store.blobs()):
            if digest in live:
                continue
            if store.blob_age(digest) < grace:
                result.kept_recent += 1
                continue
            result.removed += 1
            result.freed_bytes += size
            if not dry_run:
                store.remove_blob(digest)
    return result


class StoreUsage:
    def __init__(self) -> None:
        self.snapshots: list[dict[str, Any]] = []
        self.stored_bytes = 0
        self.logical_bytes = 0

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots": self.snapshots,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "dedup_ratio": round(self.dedup_ratio, 4),
        }


def usage(store_path: str, key: bytes | None = None) -> StoreUsage:
    store = open_store(store_path, key=key)
    sizes = dict(store.blobs())
    out = StoreUsage()
    out.stored_bytes = sum(sizes.values())
    for s in store.snapshots():
        blobs = live_blobs([s])
        logical = sum(sizes.get(b, 0) for b in blobs)
        out.logical_bytes += logical
        out.snapshots.append(
            {"id": s["id"], "kind": s["kind"], "logical_bytes": logical, "blobs": len(blobs)}
        )
    return out


def forget_table(result: ForgetResult) -> str:
    lines = [f"keep    {k['id']}  {k['why']}" for k in result.kept]
    lines += [f"forget  {i}" for i in result.forgotten]
    lines.append(
        f"{len(result.kept)} kept, {len(result.forgotten)} forgotten"
        + (" (dry run)" if result.dry_run else "; run `backup prune` to free their blobs")
    )
    return "\n".join(lines) + "\n"


def prune_table(result: PruneResult) -> str:
    from imagewise.units import format_size

    return (
        f"{'would remove' if result.dry_run else 'removed'} {result.removed} blob(s), "
        f"{format_size(result.freed_bytes)}; {result.kept_recent} unreferenced recent blob(s) kept "
        "(grace period)\n"
    )


def usage_table(result: StoreUsage) -> str:
    from imagewise.units import format_size

    lines = [
        f"{s['id']}  {s['kind']:<12}  {format_size(s['logical_bytes']):>10}  {s['blobs']} blobs"
        for s in result.snapshots
    ]
    lines.append(
        f"logical {format_size(result.logical_bytes)} over {len(result.snapshots)} snapshot(s), "
        f"stored {format_size(result.stored_bytes)}, dedup ratio {result.dedup_ratio:.2f}x"
    )
    return "\n".join(lines) + "\n"
