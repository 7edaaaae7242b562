"""Copy an image from a Source to a Sink: ``imagewise copy SRC DST``.

What is copied:

* By default the whole thing the source reference names: a single manifest, or an index with
  every child manifest it lists (like ``skopeo copy --all`` / ``crane copy``). The top manifest
  bytes are written as they are, so the destination digest equals the source digest.
* With ``platform`` and an index source, only the matching image: the destination then holds
  that platform's manifest (its digest is the child's digest, as in ``skopeo copy`` without
  ``--all``). A sink that holds single images only (docker-archive) always gets one platform,
  the host's unless ``platform`` says otherwise. With ``platform`` and a single-platform source,
  the image must be that platform (``PlatformNotFound`` names the one it is).

Blob bytes are never changed (unless ``compress`` asks for recompressed layers: then the
source is seen through :class:`imagewise.recompress.RecompressedSource`). Manifests keep their bytes too, except
that a sink writing an OCI image layout (``oci:``, ``oci-archive:``, and the ``index.json`` of a
``docker-archive:``) gets Docker v2 manifests and manifest lists rewritten with OCI media types
(``oci/convert.py``), because layout readers (skopeo, umoci) find only those by tag; the
result's ``source_digest`` then differs from ``digest``.

Blobs (configs and layers, deduplicated) go in parallel threads. A blob the sink already has is
skipped; between two repositories of the same registry a blob is mounted instead of sent. A
layer whose digest the source cannot vouch for (a docker-archive layer named by hashing its own
bytes) is decompressed and checked against its diff_id before anything is committed.
Manifests follow their blobs (children before the top), then the sink commits.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.fileio import Reader, readinto
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, ImageConfig, Index, Manifest, Platform
from imagewise.progress import NULL, Reporter
from imagewise.record import Record
from imagewise.sources.base import Sink, Source, check_platform

DEFAULT_JOBS = 6
TOTAL = "copy"  # the Reporter key of the overall progress (per-blob keys are digests)


class CopyResult(Record):
    """What a copy did. ``digest`` is the destination's top manifest digest; ``source_digest``
    the source's, different only when the manifests were converted to OCI media types."""

    __slots__ = (  # noqa: RUF023 - in field order
        "source",
        "destination",
        "digest",
        "media_type",
        "manifests",
        "blobs_copied",
        "blobs_skipped",
        "blobs_mounted",
        "bytes_copied",
        "source_digest",
        "compression",
        "layer_bytes_before",
        "layer_bytes_after",
    )

    def __init__(
        self,
        source: str,
        destination: str,
        digest: str,
        media_type: str,
        manifests: int,
        blobs_copied: int,
        blobs_skipped: int,
        blobs_mounted: int,
        bytes_copied: int,
        source_digest: str = "",
        compression: str = "",  # the layers were recompressed to this (copy --compress)
        layer_bytes_before: int = 0,
        layer_bytes_after: int = 0,
    ) -> None:
        self.source = source
        self.destination = destination
        self.digest = digest
        self.media_type = media_type
        self.manifests = manifests
        self.blobs_copied = blobs_copied
        self.blobs_skipped = blobs_skipped
        self.blobs_mounted = blobs_mounted
        self.bytes_copied = bytes_copied
        self.source_digest = source_digest or digest
        self.compression = compression
        self.layer_bytes_before = layer_bytes_before
        self.layer_bytes_after = layer_bytes_after

    @property
    def converted(self) -> bool:
        """True when the destination holds OCI conversions of Docker manifests."""
        return self.source_digest != self.digest

    def to_json(self) -> dict[str, Any]:
        """The fields by name (what ``dataclasses.asdict`` gave); the recompression figures
        only when the layers were recompressed."""
        skip = (
            () if self.compression else ("compression", "layer_bytes_before", "layer_bytes_after")
        )
        return {name: getattr(self, name) for name in self._fields if name not in skip}


class _Progress(Reader):
    """Wraps a blob stream to report bytes read to a Reporter; ``restart()`` reopens the blob
    from its start (a registry sink starting a failed upload over)."""

    def __init__(self, source: Source, desc: Descriptor, reporter: Reporter, key: str) -> None:
        self._source = source
        self._desc = desc
        self._raw = source.open_blob(desc)
        self._reporter = reporter
        self._key = key
        self.count = 0
        # Source.open_blob streams raise at EOF unless the bytes match the digest, so a sink that
        # reads to EOF may skip hashing them a second time
        self.verifies = desc.digest

    def restart(self) -> None:
        self._raw.close()
        self._raw = self._source.open_blob(self._desc)
        self._advance(-self.count)

    def read(self, n: int | None = -1) -> bytes:
        data = self._raw.read(-1 if n is None else n)
        if data:
            self._advance(len(data))
        return data

    def readinto(self, b: Any) -> int:
        n = readinto(self._raw, memoryview(b).cast("B"))
        if n:
            self._advance(n)
        return n

    def _advance(self, n: int) -> None:
        self.count += n
        self._reporter.advance(self._key, n)
        self._reporter.advance(TOTAL, n)

    def close(self) -> None:
        self._raw.close()


def copy_image(
    source: Source,
    sink: Sink,
    *,
    platform: Platform | None = None,
    jobs: int = DEFAULT_JOBS,
    reporter: Reporter = NULL,
) -> CopyResult:
    """Copy what ``source`` names into ``sink`` and commit it. See the module docstring."""
    top = source.top()
    if isinstance(top, Index) and (platform is not None or not sink.accepts_index):
        top = _select(source, top, platform or Platform.host())
    elif isinstance(top, Manifest) and platform is not None:
        check_platform(ImageConfig.parse(source.read_blob(top.config)), platform)
    children: list[Manifest] = []
    nested: list[Index] = []
    if isinstance(top, Index):
        for d in top.manifests:
            child = source.fetch_manifest(d)
            if isinstance(child, Index):
                nested.append(child)
                for dd in child.manifests:
                    grandchild = source.fetch_manifest(dd)
                    if isinstance(grandchild, Index):
                        raise ImageFormatError("index nested more than two levels deep")
                    children.append(grandchild)
            else:
                children.append(child)
        images = children
    else:
        images = [top]

    blobs: dict[str, Descriptor] = {}
    for m in images:
        for d in (m.config, *m.layers):
            if d.urls and d.media_type.endswith("foreign.diff.tar.gzip"):
                continue  # foreign layers stay where their URLs point
            blobs.setdefault(str(d.digest), d)

    unvouched = _unvouched_diff_ids(source, images)
    mount_from = sink.mount_from(source)
    stats = {"copied": 0, "skipped": 0, "mounted": 0, "bytes": 0}
    lock = threading.Lock()

    def transfer(desc: Descriptor) -> None:
        key = str(desc.digest)
        if key in unvouched:
            _check_diff_id(source, desc, unvouched[key])
        if sink.has_blob(desc):
            with lock:
                stats["skipped"] += 1
            reporter.advance(TOTAL, desc.size)
            return
        if mount_from is not None and sink.mount_blob(desc, mount_from):
            with lock:
                stats["mounted"] += 1
            reporter.advance(TOTAL, desc.size)
            return
        reporter.start(key, f"blob {desc.digest.short}", desc.size)
        try:
            stream = _Progress(source, desc, reporter, key)
            try:
                sink.put_blob(desc, stream)  # type: ignore[arg-type]
            finally:
                stream.close()
        finally:
            reporter.done(key)
        with lock:
            stats["copied"] += 1
            stats["bytes"] += desc.size

    ordered = sorted(blobs.values(), key=lambda d: -d.size)  # big ones first: shorter tail
    reporter.start(TOTAL, f"{sink.name}", sum(d.size for d in ordered))
    try:
        if jobs <= 1 or len(ordered) <= 1:
            for d in ordered:
                transfer(d)
        else:
            with ThreadPoolExecutor(max_workers=min(jobs, len(ordered))) as pool:
                for f in [pool.submit(transfer, d) for d in ordered]:
                    f.result()
    finally:
        reporter.done(TOTAL)

    later: list[Manifest | Index] = [*children, *nested]  # children before the indexes listing them
    written = top
    if sink.oci_media_types:
        later, written = _to_oci(later, top)
    for doc in later:
        sink.put_manifest(doc, top=False)
    sink.put_manifest(written, top=True)
    sink.commit()
    return CopyResult(
        source=source.name,
        destination=sink.name,
        digest=str(written.digest),
        media_type=written.media_type,
        manifests=1 + len(children) + len(nested),
        blobs_copied=stats["copied"],
        blobs_skipped=stats["skipped"],
        blobs_mounted=stats["mounted"],
        bytes_copied=stats["bytes"],
        source_digest=str(top.digest),
    )


def _to_oci(
    later: list[Manifest | Index],
    top: Manifest | Index,
) -> tuple[list[Manifest | Index], Manifest | Index]:
    """The documents with Docker media types converted (indexes re-pointed at converted
    children), in the same order; see ``oci/convert.py``."""
    from imagewise.oci.convert import index_to_oci, manifest_to_oci

    converted: dict[str, Manifest | Index] = {}

    def convert(doc: Manifest | Index) -> Manifest | Index:
        new = manifest_to_oci(doc) if isinstance(doc, Manifest) else index_to_oci(doc, converted)
        if new is not doc:
            converted[str(doc.digest)] = new
        return new

    out = [convert(d) for d in later]  # manifests, then the nested indexes listing them
    return out, convert(top)


def _unvouched_diff_ids(source: Source, images: list[Manifest]) -> dict[str, Digest | None]:
    """The layers whose digest the source cannot vouch for, with the diff_id each must
    decompress to (``None`` when the config lists none: the layer must still decompress)."""
    out: dict[str, Digest | None] = {}
    for m in images:
        doubtful = [i for i, d in enumerate(m.layers) if not source.vouches_for(d)]
        if not doubtful:
            continue
        diff_ids = ImageConfig.parse(source.read_blob(m.config)).diff_ids
        if diff_ids and len(diff_ids) != len(m.layers):
            raise ImageFormatError(
                f"manifest has {len(m.layers)} layers but config lists {len(diff_ids)} diff_ids"
            )
        for i in doubtful:
            out[str(m.layers[i].digest)] = diff_ids[i] if diff_ids else None
    return out


def _check_diff_id(source: Source, desc: Descriptor, diff_id: Digest | None) -> None:
    """Decompress the layer from the source and compare what comes out with its diff_id
    (a corrupt layer raises LayerReadError, naming it)."""
    from imagewise.archive.decompress import open_decompressed

    h = hashlib.new(diff_id.algorithm if diff_id is not None else "sha256")
    with open_decompressed(source.open_blob(desc), desc.media_type, str(desc.digest)) as f:
        while chunk := f.read_chunk():  # type: ignore[attr-defined]
            h.update(chunk)
    if diff_id is not None and h.hexdigest() != diff_id.hex:
        raise DigestMismatch(
            str(diff_id),
            f"{diff_id.algorithm}:{h.hexdigest()}",
            f"layer {desc.digest} decompressed",
        )


def _select(source: Source, index: Index, platform: Platform) -> Manifest:
    child = source.fetch_manifest(index.select(platform))
    if isinstance(child, Index):
        child = source.fetch_manifest(child.select(platform))
    if isinstance(child, Index):
        raise ImageFormatError("index nested more than two levels deep")
    return child


def copy(
    src: str,
    dst: str,
    *,
    platform: str | None = None,
    insecure: bool = False,
    jobs: int = DEFAULT_JOBS,
    reporter: Reporter = NULL,
    stall: float | None = None,
    timeout: float | None = None,
    compress: str | None = None,
    level: int | None = None,
) -> CopyResult:
    """Copy between two transport strings (``docker://``, ``oci:``, ``oci-archive:``,
    ``docker-archive:``).

    Registry calls count as stalled after ``stall`` seconds without a byte (default: 60, or
    ``IMAGEWISE_STALL_TIMEOUT``) and are retried; the copy fails once ``timeout`` seconds have
    passed. Retries and waits are told to ``reporter.message``. ``compress`` (gzip or zstd, at
    ``level``) recompresses every layer on the way (:mod:`imagewise.recompress`).
    """
    from imagewise.registry.transfer import Transfer
    from imagewise.sources import open_sink, open_source

    wanted = Platform.parse(platform) if platform else None
    transfer = Transfer(stall, timeout, reporter)
    with (
        open_source(src, insecure=insecure, transfer=transfer) as source,
        open_sink(dst, insecure=insecure, transfer=transfer) as sink,
    ):
        if compress is None:
            return copy_image(source, sink, platform=wanted, jobs=jobs, reporter=reporter)
        from imagewise.recompress import RecompressedSource

        reporter.message(f"recompressing layers to {compress}")
        recompressed = RecompressedSource(source, compress, level)
        try:
            result = copy_image(recompressed, sink, platform=wanted, jobs=jobs, reporter=reporter)
        finally:
            recompressed.close()
        return result.replace(
            compression=compress,
            layer_bytes_before=recompressed.bytes_before,
            layer_bytes_after=recompressed.bytes_after,
        )


def copy_summary(result: CopyResult) -> str:
    """``copy``'s summary: what was copied, skipped and mounted, and a digest a conversion
    changed."""
    from imagewise.units import format_size

    text = (
        f"{result.destination} {result.digest}: {result.blobs_copied} blobs copied "
        f"({format_size(result.bytes_copied)}), {result.blobs_skipped} already present, "
        f"{result.blobs_mounted} mounted, {result.manifests} manifest(s)"
    )
    if result.compression:
        before, after = result.layer_bytes_before, result.layer_bytes_after
        change = (after - before) / before * 100 if before else 0.0
        text += (
            f"\nlayers recompressed to {result.compression}: {format_size(before)} -> "
            f"{format_size(after)} ({change:+.1f}%)"
        )
    if result.converted:
        text += (
            f"\nnote: converted to OCI media types for {result.destination}: the source "
            f"digest was {result.source_digest}"
        )
    return text
