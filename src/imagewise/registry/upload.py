"""Blob uploads: monolithic (POST, then PUT ?digest= with the body), chunked (PATCH with
Content-Range per chunk, then PUT ?digest=) and cross-repository mount (POST ?mount=&from=).

The bytes are hashed while they are sent; a blob whose content does not match its descriptor
raises :class:`~imagewise.errors.DigestMismatch` (the registry refuses it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

import httpx

from imagewise.errors import AuthError, DigestMismatch, ImageFormatError, RegistryError
from imagewise.oci.digest import Digest, DigestingReader
from imagewise.oci.model import Descriptor
from imagewise.registry.retry import RETRY_STATUSES
from imagewise.registry.session import ensure_ok

if TYPE_CHECKING:
    from imagewise.registry.client import RegistryClient

_OCTET = "application/octet-stream"
_SEND_CHUNK = 1024 * 1024


def _location(client: RegistryClient, resp: httpx.Response, what: str) -> str:
    loc = resp.headers.get("Location")
    if not loc:
        raise RegistryError(f"{what}: registry started an upload without a Location",
                            resp.status_code)
    return str(httpx.URL(client.session.base_url + "/").join(loc))


def start(client: RegistryClient, repo: str, what: str) -> str:
    from imagewise.registry.client import push_scope

    resp = client.session.send("POST", f"/v2/{repo}/blobs/uploads/", scopes=[push_scope(repo)])
    ensure_ok(resp, (202,), what)
    return _location(client, resp, what)


def mount(client: RegistryClient, repo: str, digest: Digest, from_repo: str) -> str | None:
    """None when the registry mounted the blob (201); else the upload it opened instead (202)."""
    from imagewise.registry.client import pull_scope, push_scope

    what = f"mount of {digest} from {from_repo} into {client.host}/{repo}"
    resp = client.session.send("POST", f"/v2/{repo}/blobs/uploads/",
                               params={"mount": str(digest), "from": from_repo},
                               scopes=[push_scope(repo), pull_scope(from_repo)])
    if resp.status_code == 201:
        return None
    ensure_ok(resp, (202,), what)
    return _location(client, resp, what)


def _with_digest(location: str, digest: Digest) -> httpx.URL:
    return httpx.URL(location).copy_merge_params({"digest": str(digest)})


def _body(reader: DigestingReader | _Counted) -> Iterator[bytes]:
    while chunk := reader.read(_SEND_CHUNK):
        yield chunk


def _read_full(reader: DigestingReader | _Counted, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = reader.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def upload(client: RegistryClient, repo: str, desc: Descriptor, stream: IO[bytes],
           location: str | None = None) -> None:
    """Upload, starting over (new session, stream rewound) after a transient failure when the
    stream can seek; a digest mismatch or an auth error is never retried."""
    retry = client.session.retry
    start_pos = _tell(stream)
    attempt = 0
    while True:
        try:
            _upload_once(client, repo, desc, stream, location)
            return
        except RegistryError as e:
            transient = e.status is None or e.status in RETRY_STATUSES
            if start_pos is None or not transient or isinstance(e, AuthError) \
                    or attempt + 1 >= retry.attempts:
                raise
        stream.seek(start_pos)
        location = None
        retry.sleep(attempt)
        attempt += 1


def _tell(stream: IO[bytes]) -> int | None:
    try:
        return stream.tell() if stream.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _upload_once(client: RegistryClient, repo: str, desc: Descriptor, stream: IO[bytes],
                 location: str | None) -> None:
    from imagewise.registry.client import push_scope

    what = f"upload of blob {desc.digest} to {client.host}/{repo}"
    location = location or start(client, repo, what)
    reader: DigestingReader | _Counted
    if getattr(stream, "verifies", None) == desc.digest:
        reader = _Counted(stream)  # the source raises on a mismatch at EOF: don't hash twice
    else:
        reader = DigestingReader(stream, desc.digest, f"blob {desc.digest}")
    scopes = [push_scope(repo)]
    if desc.size > client.chunk_threshold:
        while True:
            chunk = _read_full(reader, client.chunk_size)
            if not chunk:
                break
            start_at = reader.count - len(chunk)
            resp = client.session.send(
                "PATCH", location, scopes=scopes, content=chunk,
                headers={"Content-Type": _OCTET, "Content-Length": str(len(chunk)),
                         "Content-Range": f"{start_at}-{reader.count - 1}"})
            ensure_ok(resp, (202,), what)
            location = _location(client, resp, what)
        _check(reader, desc)
        resp = client.session.send("PUT", _with_digest(location, desc.digest).__str__(),
                                   scopes=scopes, headers={"Content-Length": "0"})
    else:
        try:
            resp = client.session.send(
                "PUT", str(_with_digest(location, desc.digest)), scopes=scopes,
                content=_body(reader), replayable=False,
                headers={"Content-Type": _OCTET, "Content-Length": str(desc.size)})
        except RegistryError:
            _check(reader, desc)  # a short or long stream surfaces as a broken request
            raise
        _check(reader, desc)
    ensure_ok(resp, (201,), what)


class _Counted:
    """Counts bytes read from a stream that verifies its own digest (``stream.verifies``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.count += len(data)
        return data

    def check(self) -> None:
        # make the source reach EOF, where it checks the digest; a longer stream shows in count
        self.count += len(self._raw.read(1))


def _check(reader: DigestingReader | _Counted, desc: Descriptor) -> None:
    reader.check()
    if reader.count != desc.size:
        raise ImageFormatError(f"blob {desc.digest}: descriptor says {desc.size} bytes, "
                               f"stream had {reader.count}")


__all__ = ["DigestMismatch", "mount", "start", "upload"]
