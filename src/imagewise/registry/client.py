"""OCI distribution API v2 client: manifests, blobs, uploads, tags, catalog, delete.

``RegistryClient.get(host, base_url)`` returns the shared client of a registry (one pooled HTTP
session per registry and TLS mode), safe to use from several threads::

    client = RegistryClient.get("127.0.0.1:5000", "http://127.0.0.1:5000")
    fetched = client.get_manifest("app", "v1")          # bytes, media type, digest
    with client.open_blob("app", fetched_layer_desc) as f: ...   # verified at EOF
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any, ClassVar

from imagewise.errors import DigestMismatch, ImageFormatError, RegistryError, TooLarge
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.record import Record
from imagewise.registry.blobstream import BlobReader, open_blob_stream
from imagewise.registry.credentials import Credentials
from imagewise.registry.http import HTTPError, Response
from imagewise.registry.retry import DEFAULT, RetryPolicy
from imagewise.registry.session import Session, ensure_ok, is_loopback
from imagewise.registry.transfer import Transfer

#: a manifest PUT answered DIGEST_INVALID for bytes that match their digest is tried this often
MANIFEST_PUT_TRIES = 5


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


CATALOG_SCOPE = "registry:catalog:*"


class FetchedManifest(Record):
    """Manifest bytes exactly as served, with the media type and the digest of those bytes."""

    __slots__ = ("raw", "media_type", "digest")  # noqa: RUF023
    _unshown = ("raw",)

    def __init__(self, raw: bytes, media_type: str, digest: Digest) -> None:
        self.raw = raw
        self.media_type = media_type
        self.digest = digest


def default_base_url(host: str, insecure: bool = False) -> str:
    """``http://`` for loopback hosts, else ``https://`` (Docker Hub's API host for docker.io)."""
    if host in ("docker.io", "index.docker.io"):
        return "https://registry-1.docker.io"
    return ("http://" if is_loopback(host) else "https://") + host


class RegistryClient:
    """API calls against one registry. Repositories are names like ``library/alpine``."""

    _shared: ClassVar[dict[tuple[str, str, bool], RegistryClient]] = {}
    _shared_lock = threading.Lock()

    #: blobs larger than this are uploaded in chunks of ``chunk_size`` (PATCH + Content-Range)
    chunk_threshold = 256 * 1024 * 1024
    chunk_size = 64 * 1024 * 1024

    def __init__(
        self,
        host: str,
        base_url: str | None = None,
        *,
        insecure: bool = False,
        retry: RetryPolicy = DEFAULT,
        credentials: Credentials | None = None,
        anonymous: bool = False,
    ) -> None:
        self.host = host
        self.session = Session(
            host,
            base_url or default_base_url(host, insecure),
            insecure=insecure,
            retry=retry,
            credentials=credentials,
            anonymous=anonymous,
        )
        #: stall time, deadline and reporter of this client's calls (None: the defaults)
        self.transfer: Transfer | None = None

    @classmethod
    def get(
        cls, host: str, base_url: str | None = None, *, insecure: bool = False
    ) -> RegistryClient:
        """The shared client for a registry (credentials looked up from the user's files)."""
        base = base_url or default_base_url(host, insecure)
        key = (host, base, insecure)
        with cls._shared_lock:
            client = cls._shared.get(key)
            if client is None:
                client = cls._shared[key] = cls(host, base, insecure=insecure)
            return client

    @classmethod
    def clear_shared(cls) -> None:
        """Close and forget the shared clients (they cache credentials and tokens)."""
        with cls._shared_lock:
            clients, cls._shared = list(cls._shared.values()), {}
        for c in clients:
            c.close()

    @classmethod
    def _forget_shared_in_child(cls) -> None:
        """A forked worker must not share the parent's pooled connections: it starts its own."""
        cls._shared, cls._shared_lock = {}, threading.Lock()

    def __repr__(self) -> str:
        return f"RegistryClient(host={self.host!r})"

    def using(self, transfer: Transfer | None) -> RegistryClient:
        """This client (same session, connections and tokens) with the calls of one operation
        bound to ``transfer``: its stall time, overall deadline and reporter."""
        if transfer is None:
            return self
        view = object.__new__(RegistryClient)
        view.__dict__.update(self.__dict__)
        view.transfer = transfer
        return view

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> Response:
        return self.session.send(method, url, what=what, transfer=self.transfer, **kwargs)

    def close(self) -> None:
        self.session.close()

    def _what(self, repo: str, ref: str = "") -> str:
        sep = "@" if ref.startswith(("sha256:", "sha512:")) else ":"
        return f"{self.host}/{repo}" + (f"{sep}{ref}" if ref else "")

    # -- manifests ------------------------------------------------------------------------------

    def get_manifest(
        self, repo: str, ref: str, accept: str = media.MANIFEST_ACCEPT
    ) -> FetchedManifest:
        """GET a manifest by tag or digest; refuses over 4 MiB; verifies a digest reference."""
        what = self._what(repo, ref)
        stalls = 0
        while True:
            resp = self._send(
                "GET",
                f"/v2/{repo}/manifests/{ref}",
                f"manifest {what}",
                scopes=[pull_scope(repo)],
                headers={"Accept": accept},
                stream=True,
                follow_redirects=True,
            )
            try:
                chunks = self._manifest_body(resp, what)
                break
            except HTTPError as e:  # the body broke off or stalled: a stall is retried
                from imagewise.registry.errors import is_stall, stall_text, transport_error
                from imagewise.registry.transfer import STALL_ATTEMPTS

                t = self.transfer if self.transfer is not None else Transfer()
                if t.expired():
                    raise t.out_of_time(f"manifest {what} at registry {self.host}") from e
                stalls += is_stall(e)
                if not is_stall(e) or stalls >= STALL_ATTEMPTS:
                    raise transport_error(
                        self.host, e, f"manifest {what}", t.stall, max(stalls, 1)
                    ) from e
                t.wait(
                    self.session.retry.delay(stalls - 1),
                    stall_text(self.host, f"manifest {what}", t.stall),
                    f"manifest {what}",
                    stalls + 1,
                    STALL_ATTEMPTS,
                )
            finally:
                resp.close()
        raw = b"".join(chunks)
        mt = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if ":" in ref:
            expected = Digest.parse(ref)
            actual = Digest.of(raw, expected.algorithm)
            if actual != expected:
                raise DigestMismatch(str(expected), str(actual), f"manifest {what}")
            return FetchedManifest(raw, mt, expected)
        served = _served_digest(resp)
        if served is not None:  # by tag: the bytes must be the ones the registry says it sent
            actual = Digest.of(raw, served.algorithm)
            if actual != served:
                raise DigestMismatch(
                    str(served),
                    str(actual),
                    f"manifest {what} (the registry's Docker-Content-Digest)",
                )
            return FetchedManifest(raw, mt, served)
        return FetchedManifest(raw, mt, Digest.of(raw))

    @staticmethod
    def _manifest_body(resp: Response, what: str) -> list[bytes]:
        ensure_ok(resp, (200,), what)
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > media.MAX_METADATA_BYTES:
            raise TooLarge(f"manifest {what} is {declared} bytes; refusing documents over 4 MiB")
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_bytes():
            total += len(chunk)
            if total > media.MAX_METADATA_BYTES:
                raise TooLarge(f"manifest {what} is over 4 MiB; refusing it")
            chunks.append(chunk)
        return chunks

    def head_manifest(self, repo: str, ref: str, accept: str = media.MANIFEST_ACCEPT) -> Descriptor:
        """HEAD a manifest: its descriptor (digest from ``Docker-Content-Digest``)."""
        what = self._what(repo, ref)
        resp = self._send(
            "HEAD",
            f"/v2/{repo}/manifests/{ref}",
            f"manifest {what}",
            scopes=[pull_scope(repo)],
            headers={"Accept": accept},
            follow_redirects=True,
        )
        ensure_ok(resp, (200,), what)
        header = resp.headers.get("Docker-Content-Digest")
        if not header:
            # some registries omit the header on HEAD: fall back to hashing the bytes
            fetched = self.get_manifest(repo, ref, accept)
            return Descriptor(fetched.media_type, fetched.digest, len(fetched.raw))
        digest = Digest.parse(header)
        if ":" in ref and digest != Digest.parse(ref):
            raise DigestMismatch(ref, str(digest), f"manifest {what}")
        size = int(resp.headers.get("Content-Length") or 0)
        mt = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return Descriptor(mt, digest, size)

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> Digest:
        """PUT manifest bytes under a tag or digest; returns the digest of the bytes."""
        what = self._what(repo, ref)
        digest = Digest.of(raw)
        if ":" in ref and Digest.parse(ref) != digest:
            raise DigestMismatch(ref, str(digest), f"manifest for {what}")
        for attempt in range(MANIFEST_PUT_TRIES):
            resp = self._send(
                "PUT",
                f"/v2/{repo}/manifests/{ref}",
                f"manifest {what}",
                scopes=[push_scope(repo)],
                headers={"Content-Type": media_type},
                content=raw,
            )
            try:
                ensure_ok(resp, (200, 201, 202), what)
                break
            except RegistryError as e:
                # our bytes match their digest (checked above): DIGEST_INVALID here is the
                # distribution registry reading a blob link that another upload is rewriting
                # in place at this moment; it passes
                if e.code != "DIGEST_INVALID" or attempt + 1 == MANIFEST_PUT_TRIES:
                    raise
                time.sleep(0.05 * (attempt + 1))
        served = resp.headers.get("Docker-Content-Digest")
        if served and Digest.parse(served) != digest:
            raise DigestMismatch(str(digest), served, f"registry stored manifest {what}")
        return digest

    def delete_manifest(self, repo: str, ref: str) -> Digest:
        """DELETE a manifest. A tag is resolved to its digest first (every tag on it goes)."""
        digest = Digest.parse(ref) if ":" in ref else self.head_manifest(repo, ref).digest
        what = self._what(repo, str(digest))
        resp = self._send(
            "DELETE",
            f"/v2/{repo}/manifests/{digest}",
            f"manifest {what}",
            scopes=[f"repository:{repo}:delete"],
        )
        ensure_ok(resp, (200, 202), what)
        return digest

    def referrers(self, repo: str, digest: Digest) -> list[dict[str, Any]] | None:
        """The referrers API (OCI distribution 1.1): the descriptors of the manifests whose
        ``subject`` is ``digest``; None when the registry has no referrers API (404), so the
        caller uses the ``sha256-<hex>`` tag schema instead."""
        from imagewise.oci.model import load_json

        what = self._what(repo, str(digest))
        resp = self._send(
            "GET",
            f"/v2/{repo}/referrers/{digest}",
            f"referrers of {what}",
            scopes=[pull_scope(repo)],
            headers={"Accept": media.OCI_INDEX},
        )
        if resp.status_code == 404:
            resp.read()
            return None
        ensure_ok(resp, (200,), what)
        doc = load_json(resp.read(), f"referrers of {what}")
        found = doc.get("manifests")
        return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []

    # -- blobs ----------------------------------------------------------------------------------

    def has_blob(self, repo: str, digest: Digest) -> bool:
        return self.blob_size(repo, digest) is not None

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """The blob's size (HEAD), or None when the repository does not have it."""
        resp = self._send(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            f"blob {digest} in {self._what(repo)}",
            scopes=[pull_scope(repo)],
            follow_redirects=True,
        )
        if resp.status_code == 404:
            return None
        ensure_ok(resp, (200,), self._what(repo, str(digest)))
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else 0

    def delete_blob(self, repo: str, digest: Digest) -> None:
        """DELETE a blob from a repository (the registry must allow deletes)."""
        what = f"blob {digest} in {self._what(repo)}"
        resp = self._send(
            "DELETE", f"/v2/{repo}/blobs/{digest}", what, scopes=[f"repository:{repo}:delete"]
        )
        ensure_ok(resp, (200, 202), what)

    def open_blob(self, repo: str, desc: Descriptor) -> BlobReader:
        """Stream a blob (following redirects); digest and size verified at EOF."""
        what = f"blob {desc.digest} in {self._what(repo)}"
        path = f"/v2/{repo}/blobs/{desc.digest}"

        def open_at(offset: int) -> Response:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp = self._send(
                "GET",
                path,
                what,
                scopes=[pull_scope(repo)],
                headers=headers,
                stream=True,
                follow_redirects=True,
            )
            ensure_ok(resp, (200, 206) if offset else (200,), what)
            if offset and resp.status_code == 200:  # Range ignored: skip what we already have
                skipped = 0
                chunk = b""
                while skipped < offset and (chunk := resp.read1()):
                    skipped += len(chunk)
                raise_if_short(skipped, offset, what)
                rest = chunk[len(chunk) - (skipped - offset) :] if skipped > offset else b""
                return _Prefixed(resp, rest)  # type: ignore[return-value]
            return resp

        return open_blob_stream(
            open_at,
            self.host,
            self.session.retry.attempts,
            desc.digest,
            desc.size,
            what,
            self.transfer,
        )

    def read_blob(
        self, repo: str, desc: Descriptor, limit: int = media.MAX_METADATA_BYTES
    ) -> bytes:
        if desc.size > limit:
            raise TooLarge(f"blob {desc.digest} is {desc.size} bytes; limit {limit}")
        with self.open_blob(repo, desc) as f:
            return f.read()

    # -- uploads --------------------------------------------------------------------------------

    def upload_blob(
        self, repo: str, desc: Descriptor, stream: IO[bytes], location: str | None = None
    ) -> None:
        """Upload a blob (monolithic, or chunked past ``chunk_threshold``); digest verified."""
        from imagewise.registry.upload import upload

        upload(self, repo, desc, stream, location)

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> str | None:
        """Cross-repository mount. None when mounted (201); else the upload session to use."""
        from imagewise.registry.upload import mount

        return mount(self, repo, digest, from_repo)

    # -- listing --------------------------------------------------------------------------------

    def list_tags(self, repo: str, page_size: int | None = None) -> list[str]:
        """All tags of a repository, following ``Link`` pagination."""
        return self._paginate(
            f"/v2/{repo}/tags/list", "tags", [pull_scope(repo)], self._what(repo), page_size
        )

    def catalog(self, page_size: int | None = None) -> list[str]:
        """All repository names the registry lists (``/v2/_catalog``)."""
        return self._paginate(
            "/v2/_catalog", "repositories", [CATALOG_SCOPE], f"{self.host} catalog", page_size
        )

    def _paginate(
        self, path: str, key: str, scopes: list[str], what: str, page_size: int | None
    ) -> list[str]:
        out: list[str] = []
        url: str | None = path
        params = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        while url is not None:
            resp = self._send("GET", url, what, scopes=scopes, params=params)
            ensure_ok(resp, (200,), what)
            try:
                items = resp.json().get(key) or []
            except (ValueError, AttributeError) as e:
                raise RegistryError(f"{what}: malformed listing from the registry") from e
            out.extend(str(t) for t in items)
            nxt = resp.links.get("next", {}).get("url")
            params = None  # the Link URL carries n= and last=
            if not nxt or nxt in seen:
                break
            seen.add(nxt)
            url = nxt
        return out

    def ping(self) -> None:
        """GET /v2/: raises when the registry is unreachable or refuses the credentials."""
        resp = self._send("GET", "/v2/", f"registry {self.host}", scopes=[])
        ensure_ok(resp, (200,), f"registry {self.host}")


def _served_digest(resp: Response) -> Digest | None:
    """The ``Docker-Content-Digest`` header as a digest (None when absent or unreadable)."""
    header = resp.headers.get("Docker-Content-Digest")
    if not header:
        return None
    try:
        return Digest.parse(header.strip())
    except (ValueError, ImageFormatError):
        return None


def raise_if_short(got: int, want: int, what: str) -> None:
    if got < want:
        raise RegistryError(f"{what}: body shorter than expected on resume")


class _Prefixed:
    """A response whose body starts with ``prefix`` (bytes already read) and goes on with the
    rest of ``resp``'s."""

    def __init__(self, resp: Response, prefix: bytes) -> None:
        self._resp, self._prefix = resp, prefix

    def read1(self, n: int = 1 << 18) -> bytes:
        if not self._prefix:
            return self._resp.read1(n)
        piece, self._prefix = self._prefix[:n], self._prefix[n:]
        return piece

    def readinto(self, buffer: memoryview) -> int:
        if not self._prefix:
            return self._resp.readinto(buffer)
        n = min(len(buffer), len(self._prefix))
        buffer[:n] = self._prefix[:n]
        self._prefix = self._prefix[n:]
        return n

    def close(self) -> None:
        self._resp.close()


os.register_at_fork(after_in_child=RegistryClient._forget_shared_in_child)
