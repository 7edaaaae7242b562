"""Recompress an image's layers: a :class:`~imagewise.sources.base.Source` that shows another
source's image with every layer in gzip or zstd (``imagewise copy --compress``).

Each layer is decompressed once, its uncompressed bytes checked against the config's diff_id
(so the diff_ids, and the config, stay the same) and compressed again into a temporary file;
the manifests are rewritten consistently (layer media types, digests and sizes; a Docker
manifest becomes OCI when it needs zstd, which only OCI media types can say) and an index is
re-pointed at its rewritten platforms. Layers already in the target compression are kept as
they are unless a level is asked for. Layers are recompressed in parallel (zstd and isal
release the GIL).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, cast

from imagewise.errors import DigestMismatch, ImageFormatError, UsageError
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, ImageConfig, Index, Manifest, parse_manifest
from imagewise.sources.base import Source

ALGORITHMS = ("gzip", "zstd")
LEVELS = {"gzip": (1, 9, 6), "zstd": (1, 19, 3)}  # (min, max, default)
_CHUNK = 1 << 20

_GZIP_TYPES = {media.OCI_LAYER_GZIP, media.DOCKER_LAYER_GZIP}
_ZSTD_TYPES = {media.OCI_LAYER_ZSTD}


class LayerChange:
    __slots__ = ("old", "new", "path")  # noqa: RUF023

    def __init__(self, old: Descriptor, new: Descriptor, path: str | None) -> None:
        self.old, self.new, self.path = old, new, path


class RecompressedSource(Source):
    """``inner``'s image with its layers in ``algorithm`` (see the module docstring)."""

    def __init__(
        self, inner: Source, algorithm: str, level: int | None = None, jobs: int = 2
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise UsageError(f"--compress {algorithm}: expected one of {', '.join(ALGORITHMS)}")
        lo, hi, default = LEVELS[algorithm]
        if level is not None and not lo <= level <= hi:
            raise UsageError(f"--level {level}: {algorithm} levels are {lo} to {hi}")
        self.inner = inner
        self.name = inner.name
        self.algorithm = algorithm
        self.level = default if level is None else level
        self.forced = level is not None
        self.jobs = jobs
        self._tmp = tempfile.TemporaryDirectory(prefix="imagewise-recompress-")
        self.layers: dict[str, LayerChange] = {}  # new digest -> change
        self._by_old: dict[str, LayerChange] = {}
        self._docs: dict[str, Manifest | Index] = {}  # new digest -> rewritten document
        self._top = self._rewrite_top(inner.top())

    # -- the Source protocol --------------------------------------------------------------------
    def top(self) -> Manifest | Index:
        return self._top

    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        doc = self._docs.get(str(desc.digest))
        return doc if doc is not None else self.inner.fetch_manifest(desc)

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        change = self.layers.get(str(desc.digest))
        if change is not None and change.path is not None:
            return open(change.path, "rb")
        return self.inner.open_blob(desc)

    def hashed_here(self, digest: Digest) -> bool:
        return str(digest) in self.layers

    def close(self) -> None:
        self._tmp.cleanup()

    # -- figures --------------------------------------------------------------------------------
    @property
    def bytes_before(self) -> int:
        return sum(c.old.size for c in self._by_old.values())

    @property
    def bytes_after(self) -> int:
        return sum(c.new.size for c in self._by_old.values())

    # -- rewriting ------------------------------------------------------------------------------
    def _rewrite_top(self, top: Manifest | Index) -> Manifest | Index:
        if isinstance(top, Manifest):
            return self._rewrite_manifest(top)
        return self._rewrite_index(top)

    def _rewrite_index(self, index: Index) -> Index:
        doc = json.loads(index.raw)
        children: list[Manifest | Index] = []
        for d in index.manifests:
            child = self.inner.fetch_manifest(d)
            children.append(
                self._rewrite_index(child)
                if isinstance(child, Index)
                else self._rewrite_manifest(child)
            )
        entries = []
        for new, entry in zip(children, doc.get("manifests", []), strict=True):
            entry = dict(entry)
            entry["digest"], entry["size"] = str(new.digest), len(new.raw)
            entry["mediaType"] = new.media_type
            entries.append(entry)
        doc["manifests"] = entries
        if (
            any(e["mediaType"] == media.OCI_MANIFEST for e in entries)
            and doc.get("mediaType") == media.DOCKER_MANIFEST_LIST
        ):
            doc["mediaType"] = media.OCI_INDEX
        raw = json.dumps(doc, indent=2).encode()
        new_index = parse_manifest(raw, str(doc.get("mediaType") or media.OCI_INDEX))
        assert isinstance(new_index, Index)
        self._docs[str(new_index.digest)] = new_index
        return new_index

    def _rewrite_manifest(self, manifest: Manifest) -> Manifest:
        config = ImageConfig.parse(self.inner.read_blob(manifest.config))
        diff_ids = config.diff_ids
        if diff_ids and len(diff_ids) != len(manifest.layers):
            raise ImageFormatError(
                f"manifest has {len(manifest.layers)} layers but config lists {len(diff_ids)} diff_ids"
            )
        todo = [
            (d, diff_ids[i] if diff_ids else None)
            for i, d in enumerate(manifest.layers)
            if str(d.digest) not in self._by_old and not d.urls
        ]
        if self.jobs > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                for f in [pool.submit(self._layer, d, diff) for d, diff in todo]:
                    f.result()
        else:
            for d, diff in todo:
                self._layer(d, diff)
        doc: dict[str, Any] = json.loads(manifest.raw)
        docker = doc.get("mediaType") == media.DOCKER_MANIFEST
        to_oci = docker and self.algorithm == "zstd"
        layers = []
        for entry, d in zip(doc.get("layers", []), manifest.layers, strict=True):
            change = self._by_old.get(str(d.digest))
            entry = dict(entry)
            if change is not None:
                entry["digest"], entry["size"] = str(change.new.digest), change.new.size
                entry["mediaType"] = change.new.media_type
            if to_oci and entry["mediaType"] == media.DOCKER_LAYER_GZIP:
                entry["mediaType"] = media.OCI_LAYER_GZIP
            layers.append(entry)
        doc["layers"] = layers
        if to_oci:
            doc["mediaType"] = media.OCI_MANIFEST
            doc["config"] = {**doc["config"], "mediaType": media.OCI_CONFIG}
        raw = json.dumps(doc, indent=2).encode()
        new = parse_manifest(raw, str(doc.get("mediaType") or media.OCI_MANIFEST))
        assert isinstance(new, Manifest)
        self._docs[str(new.digest)] = new
        return new

    def _target_type(self, old: Descriptor) -> str:
        if self.algorithm == "zstd":
            return media.OCI_LAYER_ZSTD
        return (
            media.DOCKER_LAYER_GZIP
            if old.media_type.startswith("application/vnd.docker")
            else media.OCI_LAYER_GZIP
        )

    def _layer(self, old: Descriptor, diff_id: Digest | None) -> None:
        target = _ZSTD_TYPES if self.algorithm == "zstd" else _GZIP_TYPES
        if old.media_type in target and not self.forced:
            change = LayerChange(old, old, None)
            self._by_old[str(old.digest)] = change
            return
        from imagewise.archive.decompress import open_decompressed

        fd, path = tempfile.mkstemp(dir=self._tmp.name, suffix=".layer")
        plain = hashlib.sha256()
        packed = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:

            def emit(data: bytes) -> None:
                nonlocal size
                if data:
                    packed.update(data)
                    out.write(data)
                    size += len(data)

            compressor = _compressor(self.algorithm, self.level, emit)
            with open_decompressed(self.inner.open_blob(old), old.media_type, str(old.digest)) as f:
                while chunk := f.read(_CHUNK):
                    plain.update(chunk)
                    compressor.write(chunk)
            compressor.close()
        if diff_id is not None and plain.hexdigest() != diff_id.hex:
            raise DigestMismatch(
                str(diff_id), f"sha256:{plain.hexdigest()}", f"layer {old.digest} decompressed"
            )
        new = Descriptor(
            self._target_type(old),
            Digest("sha256", packed.hexdigest()),
            size,
            dict(old.annotations),
        )
        change = LayerChange(old, new, path)
        self._by_old[str(old.digest)] = change
        self.layers[str(new.digest)] = change


class _Sink:
    """A write-only file object feeding ``emit``."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit

    def write(self, data: bytes) -> int:
        self.emit(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _compressor(algorithm: str, level: int, emit: Any) -> Any:
    out = cast(IO[bytes], _Sink(emit))
    if algorithm == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level, threads=0).stream_writer(out, closefd=False)
    gz: Any
    if level <= 3:  # isal's levels (0-3): several times zlib's speed
        try:
            from isal import igzip as gz
        except ImportError:
            import gzip as gz
    else:
        import gzip as gz
    return gz.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0)
