"""The one image protocol every medium implements, for reading (Source) and writing (Sink).

Nothing above this module knows where bytes came from. ``copy`` is ``Source -> Sink``.
"""

from __future__ import annotations

import abc
from typing import IO, TYPE_CHECKING, Self

from imagewise.errors import ImageFormatError
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import (
    Descriptor,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    Platform,
)
from imagewise.record import Record

if TYPE_CHECKING:
    from imagewise.archive.region import Region


class Layer(Record):
    """One layer of an image: its descriptor, diff_id, position and the history line that made it."""

    __slots__ = ("source", "descriptor", "diff_id", "index", "created_by")  # noqa: RUF023
    _uncompared = _unshown = ("source",)

    def __init__(
        self,
        source: Source,
        descriptor: Descriptor,
        diff_id: Digest | None,
        index: int,
        created_by: str = "",
    ) -> None:
        self.source = source
        self.descriptor = descriptor
        self.diff_id = diff_id
        self.index = index
        self.created_by = created_by

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    def open_compressed(self) -> IO[bytes]:
        """The blob as stored, digest-verified while read (mismatch raises at EOF)."""
        return self.source.open_blob(self.descriptor)

    def region(self) -> Region | None:
        """Where the blob lies as plain bytes in a local file, when it does (see ``blob_region``)."""
        return self.source.blob_region(self.descriptor)

    def open(self) -> IO[bytes]:
        """The uncompressed tar stream; compression is sniffed from the bytes."""
        from imagewise.archive.decompress import open_decompressed

        return open_decompressed(self.open_compressed(), self.media_type, str(self.digest))


class Image(Record):
    """A resolved single-platform image."""

    __slots__ = (  # noqa: RUF023 - in field order
        "reference",
        "manifest",
        "config",
        "layers",
        "source",
        "index",  # the index the manifest was selected from, if any
    )
    _uncompared = _unshown = ("source",)

    def __init__(
        self,
        reference: str,
        manifest: Manifest,
        config: ImageConfig,
        layers: tuple[Layer, ...],
        source: Source,
        index: Index | None = None,
    ) -> None:
        self.reference = reference
        self.manifest = manifest
        self.config = config
        self.layers = layers
        self.source = source
        self.index = index

    @property
    def digest(self) -> Digest:
        return self.manifest.digest

    @property
    def platform(self) -> Platform:
        return self.config.platform


class Source(abc.ABC):
    """Read side of the image protocol."""

    #: human-readable name of what was opened (a transport reference)
    name: str = ""

    @abc.abstractmethod
    def top(self) -> Manifest | Index:
        """The manifest or index the reference points at, raw bytes preserved."""

    @abc.abstractmethod
    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        """A manifest referenced by digest from an index (verified)."""

    @abc.abstractmethod
    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        """A blob stream, digest-verified while read."""

    def blob_region(self, desc: Descriptor) -> Region | None:
        """The local file byte range holding the blob as stored, or ``None`` (a registry, an
        extracted temporary copy...). Nothing is verified: a reader of the region checks the
        digest itself (``archive.mapped.Verifier``)."""
        return None

    def hashed_here(self, digest: Digest) -> bool:
        """Whether ``digest`` was computed from the stored bytes themselves when this source was
        opened, in this run (so a cache hit need not hash them again). False by default."""
        return False

    def vouches_for(self, desc: Descriptor) -> bool:
        """Whether the blob's digest vouches for its content: true when the digest came from
        somewhere other than the bytes themselves (a registry, a manifest, a blob's file name).
        A digest computed here by hashing the bytes proves nothing about them; a copy then
        checks that the layer decompresses to its diff_id."""
        return True

    def read_blob(self, desc: Descriptor, limit: int = media.MAX_METADATA_BYTES) -> bytes:
        if desc.size > limit:
            from imagewise.errors import TooLarge

            raise TooLarge(f"blob {desc.digest} is {desc.size} bytes; limit {limit}")
        with self.open_blob(desc) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            from imagewise.errors import TooLarge

            raise TooLarge(f"blob {desc.digest} is over {limit} bytes")
        desc.digest.verify(data, f"blob {desc.digest}")
        return data

    def image(self, platform: Platform | None = None) -> Image:
        """Resolve the reference to one image, choosing from an index by platform."""
        top = self.top()
        index: Index | None = None
        if isinstance(top, Index):
            index = top
            chosen = top.select(platform or Platform.host())
            child = self.fetch_manifest(chosen)
            if isinstance(child, Index):  # nested index (e.g. OCI layout pointing at an index)
                index = child
                child = self.fetch_manifest(child.select(platform or Platform.host()))
                if isinstance(child, Index):
                    raise ImageFormatError("index nested more than two levels deep")
            manifest = child
        else:
            manifest = top
        config = ImageConfig.parse(self.read_blob(manifest.config))
        if index is None and platform is not None:
            check_platform(config, platform)
        history = config.layer_history()
        if config.diff_ids and len(config.diff_ids) != len(manifest.layers):
            raise ImageFormatError(
                f"manifest has {len(manifest.layers)} layers but config lists "
                f"{len(config.diff_ids)} diff_ids"
            )
        layers = tuple(
            Layer(
                source=self,
                descriptor=d,
                diff_id=config.diff_ids[i] if i < len(config.diff_ids) else None,
                index=i,
                created_by=_created_by(history, i),
            )
            for i, d in enumerate(manifest.layers)
        )
        return Image(self.name, manifest, config, layers, self, index)

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_platform(config: ImageConfig, wanted: Platform) -> None:
    """Raise PlatformNotFound when a single-platform image is not ``wanted`` (a config that
    names no platform is taken as matching: there is nothing to compare)."""
    from imagewise.errors import PlatformNotFound

    if config.os and config.architecture and not wanted.matches(config.platform):
        raise PlatformNotFound(str(wanted), [str(config.platform)])


def _created_by(history: list[HistoryEntry | None], i: int) -> str:
    entry = history[i] if i < len(history) else None
    return entry.created_by if entry is not None else ""


class Sink(abc.ABC):
    """Write side of the image protocol. Blobs first, then child manifests, then ``commit``.

    Capabilities a sink may have are declared here with the answer of a sink that lacks them:
    ``accepts_index`` (False: a multi-platform source is narrowed to one platform first),
    ``oci_media_types`` (True: Docker manifests are converted to OCI ones on the way in) and
    cross-repository mounting (``mount_from`` names where blobs can be mounted from;
    ``mount_blob`` mounts one)."""

    name: str = ""
    #: whether the sink can store an image index (a docker-archive cannot)
    accepts_index: bool = True
    #: whether the sink stores OCI media types only (an OCI layout: Docker manifests converted)
    oci_media_types: bool = False

    @abc.abstractmethod
    def has_blob(self, desc: Descriptor) -> bool:
        """True when the blob is already present (and need not be sent)."""

    @abc.abstractmethod
    def put_blob(self, desc: Descriptor, stream: IO[bytes]) -> None:
        """Store a blob read from ``stream``; the sink verifies the digest."""

    @abc.abstractmethod
    def put_manifest(self, manifest: Manifest | Index, *, top: bool) -> None:
        """Store a manifest's exact bytes. ``top`` marks the one the destination reference names."""

    def mount_from(self, source: Source) -> str | None:
        """The repository of ``source`` this sink can mount blobs from instead of receiving
        them (both in one registry), or None: every blob is sent."""
        return None

    def mount_blob(self, desc: Descriptor, from_repository: str) -> bool:
        """Mount one blob from ``from_repository``; False means "send it with put_blob"."""
        return False

    def commit(self) -> None:
        """Make the write visible (e.g. write index.json or close an archive)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
