"""OCI image layout directories (``oci:DIR[:TAG]``): read and write.

A layout is ``oci-layout`` + ``index.json`` + ``blobs/<alg>/<hex>``. Which image a reference
names: with ``:TAG`` the ``index.json`` entry whose ``org.opencontainers.image.ref.name``
annotation is TAG; with ``:@N`` the N-th entry; without either the only entry, or, when there
are several, ``index.json`` itself as an index (the platform then picks the image).

The sink writes blobs atomically (temporary file + rename, digest and size checked before the
rename) and updates ``index.json`` last, replacing an entry carrying the same tag.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from typing import IO, Any

from imagewise.archive.region import Region
from imagewise.errors import DigestMismatch, ImageFormatError, NotAnImage
from imagewise.fileio import atomic_write, fill
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    expect,
    load_json,
    optional,
    parse_manifest,
    string_map,
)
from imagewise.sources.base import Sink, Source
from imagewise.sources.blobio import CHUNK, DirView, TarIndex, VerifyingReader, hash_stream
from imagewise.streams import verified_digest

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
LAYOUT_DOC = b'{"imageLayoutVersion":"1.0.0"}'


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class OCIStoreSource(Source):
    """An OCI layout read through a view: a directory or the members of an archive."""

    def __init__(
        self, view: DirView | TarIndex, label: str, tag: str | None = None, index: int | None = None
    ) -> None:
        self._view = view
        self._label = label
        self._tag = tag
        self._index = index
        self._top: Manifest | Index | None = None
        self.index_json: Index = self._read_index()

    def _read_index(self) -> Index:
        v = self._view
        if not v.has("index.json"):
            if v.has("manifest.json"):
                raise NotAnImage(
                    f"{self._label} is a docker-archive, not an OCI layout "
                    f"(use docker-archive:{self._label})"
                )
            raise NotAnImage(f"{self._label} is not an OCI image layout: no index.json")
        if v.has(LAYOUT_FILE):
            doc = load_json(v.read(LAYOUT_FILE, 4096), f"{self._label}: oci-layout")
            version = optional(doc, "imageLayoutVersion", str, f"{self._label}: oci-layout:") or ""
            if not version.startswith("1."):
                raise ImageFormatError(f"{self._label}: unsupported layout version {version!r}")
        raw = v.read("index.json", media.MAX_METADATA_BYTES)
        top = parse_manifest(raw, media.OCI_INDEX)
        if not isinstance(top, Index):
            raise ImageFormatError(f"{self._label}: index.json is not an image index")
        return top

    def top(self) -> Manifest | Index:
        if self._top is None:
            self._top = self._resolve_top()
        return self._top

    def _resolve_top(self) -> Manifest | Index:
        entries = self.index_json.manifests
        if self._tag is not None:
            hits = [d for d in entries if d.annotations.get(REF_NAME) == self._tag]
            if not hits:
                names = sorted(
                    {d.annotations[REF_NAME] for d in entries if REF_NAME in d.annotations}
                )
                raise ImageFormatError(
                    f"{self._label}: no image tagged {self._tag!r}; "
                    f"tags: {', '.join(names) or 'none'}"
                )
            if len(hits) > 1:
                # several platforms under one tag: present them as an index
                return self._synthetic_index(hits)
            return self.fetch_manifest(hits[0])
        if self._index is not None:
            if self._index >= len(entries):
                raise ImageFormatError(
                    f"{self._label}: no image @{self._index}; the layout has {len(entries)}"
                )
            return self.fetch_manifest(entries[self._index])
        if not entries:
            raise ImageFormatError(f"{self._label}: index.json lists no images")
        if len(entries) == 1:
            return self.fetch_manifest(entries[0])
        ref_names = {d.annotations.get(REF_NAME) for d in entries}
        if len(ref_names) > 1:  # several images, not several platforms of one: the user must choose
            tags = sorted(n for n in ref_names if n)
            raise ImageFormatError(
                f"{self._label} holds {len(entries)} images; pick one with :TAG or :@N "
                f"(tags: {', '.join(tags) or 'none'})"
            )
        return self.index_json

    def _synthetic_index(self, descs: list[Descriptor]) -> Index:
        doc = {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [d.to_json() for d in descs],
        }
        return Index(media.OCI_INDEX, tuple(descs), json.dumps(doc).encode())

    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        raw = self._read_blob_bytes(desc)
        return parse_manifest(raw, desc.media_type)

    def _read_blob_bytes(self, desc: Descriptor) -> bytes:
        if desc.size > media.MAX_METADATA_BYTES:
            from imagewise.errors import TooLarge

            raise TooLarge(
                f"{self._label}: manifest {desc.digest} is {desc.size} bytes; "
                "refusing documents over 4 MiB"
            )
        name = blob_path(desc.digest)
        if not self._view.has(name):
            raise ImageFormatError(f"{self._label}: blob {desc.digest} is missing")
        raw = self._view.read(name, media.MAX_METADATA_BYTES)
        desc.digest.verify(raw, f"{self._label}: {desc.digest}")
        return raw

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        name = blob_path(desc.digest)
        if not self._view.has(name):
            raise ImageFormatError(f"{self._label}: blob {desc.digest} is missing")
        raw = self._view.open(name)
        where = f"{self._label}: blob {desc.digest}"
        return VerifyingReader(raw, desc.digest, desc.size, where)  # type: ignore[return-value]

    def blob_region(self, desc: Descriptor) -> Region | None:
        name = blob_path(desc.digest)
        return self._view.region(name) if self._view.has(name) else None

    def has_blob(self, digest: Digest) -> bool:
        return self._view.has(blob_path(digest))

    def close(self) -> None:
        self._view.close()


class OCILayoutSource(OCIStoreSource):
    def __init__(self, path: str, tag: str | None = None, index: int | None = None) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", path)
        if not os.path.isdir(path):
            raise NotAnImage(
                f"{path} is a file, not an OCI layout directory "
                f"(use oci-archive:{path} or docker-archive:{path})"
            )
        super().__init__(DirView(path), path, tag, index)
        self.name = f"oci:{path}" + (f":{tag}" if tag else "")


def write_blob(final: str, stream: IO[bytes], desc: Descriptor) -> int:
    """Copy ``stream`` to ``final`` atomically; verify digest and size before it appears."""
    trusted = verified_digest(stream) == desc.digest  # e.g. a VerifyingReader
    h = None if trusted else desc.digest.hasher()
    n = 0
    view = memoryview(bytearray(CHUNK))  # one buffer for the whole blob: no new memory per piece
    with atomic_write(final) as out:
        while filled := fill(stream, view):
            piece = view[:filled]
            if h is not None:
                h.update(piece)
            out.write(piece)
            n += filled
            if filled < CHUNK:  # the end (a verifying stream has checked the digest)
                break
        if h is not None and h.hexdigest() != desc.digest.hex:
            raise DigestMismatch(
                str(desc.digest), f"{desc.digest.algorithm}:{h.hexdigest()}", f"writing {final}"
            )
        if desc.size >= 0 and n != desc.size:
            raise DigestMismatch(
                str(desc.digest), f"{n} bytes instead of {desc.size}", f"writing {final}"
            )
    return n


class BlobDirSink(Sink):
    """A sink whose blobs are files under a directory (``_blob_file``), written atomically."""

    #: what it writes is an OCI image layout: copy converts Docker manifests for it
    oci_media_types = True

    def _blob_file(self, digest: Digest) -> str:
        raise NotImplementedError

    def has_blob(self, desc: Descriptor) -> bool:
        """True when the blob file is there with the right size *and* digest: a file damaged
        in place is written again rather than kept."""
        path = self._blob_file(desc.digest)
        try:
            if os.path.getsize(path) != desc.size:
                return False
            with open(path, "rb") as f:
                return hash_stream(f, desc.digest.algorithm)[0] == desc.digest
        except OSError:
            return False

    def put_blob(self, desc: Descriptor, stream: IO[bytes]) -> None:
        final = self._blob_file(desc.digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        write_blob(final, stream, desc)


def _flock(fd: int, mode: str, wait: bool = True) -> bool:
    """Take (or convert to) a shared ``"sh"`` or exclusive ``"ex"`` lock on ``fd``; without
    ``wait``, False when another process holds a conflicting one."""
    import fcntl

    op = fcntl.LOCK_SH if mode == "sh" else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, op if wait else op | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class OCILayoutSink(BlobDirSink):
    """Writes an OCI layout directory (created when missing; existing blobs are kept).

    Every writer holds a shared lock on ``blobs/`` while it works, and an exclusive lock on the
    layout directory while it updates ``index.json`` (so concurrent copies into one layout keep
    each other's entries). A writer that finds no other at work (it can lock ``blobs/``
    exclusively) removes the ``.tmp-*`` files a killed copy left. A copy
    that fails removes what it created (the directory, or ``oci-layout`` and ``blobs/`` in an
    existing one), so no skeleton layout is left behind. ``shared=False``: a private staging
    directory (an archive sink's), with no locking.
    """

    def __init__(self, path: str, tag: str | None = None, *, shared: bool = True) -> None:
        self.path = path
        self.tag = tag
        self.name = f"oci:{path}" + (f":{tag}" if tag else "")
        self._top: Manifest | Index | None = None
        self._committed = False
        self._created: list[str] = []  # what this sink made, removed again if it never commits
        self._lock: int | None = None
        if os.path.exists(path) and not os.path.isdir(path):
            raise ImageFormatError(f"{path} exists and is not a directory")
        for name in ("", "blobs"):
            d = os.path.join(path, name) if name else path
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                self._created.append(d)
        if shared:  # writers share a lock on blobs/ (index.json updates lock the layout itself)
            self._lock = os.open(os.path.join(path, "blobs"), os.O_RDONLY)
            if _flock(self._lock, "ex", wait=False):  # nobody else is writing here
                self._remove_temporaries()
            _flock(self._lock, "sh")
        lay = os.path.join(path, LAYOUT_FILE)
        if not os.path.exists(lay):
            with atomic_write(lay) as f:
                f.write(LAYOUT_DOC)
            self._created.append(lay)

    def _remove_temporaries(self) -> None:
        from imagewise.fileio import TMP_PREFIX

        for d, _dirs, files in os.walk(self.path):
            for f in files:
                if f.startswith(TMP_PREFIX):
                    with suppress(OSError):
                        os.unlink(os.path.join(d, f))

    def _blob_file(self, digest: Digest) -> str:
        return os.path.join(self.path, blob_path(digest))

    def put_manifest(self, manifest: Manifest | Index, *, top: bool) -> None:
        import io

        desc = Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        if not self.has_blob(desc):
            self.put_blob(desc, io.BytesIO(manifest.raw))
        if top:
            self._top = manifest

    def _update_index(self) -> None:
        if self._top is None:
            raise ImageFormatError(f"{self.name}: nothing to commit (no top manifest written)")
        m = self._top
        annotations = {REF_NAME: self.tag} if self.tag else {}
        desc = Descriptor(m.media_type, m.digest, len(m.raw), annotations, self._platform_of(m))
        entries: list[dict[str, Any]] = []
        index_file = os.path.join(self.path, "index.json")
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}
        if os.path.exists(index_file):
            with open(index_file, "rb") as f:
                doc = load_json(f.read(), f"{self.path}/index.json")
        where = f"{self.path}/index.json:"
        for i, e in enumerate(optional(doc, "manifests", list, where) or ()):
            expect(e, dict, f"{where} manifests[{i}]")
            name = string_map(e.get("annotations"), f"{where} manifests[{i}].annotations").get(
                REF_NAME
            )
            if self.tag and name == self.tag:
                continue  # the tag moves to the new image
            if not self.tag and not name and e.get("digest") == str(m.digest):
                continue  # the same untagged image again
            entries.append(e)
        entries.append(desc.to_json())
        doc["manifests"] = entries
        doc.setdefault("schemaVersion", 2)
        doc.setdefault("mediaType", media.OCI_INDEX)
        with atomic_write(index_file) as f:
            f.write(json.dumps(doc, separators=(",", ":")).encode())

    def commit(self) -> None:
        """Update index.json under an exclusive lock on the layout directory, so concurrent
        copies into one layout do not lose each other's entries."""
        if self._lock is None:  # a private staging directory: nobody else writes here
            self._update_index()
        else:
            dfd = os.open(self.path, os.O_RDONLY)
            try:
                _flock(dfd, "ex")
                self._update_index()
            finally:
                os.close(dfd)  # closing releases the lock
        self._committed = True

    def close(self) -> None:
        """Release the lock; after a failed copy, first remove what this sink created (unless
        another writer is at work in the same layout)."""
        if (
            not self._committed
            and self._created
            and (self._lock is None or _flock(self._lock, "ex", wait=False))
        ):
            import shutil

            for p in reversed(self._created):
                if os.path.isdir(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with suppress(OSError):
                        os.unlink(p)
            self._created = []
        if self._lock is not None:
            os.close(self._lock)  # closing releases the lock
            self._lock = None

    def _platform_of(self, m: Manifest | Index) -> Platform | None:
        if not isinstance(m, Manifest):
            return None
        try:
            with open(self._blob_file(m.config.digest), "rb") as f:
                cfg = ImageConfig.parse(f.read(media.MAX_METADATA_BYTES + 1))
        except (OSError, ImageFormatError):
            return None
        return cfg.platform if cfg.os and cfg.architecture else None
