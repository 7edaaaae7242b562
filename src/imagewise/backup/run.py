"""``imagewise backup run``: snapshots of images (and config files) into a backup store.

A snapshot record lists, per source repository, its tags and their digests, and for every
manifest digest it reached the manifest's media type, its platforms and the blobs it names, so a
restore or a verify needs nothing but the store. Blobs are stored once across every snapshot.

Kinds (the parent is recorded and shown by ``backup list``):

* ``full``: every tag's manifest is read again and every blob checked against the store;
* ``incremental``: against the previous snapshot: a tag whose digest (one manifest HEAD) is
  the one the previous snapshot recorded, with every blob still in the store, is taken over
  without reading anything more;
* ``differential``: the same against the last full snapshot.

Without a parent of the asked kind, the snapshot is a full one (and says so).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imagewise.backup.store import Store, open_store
from imagewise.errors import NotFound, UsageError
from imagewise.oci import media
from imagewise.oci.model import Index, parse_manifest

KINDS = ("full", "incremental", "differential")
JOBS = 8


class BackupResult:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "snapshot": r["id"],
            "kind": r["kind"],
            "parent": r.get("parent"),
            "time": r["time"],
            "store": r.get("store"),
            "totals": r["totals"],
            "repositories": {k: len(v) for k, v in r["repositories"].items()},
        }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("imagewise")
    except Exception:  # noqa: BLE001 - a source checkout without metadata
        return "unknown"


class _Reader:
    """Reads manifests and blobs of one source: a registry or an OCI layout."""

    def __init__(self, name: str, client: Any = None, layout: Path | None = None) -> None:
        self.name, self.client, self.layout = name, client, layout

    def repositories_and_tags(self, repos: list[str] | None) -> dict[str, dict[str, str | None]]:
        """repository -> tag -> digest (None: to be read) for what this source names."""
        if self.layout is not None:
            index = json.loads((self.layout / "index.json").read_text("utf-8"))
            tags: dict[str, str | None] = {}
            for m in index.get("manifests", []):
                tag = (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                if tag:
                    tags[tag] = str(m["digest"])
            return {self.layout.name: tags}
        from imagewise.tags import is_bookkeeping_tag

        names = repos if repos is not None else self.client.catalog()

        def tags_of(repo: str) -> dict[str, str | None]:
            try:
                return {t: None for t in self.client.list_tags(repo) if not is_bookkeeping_tag(t)}
            except NotFound:
                return {}

        # one request per repository, side by side (a no-change incremental is mostly these)
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
            return dict(zip(names, pool.map(tags_of, names), strict=True))

    def head(self, repo: str, tag: str) -> str | None:
        try:
            return str(self.client.head_manifest(repo, tag).digest)
        except NotFound:
            return None

    def manifest(self, repo: str, ref: str) -> tuple[str, bytes, str]:
        """(digest, raw bytes, media type) of a manifest by tag or digest."""
        if self.layout is not None:
            raw = self._layout_blob(ref)
            doc = json.loads(raw)
            mt = doc.get("mediaType") or (
                media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST
            )
            import hashlib

            return "sha256:" + hashlib.sha256(raw).hexdigest(), raw, str(mt)
        fetched = self.client.get_manifest(repo, ref)
        return str(fetched.digest), fetched.raw, fetched.media_type

    def open_blob(self, repo: str, desc: Any) -> Any:
        if self.layout is not None:
            algo, _, hexpart = str(desc.digest).partition(":")
            return open(self.layout / "blobs" / algo / hexpart, "rb")
        return self.client.open_blob(repo, desc)

    def _layout_blob(self, digest: str) -> bytes:
        assert self.layout is not None
        algo, _, hexpart = digest.partition(":")
        return (self.layout / "blobs" / algo / hexpart).read_bytes()


def _readers(refs: list[str], insecure: bool) -> list[tuple[_Reader, list[str] | None]]:
    from imagewise.registry.client import RegistryClient
    from imagewise.storage.inventory import split_targets

    layouts, hosts = split_targets(refs)
    out: list[tuple[_Reader, list[str] | None]] = []
    for path in layouts:
        if not (path / "index.json").is_file():
            raise UsageError(f"oci:{path}: not an OCI layout (no index.json)")
        out.append((_Reader(f"oci:{path.resolve()}", layout=path), None))
    for host, repos in hosts.items():
        out.append((_Reader(host, client=RegistryClient.get(host, insecure=insecure)), repos))
    return out


def backup_run(
    refs: list[str],
    store_path: str | Path,
    *,
    kind: str = "incremental",
    config_paths: tuple[str, ...] = (),
    data_paths: tuple[str, ...] = (),
    insecure: bool = False,
    jobs: int = JOBS,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    key: bytes | None = None,
    compress: bool = False,
) -> BackupResult:
    if kind not in KINDS:
        raise UsageError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    if not refs and not config_paths and not data_paths:
        raise UsageError("nothing to back up: give images (REF...), --config PATH or --data PATH")
    store = open_store(store_path, create=True, key=key, compress=compress)
    readers = _readers(refs, insecure)
    with store.locked():
        snaps = store.snapshots()
        parent: dict[str, Any] | None = None
        if kind == "incremental" and snaps:
            parent = snaps[-1]
        elif kind == "differential":
            fulls = [s for s in snaps if s.get("kind") == "full"]
            parent = fulls[-1] if fulls else None
        actual = kind if parent is not None else "full"
        moment = now or datetime.now(timezone.utc)
        when = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # microseconds: snapshots sort by it
        record: dict[str, Any] = {
            "id": moment.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3),
            "time": when,
            "kind": actual,
            "parent": parent["id"] if parent else None,
            "tool_version": _version(),
            "store": store.id,
            "sources": [r.name for r, _ in readers],
            "repositories": {},
            "manifests": {},
            "config_files": {},
        }
        stats = {"blobs": 0, "added_blobs": 0, "added_bytes": 0, "logical_bytes": 0, "reused": 0}
        lock = threading.Lock()
        manifests: dict[str, dict[str, Any]] = record["manifests"]
        base_manifests: dict[str, Any] = parent.get("manifests", {}) if parent else {}
        base_repos: dict[str, Any] = parent.get("repositories", {}) if parent else {}

        blob_locks: dict[str, threading.Lock] = {}

        def put(reader: _Reader, repo: str, desc: Any) -> None:
            d = str(desc.digest)
            with lock:
                stats["blobs"] += 1
                stats["logical_bytes"] += desc.size
            with lock:  # one reader per blob: images sharing a layer wait for the first
                blob_lock = blob_locks.setdefault(d, threading.Lock())
            with blob_lock:
                if store.has_blob(d, desc.size):
                    return
                with reader.open_blob(repo, desc) as stream:
                    n = store.put_blob(d, stream, desc.size)
            with lock:
                stats["added_blobs"] += 1 if n else 0
                stats["added_bytes"] += n

        def closure_present(digest: str) -> bool:
            info = base_manifests.get(digest)
            if info is None or not store.has_blob(digest):
                return False
            if not all(store.has_blob(b) for b in info.get("blobs", [])):
                return False
            return all(closure_present(c) for c in info.get("children", []))

        def reuse(digest: str) -> None:
            info = base_manifests[digest]
            with lock:
                if digest in manifests:
                    return
                manifests[digest] = info
                stats["reused"] += 1
            for c in info.get("children", []):
                reuse(c)

        def save_manifest(reader: _Reader, repo: str, ref: str) -> str:
            digest, raw, mt = reader.manifest(repo, ref)
            n = store.put_blob(digest, io.BytesIO(raw), len(raw))
            with lock:
                stats["added_blobs"] += 1 if n else 0
                stats["added_bytes"] += n
                stats["logical_bytes"] += len(raw)
            parsed = parse_manifest(raw, mt)
            entry: dict[str, Any] = {
                "media_type": parsed.media_type,
                "size": len(raw),
                "blobs": [],
                "children": [],
            }
            if isinstance(parsed, Index):
                for child in parsed.manifests:
                    entry["children"].append(save_manifest(reader, repo, str(child.digest)))
            else:
                descs = [parsed.config, *[d for d in parsed.layers if not d.urls]]
                entry["blobs"] = [str(d.digest) for d in descs]
                entry["blob_sizes"] = [d.size for d in descs]
                for d in descs:
                    put(reader, repo, d)
            with lock:
                manifests[digest] = entry
            return digest

        def one(job: tuple[_Reader, str, str, str | None]) -> tuple[str, str, str, str | None]:
            reader, repo, tag, known = job
            key = f"{reader.name}/{repo}"
            if reader.layout is None and known is None:
                known = reader.head(repo, tag)
                if known is None:
                    return key, repo, tag, None
            if known is not None and actual != "full":
                was = base_repos.get(key, {}).get(tag)
                if was == known and closure_present(known):
                    reuse(known)
                    return key, repo, tag, known
            digest = save_manifest(reader, repo, known or tag)
            if progress:
                progress(f"{key}:{tag} {digest[:19]}")
            return key, repo, tag, digest

        jobs_list: list[tuple[_Reader, str, str, str | None]] = []
        for reader, repos in readers:
            for repo, tags in reader.repositories_and_tags(repos).items():
                record["repositories"].setdefault(f"{reader.name}/{repo}", {})
                for tag, digest in sorted(tags.items()):
                    jobs_list.append((reader, repo, tag, digest))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for repo_key, _repo, tag, digest in pool.map(one, jobs_list):
                if digest is not None:
                    record["repositories"][repo_key][tag] = digest
        for path in config_paths:
            _backup_config(store, Path(path), record["config_files"])
        if data_paths:
            from imagewise.backup.data import backup_tree

            previous = {t["root"]: t for t in (parent or {}).get("data", [])}
            dstats = {
                "files_read": 0,
                "files_unchanged": 0,
                "data_added_bytes": 0,
                "data_chunks_added": 0,
            }
            record["data"] = [
                backup_tree(store, Path(p), previous.get(str(Path(p).resolve())), dstats)
                for p in data_paths
            ]
            stats["added_bytes"] += dstats["data_added_bytes"]
            stats["added_blobs"] += dstats["data_chunks_added"]
            stats.update(dstats)
        record["totals"] = {
            "repositories": len(record["repositories"]),
            "images": sum(len(v) for v in record["repositories"].values()),
            "manifests": len(manifests),
            "blobs": stats["blobs"],
            "logical_bytes": stats["logical_bytes"],
            "added_blobs": stats["added_blobs"],
            "added_bytes": stats["added_bytes"],
            "reused_manifests": stats["reused"],
            "config_files": len(record["config_files"]),
            "data_files_read": stats.get("files_read", 0),
            "data_files_unchanged": stats.get("files_unchanged", 0),
        }
        store.write_snapshot(record)
    return BackupResult(record)


def _backup_config(store: Store, path: Path, out: dict[str, Any]) -> None:
    if not path.exists():
        raise UsageError(f"--config {path}: no such file or directory")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        data = f.read_bytes()
        out[str(f.resolve())] = {
            "digest": store.put_bytes(data),
            "size": len(data),
            "mode": os.stat(f).st_mode & 0o7777,
        }


def backup_json(result: Any) -> dict[str, Any]:
    """A snapshot made by ``backup run``, or the jobs ``--schedule-due`` ran."""
    return result.to_json()  # type: ignore[no-any-return]


def backup_table(result: Any) -> str:
    from imagewise.units import format_size

    if not isinstance(result, BackupResult):  # --schedule-due: the jobs' outcomes
        return result.table()  # type: ignore[no-any-return]

    r = result.record
    t = r["totals"]
    parent = f" (parent {r['parent']})" if r.get("parent") else ""
    return (
        f"snapshot {r['id']}: {r['kind']}{parent}\n"
        f"  {t['images']} image tag(s) in {t['repositories']} repositories, {t['manifests']} manifests, "
        f"{t['config_files']} config file(s)\n"
        f"  {format_size(t['logical_bytes'])} logical; {t['added_blobs']} new blob(s), "
        f"{format_size(t['added_bytes'])} added to the store; {t['reused_manifests']} manifests "
        "taken over unchanged\n"
    )


def list_table(store: Store) -> str:
    from imagewise.units import format_size

    rows = [("ID", "TIME", "KIND", "PARENT", "IMAGES", "ADDED")]
    for s in store.snapshots():
        t = s.get("totals", {})
        rows.append(
            (
                s["id"],
                s["time"],
                s["kind"],
                s.get("parent") or "-",
                str(t.get("images", 0)),
                format_size(t.get("added_bytes", 0)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )


def snapshots_json(store: Store) -> dict[str, Any]:
    return {
        "store": store.name,
        "snapshots": [
            {k: s.get(k) for k in ("id", "time", "kind", "parent", "sources", "totals")}
            for s in store.snapshots()
        ],
    }
