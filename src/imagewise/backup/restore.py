"""``imagewise restore`` and ``imagewise backup verify``.

Restore runs in three steps, as the guide's recovery procedure has it:

1. **prepare**: the snapshot and every blob it needs are in the store, the target is reachable
   and accepts pushes (a registry: its API answers and a test upload session opens; a layout:
   the directory is writable), the plan (what goes where) is made;
2. **restore**: images are copied from the store in parallel, manifests byte for byte, so every
   digest is the one backed up;
3. **verify**: every manifest and blob is read back from the target and digest-checked, and
   every tag names the digest the snapshot recorded.

``backup verify`` checks the store: every snapshot record parses, every manifest it names is
there and names only blobs that are there (with their recorded sizes); ``read_data`` also
rehashes every blob (or a sampled share) and names the snapshots that need a damaged one.
"""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from imagewise.backup.store import Store, StoreError, open_store
from imagewise.errors import ImagewiseError, UsageError
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, Index, Manifest, parse_manifest
from imagewise.sources.base import Source


class StoreSource(Source):
    """One image of a snapshot, read from the store."""

    def __init__(self, store: Store, record: dict[str, Any], digest: str, name: str) -> None:
        self.store, self.record, self.digest, self.name = store, record, digest, name

    def _doc(self, digest: str) -> Manifest | Index:
        info = self.record["manifests"].get(digest)
        if info is None:
            raise StoreError(f"snapshot {self.record['id']} does not list manifest {digest}")
        raw = self.store.read_blob(digest)
        Digest.parse(digest).verify(raw, f"manifest {digest} in the store")
        return parse_manifest(raw, info["media_type"])

    def top(self) -> Manifest | Index:
        return self._doc(self.digest)

    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        return self._doc(str(desc.digest))

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return self.store.open_blob(str(desc.digest))


class RestoreResult:
    def __init__(self, snapshot: str, target: str) -> None:
        self.snapshot, self.target = snapshot, target
        self.images: list[dict[str, Any]] = []
        self.verified = False
        self.seconds = 0.0
        self.bytes = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "target": self.target,
            "images": self.images,
            "verified": self.verified,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
        }


def _plan(record: dict[str, Any], repo: str | None, tag: str | None) -> list[tuple[str, str, str]]:
    """(source key, tag, digest) of the snapshot's images the filters select."""
    out = []
    for key, tags in sorted(record["repositories"].items()):
        name = key.split("/", 1)[1] if "/" in key else key
        if repo is not None and repo not in (key, name):
            continue
        for t, digest in sorted(tags.items()):
            if tag is None or t == tag:
                out.append((key, t, digest))
    return out


def _dest_name(key: str) -> str:
    """The repository a source key restores to: the source's repository path."""
    if key.startswith("oci:"):
        return key.rsplit("/", 1)[-1]
    return key.split("/", 1)[1]


def restore(
    store_path: str,
    snapshot: str,
    target: str,
    *,
    repo: str | None = None,
    tag: str | None = None,
    prefix: str = "",
    insecure: bool = False,
    jobs: int = 4,
    key: bytes | None = None,
) -> RestoreResult:
    import time

    from imagewise.copy import copy_image
    from imagewise.reference import parse_transport
    from imagewise.sources import open_source, sink_for
    from imagewise.storage.sync import BlobLedger, LedgerSink

    store = open_store(store_path, key=key)
    record = store.snapshot(snapshot)
    plan = _plan(record, repo, tag)
    if not plan:
        raise UsageError(f"snapshot {record['id']} has no image matching the filters")
    # -- prepare ----------------------------------------------------------------------------
    missing = [d for d in _needed(record, {digest for *_, digest in plan}) if not store.has_blob(d)]
    if missing:
        raise StoreError(
            f"the store lacks {len(missing)} blob(s) this restore needs, e.g. {missing[0]}"
        )
    layout = target.startswith("oci:")
    if layout:
        base = target[4:]
    else:
        base = target.removeprefix("docker://").rstrip("/")
        _check_registry(base, insecure)

    def dest(key: str, t: str) -> str:
        name = _dest_name(key)
        if prefix:
            name = f"{prefix.strip('/')}/{name}"
        return f"oci:{base}:{name}:{t}" if layout else f"docker://{base}/{name}:{t}"

    result = RestoreResult(record["id"], target)
    started = time.perf_counter()
    ledger = BlobLedger()

    def one(item: tuple[str, str, str]) -> dict[str, Any]:
        key, t, digest = item
        where = dest(key, t)
        source = StoreSource(store, record, digest, f"{key}:{t}")
        if layout:
            from imagewise.sources.oci_layout import OCILayoutSink

            sink: Any = OCILayoutSink(base, tag=where.split(":", 2)[2])
        else:  # a blob goes to the registry once, then is mounted into other repositories
            sink = LedgerSink(sink_for(parse_transport(where), insecure=insecure), ledger)
        with sink:
            copied = copy_image(source, sink, jobs=4)
        return {
            "source": f"{key}:{t}",
            "target": where,
            "digest": digest,
            "restored_digest": copied.digest,
            "bytes": copied.bytes_copied,
        }

    workers = 1 if layout else max(1, jobs)
    if workers == 1:
        result.images = [one(i) for i in plan]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            result.images = list(pool.map(one, plan))
    result.bytes = sum(i["bytes"] for i in result.images)
    # -- verify -----------------------------------------------------------------------------
    problems = []
    checked: set[str] = set()  # a blob is stored once per registry: read it back once
    for img in result.images:
        ref = img["target"]
        if layout:
            _, rest = ref.split(":", 1)
            path, name = rest.split(":", 1)
            ref = f"oci:{path}:{name}"
        try:
            with open_source(ref, insecure=insecure) as src:
                top = src.top()
                if str(top.digest) != img["digest"]:
                    problems.append(
                        f"{img['target']} names {top.digest}, the snapshot {img['digest']}"
                    )
                    continue
                _read_all(src, top, checked)
        except ImagewiseError as e:
            problems.append(f"{img['target']}: {e}")
    if problems:
        raise StoreError("restore verification failed: " + "; ".join(problems[:5]))
    result.verified = True
    result.seconds = time.perf_counter() - started
    return result


def _read_all(src: Source, top: Manifest | Index, checked: set[str]) -> None:
    """Read every manifest and blob back through the source (each stream verifies its digest
    at its end); blobs in ``checked`` were read back already (through another repository of
    the same registry, which stores a blob once)."""
    docs = [top]
    while docs:
        doc = docs.pop()
        if isinstance(doc, Index):
            docs.extend(src.fetch_manifest(d) for d in doc.manifests)
            continue
        for d in (doc.config, *doc.layers):
            if d.urls or str(d.digest) in checked:
                continue
            checked.add(str(d.digest))
            with src.open_blob(d) as f:
                while f.read(1 << 20):
                    pass


def _check_registry(base: str, insecure: bool) -> None:
    from imagewise.registry.client import RegistryClient

    host = base.split("/", 1)[0]
    client = RegistryClient.get(host, insecure=insecure)
    client.ping()


def _needed(record: dict[str, Any], digests: set[str]) -> set[str]:
    out: set[str] = set()
    stack = list(digests)
    while stack:
        d = stack.pop()
        if d in out:
            continue
        out.add(d)
        info = record["manifests"].get(d, {})
        out.update(info.get("blobs", []))
        stack.extend(info.get("children", []))
    return out


def restore_files(
    store_path: str, snapshot: str, dest: str, *, key: bytes | None = None
) -> dict[str, Any]:
    """Write a snapshot's config files and data directories under ``dest``: config files as
    ``dest/config/<their absolute path>``, each ``--data`` root as ``dest/<its name>``."""
    from pathlib import Path

    from imagewise.backup.data import restore_tree
    from imagewise.fileio import write_file

    store = open_store(store_path, key=key)
    record = store.snapshot(snapshot)
    out = Path(dest)
    config = 0
    for path, info in sorted(record.get("config_files", {}).items()):
        target = out / "config" / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = store.read_blob(info["digest"])
        Digest.parse(info["digest"]).verify(data, f"config file {path}")
        write_file(str(target), data)
        os.chmod(target, info["mode"])
        config += 1
    data_files = sum(restore_tree(store, tree, out) for tree in record.get("data", []))
    return {
        "snapshot": record["id"],
        "to": str(out),
        "config_files": config,
        "data_files": data_files,
    }


# -- verify the store --------------------------------------------------------------------------------


class VerifyResult:
    def __init__(self) -> None:
        self.snapshots = 0
        self.blobs_checked = 0
        self.problems: list[dict[str, Any]] = []

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "snapshots": self.snapshots,
            "blobs_checked": self.blobs_checked,
            "problems": self.problems,
        }


def verify_store(
    store_path: str,
    *,
    read_data: bool = False,
    subset: float | None = None,
    key: bytes | None = None,
) -> VerifyResult:
    store = open_store(store_path, key=key)
    result = VerifyResult()
    snaps = store.snapshots()
    result.snapshots = len(snaps)
    needed_by: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for s in snaps:
        for digest, info in s.get("manifests", {}).items():
            needed_by.setdefault(digest, set()).add(s["id"])
            for b, size in zip(info.get("blobs", []), info.get("blob_sizes", []), strict=False):
                needed_by.setdefault(b, set()).add(s["id"])
                sizes[b] = size
        for f in s.get("config_files", {}).values():
            needed_by.setdefault(f["digest"], set()).add(s["id"])
            sizes[f["digest"]] = f["size"]
        for tree in s.get("data", []):
            for f in tree["files"].values():
                for c in f.get("chunks", []):
                    needed_by.setdefault(c, set()).add(s["id"])
    present = dict(store.blobs())
    for digest, users in sorted(needed_by.items()):
        if digest not in present:
            result.problems.append(
                {"blob": digest, "problem": "missing", "snapshots": sorted(users)}
            )
        elif digest in sizes and not store.codec.framed and present[digest] != sizes[digest]:
            result.problems.append(
                {
                    "blob": digest,
                    "problem": f"size {present[digest]}, expected {sizes[digest]}",
                    "snapshots": sorted(users),
                }
            )
    if read_data:
        digests = sorted(present)
        if subset is not None:
            k = max(1, int(len(digests) * subset)) if digests else 0
            digests = sorted(random.sample(digests, k))
        for digest in digests:
            h = hashlib.sha256()
            try:
                with store.open_blob(digest) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            except ImagewiseError as e:
                result.blobs_checked += 1
                result.problems.append(
                    {
                        "blob": digest,
                        "problem": f"unreadable: {e}",
                        "snapshots": sorted(needed_by.get(digest, ())),
                    }
                )
                continue
            result.blobs_checked += 1
            if "sha256:" + h.hexdigest() != digest:
                result.problems.append(
                    {
                        "blob": digest,
                        "problem": "content does not match its digest",
                        "snapshots": sorted(needed_by.get(digest, ())),
                    }
                )
    return result


def verify_table(result: VerifyResult) -> str:
    lines = [
        f"{p['blob']}: {p['problem']}; needed by {', '.join(p['snapshots']) or 'no snapshot'}"
        for p in result.problems
    ]
    lines.append(
        f"{result.snapshots} snapshot(s), {result.blobs_checked} blob(s) rehashed: "
        + ("ok" if result.ok else f"{len(result.problems)} problem(s)")
    )
    return "\n".join(lines) + "\n"


def restore_table(result: RestoreResult) -> str:
    from imagewise.units import format_size

    lines = [f"restored {i['source']} -> {i['target']} ({i['digest'][:19]})" for i in result.images]
    lines.append(
        f"{len(result.images)} image(s) from snapshot {result.snapshot}, {format_size(result.bytes)} sent in "
        f"{result.seconds:.1f} s; verified: every manifest and blob read back, digests match"
    )
    return "\n".join(lines) + "\n"
