"""Blob uploads: monolithic (POST, then PUT ?digest= with the body), chunked (PATCH with
Content-Range per chunk, then PUT ?digest=) and cross-repository mount (POST ?mount=&from=).

The bytes are hashed while they are sent; a blob whose content does not match its descriptor
raises :class:`~imagewise.errors.DigestMismatch` (the registry refuses it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from imagewise.errors import AuthError, DigestMismatch, ImageFormatError, RegistryError
from imagewise.fileio import fill, readinto
from imagewise.oci.digest import Digest, DigestingReader
from imagewise.oci.model import Descriptor
from imagewise.registry.errors import OutOfTime, Stalled, stall_text, stalled_error
from imagewise.registry.http import Response, join_url, merge_params
from imagewise.registry.retry import RETRY_STATUSES
from imagewise.registry.session import ensure_ok
from imagewise.streams import restarter, verified_digest

if TYPE_CHECKING:
    from imagewise.registry.client import RegistryClient

_OCTET = "application/octet-stream"
_SEND_CHUNK = 1024 * 1024


def _location(client: RegistryClient, resp: Response, what: str) -> str:
    loc = resp.headers.get("Location")
    if not loc:
        raise RegistryError(
            f"{what}: registry started an upload without a Location", resp.status_code
        )
    return join_url(client.session.base_url + "/", loc)


def start(client: RegistryClient, repo: str, what: str) -> str:
    from imagewise.registry.client import push_scope

    resp = client._send("POST", f"/v2/{repo}/blobs/uploads/", what, scopes=[push_scope(repo)])
    ensure_ok(resp, (202,), what)
    return _location(client, resp, what)


def mount(client: RegistryClient, repo: str, digest: Digest, from_repo: str) -> str | None:
    """None when the registry mounted the blob (201); else the upload it opened instead (202)."""
    from imagewise.registry.client import pull_scope, push_scope

    what = f"mount of {digest} from {from_repo} into {client.host}/{repo}"
    resp = client._send(
        "POST",
        f"/v2/{repo}/blobs/uploads/",
        what,
        params={"mount": str(digest), "from": from_repo},
        scopes=[push_scope(repo), pull_scope(from_repo)],
    )
    if resp.status_code == 201:
        return None
    ensure_ok(resp, (202,), what)
    return _location(client, resp, what)


def _with_digest(location: str, digest: Digest) -> str:
    return merge_params(location, {"digest": str(digest)})


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


class _Attempt:
    """What one try got to: whether its bytes were being sent when it failed, and whether the
    source stream ran out (then a wrong length is the source's fault, not the registry's)."""

    __slots__ = ("ended", "sending")

    def __init__(self) -> None:
        self.sending = False
        self.ended = False


def upload(
    client: RegistryClient,
    repo: str,
    desc: Descriptor,
    stream: IO[bytes],
    location: str | None = None,
) -> None:
    """Upload; a try that fails while its bytes are being sent or committed (HTTP 5xx/429, a
    dropped connection, a stall) starts over in a new upload session, with the stream rewound
    (``seek``) or reopened (its ``restart()``, e.g. a copy's source blob opened again). A digest
    mismatch, an auth error, a refused upload session or the overall timeout is never retried.
    Waits and retries are told to ``client.transfer``'s reporter."""
    from imagewise.registry.transfer import STALL_ATTEMPTS, Transfer

    policy = client.session.retry
    t = client.transfer if client.transfer is not None else Transfer()
    what = f"upload of blob {desc.digest} to {client.host}/{repo}"
    start_pos = _tell(stream)
    restart = restarter(stream)
    attempt = 0
    stalls = 0
    while True:
        state = _Attempt()
        try:
            _upload_once(client, repo, desc, stream, location, what, state)
            return
        except RegistryError as e:
            transient = e.status is None or e.status in RETRY_STATUSES
            stalled = isinstance(e, Stalled)
            stalls += stalled
            can_restart = start_pos is not None or restart is not None
            if (
                not state.sending
                or not transient
                or not can_restart
                or isinstance(e, (AuthError, OutOfTime))
            ):
                raise
            if stalled and stalls >= STALL_ATTEMPTS:
                raise stalled_error(client.host, what, t.stall, stalls) from e
            if attempt + 1 >= policy.attempts:
                raise type(e)(f"{e} (gave up after {attempt + 1} tries)", e.status, e.code) from e
            if stalled:
                why, nth, tries = stall_text(client.host, what, t.stall), stalls + 1, STALL_ATTEMPTS
            else:
                why, nth, tries = str(e), attempt + 2, policy.attempts
            t.wait(policy.delay(attempt), why, what, nth, tries, "starting the upload again")
        if start_pos is not None:
            stream.seek(start_pos)
        else:
            restart()  # type: ignore[misc]
        location = None
        attempt += 1


def _tell(stream: IO[bytes]) -> int | None:
    try:
        return stream.tell() if stream.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _upload_once(
    client: RegistryClient,
    repo: str,
    desc: Descriptor,
    stream: IO[bytes],
    location: str | None,
    what: str,
    state: _Attempt,
) -> None:
    from imagewise.registry.client import push_scope

    location = location or start(client, repo, what)
    reader: DigestingReader | _Counted
    if verified_digest(stream) == desc.digest:
        reader = _Counted(stream)  # the source raises on a mismatch at EOF: don't hash twice
    else:
        reader = DigestingReader(stream, desc.digest, f"blob {desc.digest}")
    scopes = [push_scope(repo)]
    t = client.transfer
    timed = t is not None and t.timeout is not None

    def body() -> Iterator[memoryview]:
        # one buffer for the whole blob: the HTTP client sends each piece before it asks for
        # the next, and a body that is not replayable is never sent twice
        view = memoryview(bytearray(_SEND_CHUNK))
        while True:
            try:
                n = fill(reader, view)
            except OutOfTime as e:  # the time ran out reading the source: this upload is late
                raise t.out_of_time(what) from e  # type: ignore[union-attr]
            if not n:
                break
            if timed:
                t.check(what)  # type: ignore[union-attr]
            yield view[:n]
            if n < _SEND_CHUNK:  # the end of the source
                break
        state.ended = True

    state.sending = True
    if desc.size > client.chunk_threshold:
        while True:
            chunk = _read_full(reader, client.chunk_size)
            if not chunk:
                break
            start_at = reader.count - len(chunk)
            # not replayable: a chunk the registry may have half taken is not sent again to
            # the same session; the whole upload starts over in a new one instead
            resp = client._send(
                "PATCH",
                location,
                what,
                scopes=scopes,
                content=chunk,
                replayable=False,
                headers={
                    "Content-Type": _OCTET,
                    "Content-Length": str(len(chunk)),
                    "Content-Range": f"{start_at}-{reader.count - 1}",
                },
            )
            ensure_ok(resp, (202,), what)
            location = _location(client, resp, what)
        _check(reader, desc)
        resp = client._send(
            "PUT",
            str(_with_digest(location, desc.digest)),
            what,
            scopes=scopes,
            headers={"Content-Length": "0"},
            replayable=False,
        )
    else:
        try:
            resp = client._send(
                "PUT",
                str(_with_digest(location, desc.digest)),
                what,
                scopes=scopes,
                content=body(),
                replayable=False,
                headers={"Content-Type": _OCTET, "Content-Length": str(desc.size)},
            )
        except Exception:
            # a stream shorter or longer than its descriptor breaks the request (the HTTP
            # client refuses a body off its Content-Length): blame the source then; a registry that
            # failed while the bytes were still flowing is named in the error raised here
            if state.ended or reader.count > desc.size:
                try:
                    _check(reader, desc)
                except OutOfTime:
                    pass  # the error of the request says more
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

    def readinto(self, b: memoryview) -> int:
        n = readinto(self._raw, b)
        self.count += n
        return n

    def check(self) -> None:
        # make the source reach EOF, where it checks the digest; a longer stream shows in count
        self.count += len(self._raw.read(1))


def _check(reader: DigestingReader | _Counted, desc: Descriptor) -> None:
    reader.check()
    if reader.count != desc.size:
        raise ImageFormatError(
            f"blob {desc.digest}: descriptor says {desc.size} bytes, stream had {reader.count}"
        )


__all__ = ["DigestMismatch", "mount", "start", "upload"]
