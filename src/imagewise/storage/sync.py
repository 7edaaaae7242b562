"""``imagewise sync CONFIG DEST``: mirror the images a ``skopeo sync`` YAML file names into a
registry (under a prefix) or into one OCI layout, incrementally.

The config is skopeo's (``skopeo sync --src yaml``): a map from source registry to ``images``
(repository -> tags or digests; ``[]`` for every tag), ``images-by-tag-regex`` (repository ->
an unanchored regular expression), ``images-by-semver`` (repository -> a constraint such as
``">= 3.12.0"``), ``credentials`` (``username``, ``password``) and ``tls-verify``.

* Destination names follow skopeo: ``DEST/<repository>`` (``--scoped``: ``DEST/<registry>/
  <repository>``); into an OCI layout each image is named ``<repository>:<tag>``.
* Incremental: an image whose destination tag already names the source's digest is skipped
  after one manifest HEAD on each side (plus one ``tags/list`` per repository selected by
  ``[]``, regex or semver).
* Parallel: images in ``jobs`` threads, each image's blobs in parallel too. Every blob is sent
  once per destination registry in a run: the first image to need it uploads it, the others
  mount it from that repository (a run-wide ledger).
* ``prune``: destination tags of the synced repositories that the source no longer has are
  deleted (by digest, so never a digest a kept tag shares, as retention does).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from imagewise.configfile import load_yaml, reject_unknown_keys
from imagewise.errors import ConfigError, ImagewiseError, NotFound, UsageError
from imagewise.oci.model import Descriptor, Manifest
from imagewise.sources.base import Sink, Source

JOBS = 4


class SourceImage:
    __slots__ = ("registry", "repository", "ref", "client")  # noqa: RUF023

    def __init__(self, registry: str, repository: str, ref: str, client: Any) -> None:
        self.registry, self.repository, self.ref, self.client = registry, repository, ref, client

    @property
    def name(self) -> str:
        sep = "@" if ref_is_digest(self.ref) else ":"
        return f"{self.registry}/{self.repository}{sep}{self.ref}"


def ref_is_digest(ref: str) -> bool:
    return ref.startswith("sha256:") or ref.startswith("sha512:")


# -- the config -----------------------------------------------------------------------------------


class RegistryBlock:
    def __init__(self, host: str, doc: dict[str, Any], where: str) -> None:
        self.host = host
        known = {
            "images",
            "images-by-tag-regex",
            "images-by-semver",
            "credentials",
            "tls-verify",
            "cert-dir",
        }
        reject_unknown_keys(doc, known, where)
        self.images: dict[str, list[str]] = {}
        for repo, refs in (doc.get("images") or {}).items():
            if refs is None:
                refs = []
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise ConfigError(f"{where}.images.{repo}: expected a list of tags or digests")
            self.images[str(repo)] = list(refs)
        self.regex: dict[str, re.Pattern[str]] = {}
        for repo, pattern in (doc.get("images-by-tag-regex") or {}).items():
            try:
                self.regex[str(repo)] = re.compile(str(pattern))
            except re.error as e:
                raise ConfigError(f"{where}.images-by-tag-regex.{repo}: {e}") from None
        self.semver: dict[str, Any] = {}
        for repo, text in (doc.get("images-by-semver") or {}).items():
            from imagewise.tagversion import parse_constraint

            norm = re.sub(r"(>=|<=|>|<|=|~|\^)\s+", r"\1", str(text)).replace(",", " ")
            try:
                self.semver[str(repo)] = parse_constraint(norm)
            except UsageError as e:
                raise ConfigError(f"{where}.images-by-semver.{repo}: {e}") from None
        self.tls_verify = doc.get("tls-verify", True)
        if not isinstance(self.tls_verify, bool):
            raise ConfigError(f"{where}.tls-verify: expected true or false")
        creds = doc.get("credentials")
        self.credentials: tuple[str, str] | None = None
        if creds is not None:
            if not isinstance(creds, dict) or not {"username", "password"} <= set(creds):
                raise ConfigError(f"{where}.credentials: expected username and password")
            self.credentials = (str(creds["username"]), str(creds["password"]))

    def client(self) -> Any:
        from imagewise.registry.client import RegistryClient

        insecure = not self.tls_verify
        if self.credentials is None:
            return RegistryClient.get(self.host, insecure=insecure)
        from imagewise.registry.credentials import Credentials

        user, password = self.credentials
        return RegistryClient(
            self.host,
            insecure=insecure,
            credentials=Credentials(user, password, origin="sync config"),
        )


def load_config(path: str | Path) -> list[RegistryBlock]:
    p = Path(path)
    doc = load_yaml(p, "sync config")
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(
            f"sync config {p}: expected a map of registry -> images (skopeo sync YAML)"
        )
    blocks = []
    for host, block in doc.items():
        if not isinstance(block, dict):
            raise ConfigError(f"sync config {p}: {host}: expected a mapping")
        blocks.append(RegistryBlock(str(host), block, f"sync config {p}: {host}"))
    return blocks


def select(block: RegistryBlock, client: Any) -> list[SourceImage]:
    """The source images a registry block names (tags listed where a selector needs them)."""
    from imagewise.tagversion import parse_tag, satisfies

    out: list[SourceImage] = []
    repos = sorted(set(block.images) | set(block.regex) | set(block.semver))
    for repo in repos:
        chosen: list[str] = []
        listed: list[str] | None = None

        def tags() -> list[str]:
            nonlocal listed
            if listed is None:
                listed = client.list_tags(repo)
            return listed

        if repo in block.images:
            refs = block.images[repo]
            chosen += refs if refs else tags()
        if repo in block.regex:
            chosen += [t for t in tags() if block.regex[repo].search(t)]
        if repo in block.semver:
            for t in tags():
                v = parse_tag(t)
                if (
                    v is not None
                    and not v.pre
                    and not v.flavour
                    and satisfies(v.numbers, block.semver[repo])
                ):
                    chosen.append(t)
        from imagewise.tags import is_bookkeeping_tag

        for ref in dict.fromkeys(chosen):
            if not is_bookkeeping_tag(ref):
                out.append(SourceImage(block.host, repo, ref, client))
    return out


# -- one blob once per destination registry ----------------------------------------------------------


class BlobLedger:
    """Which destination repository holds which blob in this run; one uploader per blob."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}
        self._busy: dict[str, threading.Event] = {}

    def claim(self, digest: str) -> str | None:
        """The repository holding ``digest`` (waiting for an upload in flight), or None: the
        caller uploads it and must call ``done`` or ``failed``."""
        while True:
            with self._lock:
                if digest in self._held:
                    return self._held[digest]
                event = self._busy.get(digest)
                if event is None:
                    self._busy[digest] = threading.Event()
                    return None
            event.wait()

    def done(self, digest: str, repository: str) -> None:
        with self._lock:
            self._held.setdefault(digest, repository)
            event = self._busy.pop(digest, None)
        if event is not None:
            event.set()

    def failed(self, digest: str) -> None:
        with self._lock:
            event = self._busy.pop(digest, None)
        if event is not None:
            event.set()


class LedgerSink(Sink):
    """A registry sink that mounts a blob from the repository that received it earlier in the
    run instead of sending it again."""

    def __init__(self, inner: Any, ledger: BlobLedger) -> None:
        self.inner = inner
        self.ledger = ledger
        self.name = inner.name
        self._claimed: set[str] = set()

    def has_blob(self, desc: Descriptor) -> bool:
        if self.inner.has_blob(desc):
            self.ledger.done(str(desc.digest), self.inner.repository)
            return True
        return False

    def mount_from(self, source: Source) -> str | None:
        return "(ledger)"

    def mount_blob(self, desc: Descriptor, from_repository: str) -> bool:
        holder = self.ledger.claim(str(desc.digest))
        if holder is None:
            self._claimed.add(str(desc.digest))
            return False  # ours to upload
        if holder == self.inner.repository:
            return True
        if self.inner.mount_blob(desc, holder):
            return True
        return False

    def put_blob(self, desc: Descriptor, stream: IO[bytes]) -> None:
        key = str(desc.digest)
        try:
            self.inner.put_blob(desc, stream)
        except BaseException:
            if key in self._claimed:
                self.ledger.failed(key)
            raise
        self.ledger.done(key, self.inner.repository)

    def put_manifest(self, manifest: Any, *, top: bool) -> None:
        self.inner.put_manifest(manifest, top=top)

    def commit(self) -> None:
        self.inner.commit()

    def close(self) -> None:
        self.inner.close()


# -- running --------------------------------------------------------------------------------------


class SyncResult:
    def __init__(self, destination: str, dry_run: bool) -> None:
        self.destination = destination
        self.dry_run = dry_run
        self.images: list[dict[str, Any]] = []
        self.pruned: list[dict[str, Any]] = []
        self.errors: list[str] = []

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for i in self.images:
            counts[i["action"]] = counts.get(i["action"], 0) + 1
        return {
            "destination": self.destination,
            "dry_run": self.dry_run,
            "counts": counts,
            "blobs_copied": sum(i.get("blobs_copied", 0) for i in self.images),
            "blobs_mounted": sum(i.get("blobs_mounted", 0) for i in self.images),
            "bytes_copied": sum(i.get("bytes_copied", 0) for i in self.images),
            "images": self.images,
            "pruned": self.pruned,
            "errors": self.errors,
        }


def _dest_parts(dest: str) -> tuple[str, str, str]:
    """(kind "registry"|"layout", host or path, prefix)."""
    if dest.startswith("oci:"):
        return "layout", dest[4:], ""
    text = dest.removeprefix("docker://").rstrip("/")
    host, _, prefix = text.partition("/")
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        raise UsageError(f"{dest}: expected docker://REGISTRY[/PREFIX] or oci:DIR")
    return "registry", host, prefix


def sync(
    config: str | Path,
    dest: str,
    *,
    scoped: bool = False,
    prune: bool = False,
    dry_run: bool = False,
    jobs: int = JOBS,
    insecure: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyncResult:
    """Mirror what ``config`` names into ``dest``; see the module docstring."""
    from imagewise.copy import copy_image
    from imagewise.reference import ImageReference
    from imagewise.registry.client import RegistryClient
    from imagewise.sources.registry import RegistrySink, RegistrySource

    kind, where, prefix = _dest_parts(dest)
    blocks = load_config(config)
    result = SyncResult(dest, dry_run)
    ledger = BlobLedger()
    dest_client = RegistryClient.get(where, insecure=insecure) if kind == "registry" else None
    layout_index = _layout_entries(where) if kind == "layout" else {}
    images: list[tuple[SourceImage, str]] = []
    for block in blocks:
        client = block.client()
        for img in select(block, client):
            path = f"{img.registry}/{img.repository}" if scoped else img.repository
            images.append((img, f"{prefix}/{path}" if prefix else path))

    def one(item: tuple[SourceImage, str]) -> dict[str, Any]:
        img, dest_repo = item
        entry: dict[str, Any] = {"source": img.name}
        try:
            src_ref = ImageReference.parse(img.name)
            desc = img.client.head_manifest(img.repository, img.ref)
            entry["digest"] = str(desc.digest)
            tag = img.ref if not ref_is_digest(img.ref) else None
            if kind == "registry":
                assert dest_client is not None
                target = f"{where}/{dest_repo}" + (f":{tag}" if tag else f"@{desc.digest}")
                entry["destination"] = f"docker://{target}"
                try:
                    have = str(dest_client.head_manifest(dest_repo, tag or str(desc.digest)).digest)
                except NotFound:
                    have = None
                if have == str(desc.digest):
                    entry["action"] = "up-to-date"
                    return entry
                if dry_run:
                    entry["action"] = "would-copy"
                    return entry
                source = RegistrySource(src_ref, client=img.client)
                sink: Sink = LedgerSink(
                    RegistrySink(ImageReference.parse(target), client=dest_client), ledger
                )
            else:
                from imagewise.sources.oci_layout import OCILayoutSink

                name = f"{dest_repo}:{tag or str(desc.digest).replace(':', '-')}"
                entry["destination"] = f"oci:{where} ({name})"
                source = RegistrySource(src_ref, client=img.client)
                if layout_index.get(name) in (str(desc.digest), _converted_digest(source)):
                    entry["action"] = "up-to-date"
                    return entry
                if dry_run:
                    entry["action"] = "would-copy"
                    return entry
                sink = OCILayoutSink(where, tag=name)
            with sink:
                copied = copy_image(source, sink, jobs=4)
            entry.update(
                action="copied",
                blobs_copied=copied.blobs_copied,
                blobs_mounted=copied.blobs_mounted,
                blobs_skipped=copied.blobs_skipped,
                bytes_copied=copied.bytes_copied,
            )
        except ImagewiseError as e:
            entry["action"] = "failed"
            entry["error"] = str(e)
        if progress:
            progress(f"{entry['action']} {img.name}")
        return entry

    workers = 1 if kind == "layout" else max(1, jobs)  # one layout: one index.json writer
    if workers == 1:
        done = [one(i) for i in images]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(one, images))
    result.images = done
    result.errors = [f"{e['source']}: {e['error']}" for e in done if e["action"] == "failed"]
    if prune:
        if kind != "registry":
            raise UsageError("--prune removes tags from a registry destination; not from a layout")
        assert dest_client is not None
        _prune(dest_client, images, result, dry_run)
    return result


def _layout_entries(path: str) -> dict[str, str]:
    import json

    try:
        doc = json.loads((Path(path) / "index.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for m in doc.get("manifests", []):
        name = (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if name:
            out[name] = str(m.get("digest"))
    return out


def _converted_digest(source: Source) -> str:
    """The digest a layout stores for the source's top manifest (Docker ones are converted)."""
    from imagewise.oci.convert import manifest_to_oci

    top = source.top()
    if isinstance(top, Manifest):
        return str(manifest_to_oci(top).digest)
    return str(top.digest)


def _prune(
    client: Any, images: list[tuple[SourceImage, str]], result: SyncResult, dry_run: bool
) -> None:
    from imagewise.tags import is_bookkeeping_tag

    wanted: dict[str, set[str]] = {}
    for img, dest_repo in images:
        tags = wanted.setdefault(dest_repo, set())
        if not ref_is_digest(img.ref):
            tags.add(img.ref)
    for dest_repo, keep in sorted(wanted.items()):
        try:
            tags = client.list_tags(dest_repo)
        except NotFound:
            continue
        digests = {}
        for t in tags:
            try:
                digests[t] = str(client.head_manifest(dest_repo, t).digest)
            except NotFound:
                continue
        kept_digests = {d for t, d in digests.items() if t in keep or is_bookkeeping_tag(t)}
        for t, d in sorted(digests.items()):
            if t in keep or is_bookkeeping_tag(t):
                continue
            entry = {"repository": dest_repo, "tag": t, "digest": d}
            if d in kept_digests:
                entry["action"] = "kept"
                entry["why"] = (
                    "shares its digest with a synced tag (the registry deletes by digest)"
                )
            elif dry_run:
                entry["action"] = "would-delete"
            else:
                client.delete_manifest(dest_repo, d)
                kept_digests.discard(d)
                entry["action"] = "deleted"
            result.pruned.append(entry)


def sync_table(result: SyncResult) -> str:
    from imagewise.units import format_size

    doc = result.to_json()
    lines = [
        f"{i['action']:<11} {i['source']}" + (f": {i['error']}" if i.get("error") else "")
        for i in result.images
    ]
    lines += [f"{p['action']:<11} {p['repository']}:{p['tag']}" for p in result.pruned]
    counts = ", ".join(f"{n} {a}" for a, n in sorted(doc["counts"].items()))
    lines.append(
        f"{result.destination}: {counts or 'nothing selected'}; {doc['blobs_copied']} blobs sent "
        f"({format_size(doc['bytes_copied'])}), {doc['blobs_mounted']} mounted"
        + (" (dry run: nothing written)" if result.dry_run else "")
    )
    return "\n".join(lines) + "\n"
