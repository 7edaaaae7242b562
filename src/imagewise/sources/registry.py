"""Registry source and sink: the image protocol over the OCI distribution API."""

from __future__ import annotations

import threading
from typing import IO, TYPE_CHECKING

from imagewise.errors import DigestMismatch
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, Index, Manifest, parse_manifest
from imagewise.reference import ImageReference
from imagewise.registry.client import RegistryClient
from imagewise.sources.base import Sink, Source

if TYPE_CHECKING:
    from imagewise.registry.transfer import Transfer


def client_for(ref: ImageReference, insecure: bool = False) -> RegistryClient:
    """The shared client of the reference's registry (one pooled session per registry)."""
    return RegistryClient.get(ref.host, ref.api_base(False), insecure=insecure)


class RegistrySource(Source):
    """Reads an image from a registry; manifests by tag or digest, blobs streamed and verified."""

    def __init__(
        self,
        ref: ImageReference,
        *,
        insecure: bool = False,
        client: RegistryClient | None = None,
        transfer: Transfer | None = None,
    ) -> None:
        self.ref = ref
        self.name = f"docker://{ref}"
        # ``transfer``: stall time, overall deadline and retry reporter of this operation
        self.client = (client or client_for(ref, insecure)).using(transfer)
        self._top: Manifest | Index | None = None

    def __repr__(self) -> str:
        return f"RegistrySource({str(self.ref)!r})"

    def top(self) -> Manifest | Index:
        if self._top is None:
            fetched = self.client.get_manifest(self.ref.repository, self.ref.identifier)
            self._top = parse_manifest(fetched.raw, fetched.media_type)
        return self._top

    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        fetched = self.client.get_manifest(self.ref.repository, str(desc.digest))
        return parse_manifest(fetched.raw, fetched.media_type or desc.media_type)

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return self.client.open_blob(self.ref.repository, desc)  # type: ignore[return-value]

    def digest(self) -> Digest:
        """The digest of the top manifest (HEAD, no body transferred)."""
        if self.ref.digest is not None:
            return self.ref.digest
        return self.client.head_manifest(self.ref.repository, self.ref.identifier).digest


class RegistrySink(Sink):
    """Writes an image to a registry: blobs (skipping present ones), child manifests, then the top."""

    def __init__(
        self,
        ref: ImageReference,
        *,
        insecure: bool = False,
        client: RegistryClient | None = None,
        transfer: Transfer | None = None,
    ) -> None:
        self.ref = ref
        self.name = f"docker://{ref}"
        # ``transfer``: stall time, overall deadline and retry reporter of this operation
        self.client = (client or client_for(ref, insecure)).using(transfer)
        self._pending: dict[Digest, str] = {}  # upload sessions opened by a refused mount
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistrySink({str(self.ref)!r})"

    @property
    def repository(self) -> str:
        return self.ref.repository

    def has_blob(self, desc: Descriptor) -> bool:
        """Whether the repository has the blob; a registry that cannot say (a server error
        that outlasted the retries: a distribution registry killed mid-write answers 500 for
        a blob whose link it left empty) is sent the blob again, which rewrites its entry; a
        registry that is really broken then fails the upload with its own error."""
        from imagewise.errors import RegistryError

        try:
            return self.client.has_blob(self.repository, desc.digest)
        except RegistryError as e:
            if e.status is not None and 500 <= e.status < 600:
                return False
            raise

    def put_blob(self, desc: Descriptor, stream: IO[bytes]) -> None:
        with self._lock:
            location = self._pending.pop(desc.digest, None)
        self.client.upload_blob(self.repository, desc, stream, location)

    def mount_from(self, source: Source) -> str | None:
        """A registry source's repository in this sink's registry, other than this one."""
        if not isinstance(source, RegistrySource):
            return None
        src = source.ref
        if src.registry != self.ref.registry or src.repository == self.repository:
            return None
        return src.repository

    def mount_blob(self, desc: Descriptor, from_repository: str) -> bool:
        """Cross-repository mount on the same registry; False means "upload it instead"."""
        if from_repository == self.repository:
            return self.has_blob(desc)
        location = self.client.mount_blob(self.repository, desc.digest, from_repository)
        if location is None:
            return True
        with self._lock:
            self._pending[desc.digest] = location  # put_blob reuses the session the POST opened
        return False

    def put_manifest(self, manifest: Manifest | Index, *, top: bool) -> None:
        digest = manifest.digest
        if not top:
            self.client.put_manifest(
                self.repository, str(digest), manifest.raw, manifest.media_type
            )
            return
        if self.ref.digest is not None and self.ref.digest != digest:
            raise DigestMismatch(str(self.ref.digest), str(digest), f"destination {self.ref}")
        ref = self.ref.tag or (str(digest) if self.ref.digest is not None else "latest")
        self.client.put_manifest(self.repository, ref, manifest.raw, manifest.media_type)
