"""Fault handling: digest mismatches (never retried into success), retries honouring
Retry-After, bounded attempts, connection resets, resumed downloads, size limits, error mapping.

The registry-side corruption test uses the real registry; answers a real registry cannot be made
to give (429, a reset mid-body) come from a tiny scripted HTTP server on loopback.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.errors import AuthError, DigestMismatch, NotFound, RegistryError, TooLarge
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.reference import ImageReference
from imagewise.registry.client import RegistryClient
from imagewise.registry.retry import RetryPolicy, parse_retry_after
from imagewise.sources.registry import RegistrySource

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: normal | reset (close without answering) | truncate (half the body) | eof (no length)
    mode: str = "normal"


class Scripted:
    """A loopback HTTP server answering each request with the next scripted Reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(self.rfile.read(length) if length else b"")
                outer.requests.append((self.command, self.path, dict(self.headers)))
                reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                if reply.mode == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.mode == "eof":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if reply.mode == "truncate":
                    self.wfile.write(reply.body[: len(reply.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(reply.body)

            do_GET = do_HEAD = do_PUT = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *a: None  # type: ignore[method-assign]  # resets are on purpose
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def client(self, retry: RetryPolicy = FAST) -> RegistryClient:
        return RegistryClient(self.host, f"http://{self.host}", retry=retry, anonymous=True)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    s = Scripted()
    yield s
    s.stop()


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "size": 2, "digest": str(Digest.of(b"{}"))},
        "layers": [],
    }
).encode()
OK_MANIFEST = Reply(200, MANIFEST, {"Content-Type": media.OCI_MANIFEST})


# -- digest mismatch ------------------------------------------------------------------------------


def test_corrupt_blob_in_registry_storage_raises_digest_mismatch(registry: RegistryServer) -> None:
    repo = unique_repo("corrupt")
    built = push_image(registry, repo, "v1", build_image((4096,), seed=11))
    layer = built.layers[0]
    path = registry.blob_data_path(str(layer.digest))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one flipped byte
    path.write_bytes(bytes(data))
    image = RegistrySource(ImageReference.parse(f"{registry.host}/{repo}:v1")).image()
    with pytest.raises(DigestMismatch) as e, image.layers[0].open_compressed() as f:
        while f.read(1000):
            pass
    assert e.value.expected == str(layer.digest)
    assert e.value.actual == str(Digest.of(bytes(data)))


def test_bad_bytes_are_not_retried_into_success(scripted: Scripted) -> None:
    good = b"the right content" * 50
    desc = Descriptor("application/octet-stream", Digest.of(good), len(good))
    scripted.replies = [Reply(200, b"X" * len(good)), Reply(200, good)]
    with pytest.raises(DigestMismatch), scripted.client().open_blob("r", desc) as f:
        f.read()
    assert len([r for r in scripted.requests if r[0] == "GET"]) == 1


def test_longer_blob_than_descriptor_is_refused(scripted: Scripted) -> None:
    good = b"abc" * 100
    desc = Descriptor("application/octet-stream", Digest.of(good), len(good))
    scripted.replies = [Reply(200, good + b"extra")]
    with pytest.raises(DigestMismatch), scripted.client().open_blob("r", desc) as f:
        f.read()


# -- retries --------------------------------------------------------------------------------------


def test_retry_after_is_honoured(scripted: Scripted) -> None:
    scripted.replies = [
        Reply(
            429,
            b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
            {"Retry-After": "1"},
        ),
        OK_MANIFEST,
    ]
    started = time.monotonic()
    fetched = scripted.client(RetryPolicy(attempts=3, base=0.0, cap=0.0)).get_manifest("r", "v1")
    elapsed = time.monotonic() - started
    assert fetched.raw == MANIFEST
    assert len(scripted.requests) == 2
    assert elapsed >= 0.95  # the backoff alone would have waited 0 s


def test_server_errors_are_retried_a_bounded_number_of_times(scripted: Scripted) -> None:
    scripted.replies = [Reply(503, b"")]
    with pytest.raises(RegistryError) as e:
        scripted.client().get_manifest("r", "v1")
    assert e.value.status == 503
    assert len(scripted.requests) == FAST.attempts


def test_transient_5xx_then_success(scripted: Scripted) -> None:
    scripted.replies = [Reply(502), Reply(500), OK_MANIFEST]
    assert (
        scripted.client(RetryPolicy(attempts=4, base=0.01)).get_manifest("r", "v1").raw == MANIFEST
    )
    assert len(scripted.requests) == 3


def test_connection_reset_is_retried(scripted: Scripted) -> None:
    scripted.replies = [Reply(mode="reset"), OK_MANIFEST]
    assert scripted.client().get_manifest("r", "v1").raw == MANIFEST
    assert len(scripted.requests) == 2


def test_download_resumes_with_range_after_a_dropped_connection(scripted: Scripted) -> None:
    data = bytes(range(256)) * 400
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    half = len(data) // 2
    scripted.replies = [
        Reply(200, data, mode="truncate"),
        Reply(206, data[half:], {"Content-Range": f"bytes {half}-{len(data) - 1}/{len(data)}"}),
    ]
    with scripted.client().open_blob("r", desc) as f:
        assert f.read() == data
    assert scripted.requests[1][2].get("Range") == f"bytes={half}-"


def _read_by_readinto(f: Any, size: int) -> bytes:
    """Everything ``f`` holds, read with ``readinto`` into one small reused buffer."""
    view = memoryview(bytearray(size))
    out = bytearray()
    while n := f.readinto(view):
        out += view[:n]
    assert f.readinto(view) == 0  # stays at the end
    return bytes(out)


@pytest.mark.parametrize("ranged", [True, False], ids=["206", "range-ignored"])
def test_readinto_resumes_after_a_dropped_connection(scripted: Scripted, ranged: bool) -> None:
    data = bytes(range(256)) * 400
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    half = len(data) // 2
    resumed = (
        Reply(206, data[half:], {"Content-Range": f"bytes {half}-{len(data) - 1}/{len(data)}"})
        if ranged
        else Reply(200, data)  # a server that ignores Range sends it all again: skipped
    )
    scripted.replies = [Reply(200, data, mode="truncate"), resumed]
    with scripted.client().open_blob("r", desc) as f:
        assert _read_by_readinto(f, 4093) == data
    assert scripted.requests[1][2].get("Range") == f"bytes={half}-"


@pytest.mark.parametrize("body", [b"x" * 5000, b"y" * 4999, b"x" * 5001])
def test_readinto_checks_digest_and_size_at_the_end(scripted: Scripted, body: bytes) -> None:
    data = b"x" * 5000
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    scripted.replies = [Reply(200, body)]
    with scripted.client().open_blob("r", desc) as f:
        if body == data:
            assert _read_by_readinto(f, 1000) == data
        else:
            with pytest.raises(DigestMismatch):
                _read_by_readinto(f, 1000)


def test_seekable_upload_starts_over_after_a_server_error(scripted: Scripted) -> None:
    data = b"upload me" * 1000
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    started = Reply(202, headers={"Location": "/v2/r/blobs/uploads/session-1?_state=x"})
    scripted.replies = [started, Reply(503), started, Reply(201), Reply(201)]
    scripted.client().upload_blob("r", desc, io.BytesIO(data))
    assert [m for m, _, _ in scripted.requests] == ["POST", "PUT", "POST", "PUT"]
    assert scripted.bodies[3] == data
    assert f"digest={desc.digest}".replace(":", "%3A") in scripted.requests[3][1]


def test_unseekable_upload_is_not_retried(scripted: Scripted) -> None:
    data = b"once only" * 100
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    started = Reply(202, headers={"Location": "/v2/r/blobs/uploads/s?_state=x"})
    scripted.replies = [started, Reply(503), started, Reply(201)]

    class OneWay(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self.inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    with pytest.raises(RegistryError) as e:
        scripted.client().upload_blob("r", desc, OneWay())  # type: ignore[arg-type]
    assert e.value.status == 503
    assert [m for m, _, _ in scripted.requests] == ["POST", "PUT"]


def test_read_n_returns_full_reads_until_the_end(scripted: Scripted) -> None:
    data = bytes(range(256)) * 2000  # 512000 bytes: many network chunks
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    scripted.replies = [Reply(200, data)]
    with scripted.client().open_blob("r", desc) as f:
        assert f.read(300000) == data[:300000]
        assert f.read(10**6) == data[300000:]
        assert f.read(10) == b""


def test_insecure_falls_back_from_https_to_http(registry: RegistryServer) -> None:
    repo = unique_repo("insecure")
    push_image(registry, repo, "v1", build_image((10,), seed=12))
    https = f"https://{registry.host}"
    client = RegistryClient(registry.host, https, insecure=True, retry=FAST)
    assert client.list_tags(repo) == ["v1"]
    assert client.session.base_url == registry.url
    strict = RegistryClient(registry.host, https, retry=FAST)
    with pytest.raises(RegistryError, match="cannot connect"):
        strict.list_tags(repo)


def test_blob_redirect_followed_without_leaking_authorization(scripted: Scripted) -> None:
    from imagewise.registry.credentials import Credentials

    storage = Scripted()  # a different origin, like a CDN or object store
    try:
        data = b"redirected blob" * 100
        desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
        storage.replies = [Reply(200, data)]
        scripted.replies = [
            Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}),
            Reply(307, headers={"Location": f"http://{storage.host}/signed/blob?sig=abc"}),
        ]
        client = RegistryClient(
            scripted.host,
            f"http://{scripted.host}",
            retry=FAST,
            credentials=Credentials("u", "pw-never-forwarded"),
        )
        with client.open_blob("r", desc) as f:
            assert f.read() == data
        assert "Authorization" in scripted.requests[1][2]
        assert storage.requests[0][1] == "/signed/blob?sig=abc"
        assert not any(k.lower() == "authorization" for k in storage.requests[0][2])
    finally:
        storage.stop()


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert RetryPolicy(max_retry_after=5).delay(0, 3600) == 5


# -- size limits and error mapping ----------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
def test_manifest_over_4mib_is_refused(scripted: Scripted, declared: bool) -> None:
    big = b"{" + b" " * (media.MAX_METADATA_BYTES + 1) + b"}"
    headers = {"Content-Type": media.OCI_MANIFEST}
    scripted.replies = [Reply(200, big, headers, mode="normal" if declared else "eof")]
    with pytest.raises(TooLarge):
        scripted.client().get_manifest("r", "v1")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "UNAUTHORIZED", AuthError),
        (403, "DENIED", AuthError),
        (404, "MANIFEST_UNKNOWN", NotFound),
        (400, "MANIFEST_INVALID", RegistryError),
        (500, None, RegistryError),
    ],
)
def test_error_codes_map_to_the_error_tree(
    scripted: Scripted, status: int, code: str | None, kind: type[Exception]
) -> None:
    body = json.dumps({"errors": [{"code": code, "message": "nope"}]}).encode() if code else b"oops"
    scripted.replies = [Reply(status, body, {"Content-Type": "application/json"})]
    with pytest.raises(kind) as e:
        scripted.client().get_manifest("some/repo", "v1")
    assert type(e.value) is kind
    assert e.value.status == status  # type: ignore[attr-defined]
    assert e.value.code == code  # type: ignore[attr-defined]
    assert "some/repo:v1" in str(e.value)


def test_unreachable_registry_is_one_clear_error() -> None:
    from fixtures_registry import free_port

    host = f"127.0.0.1:{free_port()}"
    client = RegistryClient(host, f"http://{host}", retry=FAST, anonymous=True)
    with pytest.raises(RegistryError, match=f"cannot connect to registry {host}"):
        client.get_manifest("r", "v1")
