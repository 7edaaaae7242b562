"""What a registry (or an OCI layout) holds, read from manifests (and, on request, configs)
only: repositories, their tags, every manifest reachable from a tag (index children and
referrers included) and the blobs each one names. No layer byte is read.

The inventory is the one input of the space report (``du``), the retention plan and the dedup
report. Reading is parallel: one ``tags/list`` per repository, one manifest GET per tag (tags
that share a digest are fetched once after the first), one per index child, and one config
GET per image when ``configs`` is asked for (push times for retention, diff_ids for dedup).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from imagewise.errors import ImageFormatError, NotFound, UsageError
from imagewise.oci import media
from imagewise.oci.model import Descriptor, Index, Manifest, parse_manifest

JOBS = 16


class ManifestInfo:
    """One manifest (image, index or artifact) and what it names."""

    __slots__ = (  # noqa: RUF023
        "digest",
        "media_type",
        "size",
        "config",
        "layers",
        "children",
        "subject",
        "artifact_type",
        "annotations",
        "created",
        "diff_ids",
    )

    def __init__(
        self,
        digest: str,
        media_type: str,
        size: int,
        config: Descriptor | None = None,
        layers: tuple[Descriptor, ...] = (),
        children: tuple[str, ...] = (),
        subject: str | None = None,
        artifact_type: str = "",
        annotations: dict[str, str] | None = None,
    ) -> None:
        self.digest, self.media_type, self.size = digest, media_type, size
        self.config, self.layers, self.children = config, layers, children
        self.subject, self.artifact_type = subject, artifact_type
        self.annotations = annotations or {}
        self.created: str | None = self.annotations.get("org.opencontainers.image.created")
        self.diff_ids: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in media.INDEX_TYPES

    def blobs(self) -> Iterator[tuple[str, int]]:
        """(digest, size) of the blobs this manifest names itself (not its children)."""
        if self.config is not None:
            yield str(self.config.digest), self.config.size
        for layer in self.layers:
            if not layer.urls:  # foreign layers live elsewhere
                yield str(layer.digest), layer.size

    @classmethod
    def parse(cls, digest: str, raw: bytes, media_type: str) -> ManifestInfo:
        parsed = parse_manifest(raw, media_type)
        doc = json.loads(raw)
        subject = doc.get("subject") if isinstance(doc, dict) else None
        subject_digest = subject.get("digest") if isinstance(subject, dict) else None
        artifact = str(doc.get("artifactType") or "") if isinstance(doc, dict) else ""
        if isinstance(parsed, Index):
            return cls(
                digest,
                parsed.media_type,
                len(raw),
                children=tuple(str(d.digest) for d in parsed.manifests),
                subject=subject_digest,
                artifact_type=artifact,
                annotations=_string_map(doc.get("annotations")),
            )
        assert isinstance(parsed, Manifest)
        if not artifact and parsed.config.media_type not in media.CONFIG_TYPES:
            artifact = parsed.config.media_type
        return cls(
            digest,
            parsed.media_type,
            len(raw),
            config=parsed.config,
            layers=tuple(parsed.layers),
            subject=subject_digest,
            artifact_type=artifact,
            annotations=dict(parsed.annotations),
        )


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


class Repository:
    __slots__ = ("name", "tags")  # noqa: RUF023

    def __init__(self, name: str, tags: dict[str, str]) -> None:
        self.name = name
        self.tags = tags  # tag -> manifest digest


class Inventory:
    """Repositories with their tags, and every manifest they reach, by digest. A manifest
    digest is per repository in a registry; ``manifests`` is keyed by (repository, digest)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.repositories: dict[str, Repository] = {}
        self.manifests: dict[tuple[str, str], ManifestInfo] = {}
        #: (repository, digest) of manifests no tag reaches (OCI layouts; registries cannot
        #: list them through the distribution API)
        self.untagged: list[tuple[str, str]] = []
        self.untagged_known = False
        #: when each manifest was pushed (seconds since the epoch), where that can be known:
        #: a registry's storage directory (its revision links), a layout's blob files
        self.pushed: dict[tuple[str, str], float] = {}
        self.requests: dict[str, int] = {}
        #: opens a blob of a repository (for the few readers that need layer bytes: dedup)
        self.opener: Callable[[str, Descriptor], IO[bytes]] | None = None

    def closure(self, repo: str, digest: str) -> Iterator[ManifestInfo]:
        """The manifest and, for an index, its children (recursively), each once."""
        seen: set[str] = set()
        stack = [digest]
        while stack:
            d = stack.pop()
            if d in seen:
                continue
            seen.add(d)
            info = self.manifests.get((repo, d))
            if info is None:
                continue
            yield info
            stack.extend(info.children)

    def image_blobs(self, repo: str, digest: str) -> dict[str, int]:
        """Every blob an image (or index) needs: manifests, configs, layers, by digest."""
        out: dict[str, int] = {}
        for info in self.closure(repo, digest):
            out[info.digest] = info.size
            out.update(info.blobs())
        return out

    def referrers(self, repo: str, digest: str) -> list[str]:
        return [d for (r, d), m in self.manifests.items() if r == repo and m.subject == digest]


# -- reading a registry ----------------------------------------------------------------------


def read_registry(
    client: Any,
    repositories: Iterable[str] | None = None,
    *,
    configs: bool = False,
    jobs: int = JOBS,
    progress: Callable[[str], None] | None = None,
    storage_dir: str | Path | None = None,
) -> Inventory:
    """The inventory of ``repositories`` (default: every repository ``_catalog`` lists).

    The distribution API lists tags, not manifests: a manifest no tag names any more is
    invisible to it. ``storage_dir`` (the registry's filesystem ``rootdirectory``, read-only
    access is enough) adds every manifest each repository holds, from its revision links, with
    when it was pushed (the link's time); those no tag reaches are ``untagged``."""
    revisions = {} if storage_dir is None else _revision_links(Path(storage_dir), repositories)
    inv = Inventory(client.host)
    inv.opener = client.open_blob
    lock = threading.Lock()

    def count(kind: str) -> None:
        with lock:
            inv.requests[kind] = inv.requests.get(kind, 0) + 1

    names = list(repositories) if repositories is not None else None
    if names is None:
        count("catalog")
        names = client.catalog()
    with ThreadPoolExecutor(max_workers=jobs) as pool:

        def tags_of(repo: str) -> tuple[str, list[str]]:
            count("tags")
            try:
                return repo, client.list_tags(repo)
            except NotFound:
                return repo, []

        listed = list(pool.map(tags_of, names))
        fetched: dict[tuple[str, str], ManifestInfo] = {}

        def get(repo: str, ref: str) -> ManifestInfo | None:
            count("manifest")
            try:
                m = client.get_manifest(repo, ref)
            except NotFound:
                return None  # deleted meanwhile, or a dangling tag
            info = ManifestInfo.parse(str(m.digest), m.raw, m.media_type)
            with lock:
                fetched[(repo, info.digest)] = info
            return info

        jobs_list = [(repo, tag) for repo, tags in listed for tag in tags]
        results = list(pool.map(lambda rt: get(*rt), jobs_list))
        for repo, tags in listed:
            inv.repositories[repo] = Repository(repo, {})
        for (repo, tag), info in zip(jobs_list, results, strict=True):
            if info is not None:
                inv.repositories[repo].tags[tag] = info.digest
        # manifests only the storage holds (untagged), by digest
        listed_repos = set(inv.repositories)
        stored = [key for key in revisions if key[0] in listed_repos and key not in fetched]
        list(pool.map(lambda rd: get(*rd), stored))
        # index children (and their children), each once
        pending = {
            (repo, child)
            for (repo, _), info in fetched.items()
            for child in info.children
            if (repo, child) not in fetched
        }
        while pending:
            list(pool.map(lambda rd: get(*rd), sorted(pending)))
            pending = {
                (repo, child)
                for (repo, _), info in list(fetched.items())
                for child in info.children
                if (repo, child) not in fetched
            }
        inv.manifests = fetched
        if storage_dir is not None:
            _mark_untagged(inv, revisions)
        if configs:
            images = [
                (repo, info)
                for (repo, _), info in fetched.items()
                if info.config is not None and info.config.media_type in media.CONFIG_TYPES
            ]
            list(pool.map(lambda ri: _read_config(client, ri[0], ri[1], count), images))
            _index_times(inv)
    if progress:
        progress(f"{len(inv.repositories)} repositories, {len(inv.manifests)} manifests")
    return inv


def _revision_links(root: Path, repositories: Iterable[str] | None) -> dict[tuple[str, str], float]:
    """(repository, manifest digest) -> when it was pushed, for every manifest revision the
    distribution registry's filesystem storage under ``root`` holds."""
    base = root / "docker" / "registry" / "v2" / "repositories"
    if not base.is_dir():
        raise UsageError(
            f"{root}: not a distribution registry's storage directory (no "
            "docker/registry/v2/repositories under it; give the rootdirectory of its "
            "storage.filesystem)"
        )
    wanted = None if repositories is None else set(repositories)
    found: dict[tuple[str, str], float] = {}
    for manifests in base.rglob("_manifests"):
        repo = manifests.parent.relative_to(base).as_posix()
        if wanted is not None and repo not in wanted:
            continue
        revisions = manifests / "revisions"
        for algo in revisions.iterdir() if revisions.is_dir() else ():
            for entry in algo.iterdir():
                link = entry / "link"
                try:
                    when = link.stat().st_mtime
                except OSError:
                    continue  # deleted meanwhile
                found[(repo, f"{algo.name}:{entry.name}")] = when
    return found


def _mark_untagged(inv: Inventory, revisions: dict[tuple[str, str], float]) -> None:
    """Push times from the revision links; manifests the tags do not reach are untagged."""
    inv.untagged_known = True
    inv.pushed.update({k: v for k, v in revisions.items() if k in inv.manifests})
    reached: set[tuple[str, str]] = set()
    for repo in inv.repositories.values():
        for digest in repo.tags.values():
            reached.update((repo.name, info.digest) for info in inv.closure(repo.name, digest))
    inv.untagged = sorted(k for k in inv.manifests if k not in reached)


def _read_config(client: Any, repo: str, info: ManifestInfo, count: Callable[[str], None]) -> None:
    assert info.config is not None
    count("config")
    try:
        doc = json.loads(client.read_blob(repo, info.config))
    except (NotFound, ValueError, ImageFormatError):
        return
    if isinstance(doc, dict):
        created = doc.get("created")
        if isinstance(created, str) and created:
            info.created = info.created or created
        rootfs = doc.get("rootfs")
        if isinstance(rootfs, dict) and isinstance(rootfs.get("diff_ids"), list):
            info.diff_ids = tuple(str(d) for d in rootfs["diff_ids"])


def _index_times(inv: Inventory) -> None:
    """An index is as new as its newest child."""
    for (repo, _), info in inv.manifests.items():
        if info.is_index and info.created is None:
            times = [
                c.created for c in inv.closure(repo, info.digest) if c.created and c is not info
            ]
            info.created = max(times) if times else None


# -- reading an OCI layout -------------------------------------------------------------------


def read_layout(path: str | Path, *, configs: bool = False) -> Inventory:
    """An OCI image layout as one repository (named after the directory): tags from
    ``index.json`` (``org.opencontainers.image.ref.name``), every manifest blob the layout
    holds, and which of them no tag reaches (untagged)."""
    root = Path(path)
    name = root.name
    inv = Inventory(f"oci:{root}")
    try:
        index = json.loads((root / "index.json").read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ImageFormatError(f"{root}: not an OCI layout (index.json: {e})") from None
    blobs = root / "blobs"

    def blob(digest: str) -> bytes:
        algo, _, hexpart = digest.partition(":")
        return (blobs / algo / hexpart).read_bytes()

    repo = Repository(name, {})
    inv.repositories[name] = repo

    def opener(_repo: str, desc: Descriptor) -> IO[bytes]:
        algo, _, hexpart = str(desc.digest).partition(":")
        return open(blobs / algo / hexpart, "rb")

    inv.opener = opener
    stack = []
    for desc in index.get("manifests", []):
        digest = str(desc.get("digest"))
        tag = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if tag:
            repo.tags[tag] = digest
        stack.append((digest, str(desc.get("mediaType", ""))))
    while stack:
        digest, mt = stack.pop()
        if (name, digest) in inv.manifests:
            continue
        try:
            raw = blob(digest)
        except OSError:
            continue
        info = ManifestInfo.parse(digest, raw, mt or _sniff(raw))
        inv.manifests[(name, digest)] = info
        stack.extend((c, "") for c in info.children)
        if configs and info.config is not None and info.config.media_type in media.CONFIG_TYPES:
            try:
                doc = json.loads(blob(str(info.config.digest)))
                info.created = info.created or doc.get("created")
                info.diff_ids = tuple(doc.get("rootfs", {}).get("diff_ids", ()))
            except (OSError, ValueError, AttributeError):
                pass
    # manifests in the blob store that nothing reaches
    inv.untagged_known = True
    reached = {d for (_, d) in inv.manifests}
    for algo_dir in blobs.iterdir() if blobs.is_dir() else ():
        for f in algo_dir.iterdir():
            digest = f"{algo_dir.name}:{f.name}"
            if digest in reached or f.stat().st_size > media.MAX_METADATA_BYTES:
                continue
            raw = f.read_bytes()
            mt = _sniff(raw)
            if mt in media.MANIFEST_TYPES or mt in media.INDEX_TYPES:
                try:
                    info = ManifestInfo.parse(digest, raw, mt)
                except (ImageFormatError, ValueError):
                    continue
                inv.manifests[(name, digest)] = info
                inv.untagged.append((name, digest))
    for key in inv.manifests:
        algo, _, hexpart = key[1].partition(":")
        try:
            inv.pushed[key] = (blobs / algo / hexpart).stat().st_mtime
        except OSError:
            pass
    _index_times(inv)
    return inv


def _sniff(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        return ""
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if "manifests" in doc:
        return media.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return media.OCI_MANIFEST
    return ""


def split_targets(refs: list[str]) -> tuple[list[Path], dict[str, list[str] | None]]:
    """What ``du``-style targets name: OCI layouts (``oci:DIR``, or a directory holding
    ``index.json``), in order, and per registry host its repositories (``localhost:5000/app``;
    ``None`` for a bare host: every repository). A tag or digest is refused."""
    layouts: list[Path] = []
    hosts: dict[str, list[str] | None] = {}
    for ref in refs:
        text = ref.removeprefix("docker://").rstrip("/")
        if text.startswith("oci:") or (
            Path(text).is_dir() and (Path(text) / "index.json").is_file()
        ):
            layouts.append(
                Path(
                    text.removeprefix("oci:").split(":", 1)[0] if text.startswith("oci:") else text
                )
            )
            continue
        host, _, repo = text.partition("/")
        if not host or ("." not in host and ":" not in host and host != "localhost"):
            raise UsageError(f"{ref}: not a registry (host[:port][/repository]) or oci:DIR")
        if ":" in repo or "@" in repo:
            raise UsageError(f"{ref}: give repositories without a tag or digest")
        if not repo:
            hosts[host] = None
        elif hosts.get(host, []) is not None:
            hosts.setdefault(host, []).append(repo)  # type: ignore[union-attr]
    return layouts, hosts
