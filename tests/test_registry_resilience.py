"""A misbehaving network between imagewise and the real registry: retried pushes, manifests
altered in transit, stalls, overall timeouts and long ``Retry-After`` answers.

:class:`FaultProxy` is an HTTP proxy on loopback in front of the CNCF registry (the ``registry``
fixture). It forwards every request unchanged (the registry builds upload ``Location`` URLs from
the ``Host`` header, so uploads keep going through the proxy) unless its ``rule`` answers a
request with a :class:`Fault`: an HTTP status, a stall (never answer), a dropped connection
(after part of the body), or a changed response body.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_runner import CliRunner
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.copy import copy, copy_image
from imagewise.errors import DigestMismatch, RegistryError
from imagewise.oci.digest import Digest
from imagewise.progress import Reporter
from imagewise.reference import ImageReference
from imagewise.registry.client import RegistryClient
from imagewise.registry.retry import RetryPolicy
from imagewise.registry.transfer import Transfer
from imagewise.sources import open_source
from imagewise.sources.registry import RegistrySink, RegistrySource

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "content-length",
}


@dataclass
class Fault:
    #: status | stall (never answer) | stall-body (half the body, then nothing) |
    #: drop (read ``after`` body bytes, close; ``die``: then refuse every connection) | alter
    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    die: bool = False
    alter: Callable[[bytes], bytes] | None = None


Rule = Callable[[str, str, int], "Fault | None"]


class FaultProxy:
    """Forwards to ``upstream``; ``rule(method, path, n)`` (``n``: how many earlier requests
    had the same method and path kind) may inject a fault instead."""

    def __init__(self, upstream: RegistryServer, rule: Rule) -> None:
        self.rule = rule
        self.requests: list[tuple[str, str, str]] = []  # (method, path, fault kind or "")
        self.released = threading.Event()
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                kind_key = (self.command, _kind(self.path))
                with outer._lock:
                    n = outer._seen.get(kind_key, 0)
                    outer._seen[kind_key] = n + 1
                fault = outer.rule(self.command, self.path, n)
                outer.requests.append((self.command, self.path, fault.kind if fault else ""))
                if fault is not None and fault.kind == "stall":
                    outer.released.wait(120)
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "drop":
                    if length:
                        self.rfile.read(min(length, fault.after))
                    if fault.die:
                        outer.die()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(length) if length else b""
                if fault is not None and fault.kind == "status":
                    payload = b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'
                    self.send_response(fault.status)
                    for k, v in {"Content-Type": "application/json", **fault.headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(upstream.host, timeout=60)
                try:
                    conn.request(
                        self.command, self.path, body=body if length else None, headers=headers
                    )
                    resp = conn.getresponse()
                    data = resp.read()
                    upstream_length = resp.getheader("Content-Length")
                    out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
                finally:
                    conn.close()
                if fault is not None and fault.kind == "alter" and fault.alter is not None:
                    data = fault.alter(data)
                self.send_response(resp.status)
                for k, v in out_headers:
                    self.send_header(k, v)
                declared = upstream_length if self.command == "HEAD" else str(len(data))
                if declared is not None:
                    self.send_header("Content-Length", declared)
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault is not None and fault.kind == "stall-body":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    outer.released.wait(120)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        # a small receive window (set before listen, so no autotuning): a client sending a big
        # body is still sending when the proxy drops it, as with a real registry dying mid-push
        self.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.httpd.server_bind()
        self.httpd.server_activate()
        self.httpd.handle_error = lambda *a: None  # type: ignore[method-assign]  # on purpose
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self._dead = False

    def die(self) -> None:
        """Stop listening (from a handler thread): later connections are refused, as by a
        dead host."""
        closed = threading.Event()

        def stop() -> None:
            if not self._dead:
                self._dead = True
                self.httpd.shutdown()
                self.httpd.server_close()
            closed.set()

        threading.Thread(target=stop, daemon=True).start()
        closed.wait(5)

    def stop(self) -> None:
        self.released.set()
        if not self._dead:
            self._dead = True
            self.httpd.shutdown()
            self.httpd.server_close()

    def count(self, method: str, kind: str, fault: str | None = None) -> int:
        return sum(
            1
            for m, p, f in self.requests
            if m == method and _kind(p) == kind and (fault is None or f == fault)
        )


def _kind(path: str) -> str:
    """uploads | blob | manifest | other: what a registry API path addresses."""
    if "/blobs/uploads/" in path:
        return "uploads"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        return "manifest"
    return "other"


@pytest.fixture
def proxies(registry: RegistryServer) -> Iterator[Callable[[Rule], FaultProxy]]:
    made: list[FaultProxy] = []

    def make(rule: Rule) -> FaultProxy:
        made.append(FaultProxy(registry, rule))
        return made[-1]

    yield make
    for p in made:
        p.stop()


class Recorder(Reporter):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def _pushed(
    registry: RegistryServer, sizes: tuple[int, ...] = (3000, 200_000), seed: int = 5
) -> tuple[str, Any]:
    repo = unique_repo("resil")
    return repo, push_image(registry, repo, "v1", build_image(sizes, seed=seed))


def _copy_cli(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(cli, ["copy", *args], env=env)


# -- 1. pushes are retried: a new upload session, the source blob read again ---------------------


@pytest.mark.parametrize("fault", ["http-500", "dropped-connection"])
def test_push_starts_a_failed_blob_upload_over(
    registry: RegistryServer, proxies: Any, fault: str
) -> None:
    repo, built = _pushed(registry)
    big = max(built.layers, key=lambda d: d.size)

    def rule(method: str, path: str, n: int) -> Fault | None:
        if (
            method == "PUT"
            and _kind(path) == "uploads"
            and str(big.digest)[7:] in path
            and not proxy.count("PUT", "uploads", "status")
            and not proxy.count("PUT", "uploads", "drop")
        ):
            return Fault("status", 500) if fault == "http-500" else Fault("drop", after=50_000)
        return None

    proxy = proxies(rule)
    dst = f"docker://{proxy.host}/{unique_repo('resil')}:v1"
    # the source is a registry: its blob stream cannot seek, the copy opens it again
    result = _copy_cli(f"docker://{registry.host}/{repo}:v1", dst)
    assert result.exit_code == 0, result.output
    assert built.manifest_digest in result.stdout
    assert "; starting the upload again in " in result.stderr
    assert " s (try 2 of 5)\n" in result.stderr
    assert str(big.digest) in result.stderr
    # a new upload session was opened for the retry, and the blob arrived whole
    assert proxy.count("POST", "uploads") == 1 + len(built.layers) + 1
    with open_source(dst) as src, src.open_blob(big) as f:
        assert Digest.of(f.read()) == big.digest


def test_registry_killed_mid_push_is_named_not_the_source(
    registry: RegistryServer, proxies: Any
) -> None:
    repo, built = _pushed(registry, (8_000_000,), seed=31)  # more than socket buffers hold
    big = built.layers[0]

    def rule(method: str, path: str, n: int) -> Fault | None:
        if method == "PUT" and _kind(path) == "uploads" and str(big.digest)[7:] in path:
            return Fault("drop", after=1_000_000, die=True)
        return None

    proxy = proxies(rule)
    reporter = Recorder()
    sink = RegistrySink(
        ImageReference.parse(f"{proxy.host}/{unique_repo('dead')}:v1"),
        client=RegistryClient(proxy.host, f"http://{proxy.host}", retry=FAST, anonymous=True),
        transfer=Transfer(reporter=reporter),
    )
    with (
        open_source(f"docker://{registry.host}/{repo}:v1") as source,
        pytest.raises(RegistryError) as e,
    ):
        copy_image(source, sink, reporter=reporter, jobs=1)
    text = str(e.value)
    assert "descriptor says" not in text and "stream had" not in text
    assert f"registry {proxy.host}" in text
    assert str(big.digest) in text
    assert any("starting the upload again" in m for m in reporter.messages)


def test_a_chunked_upload_starts_over_in_a_new_session(
    registry: RegistryServer, proxies: Any
) -> None:
    data = bytes(range(256)) * 1000
    from imagewise.oci.model import Descriptor

    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))

    def rule(method: str, path: str, n: int) -> Fault | None:
        return Fault("status", 500) if method == "PATCH" and n == 1 else None

    proxy = proxies(rule)
    reporter = Recorder()
    client = RegistryClient(proxy.host, f"http://{proxy.host}", retry=FAST, anonymous=True)
    client.chunk_threshold, client.chunk_size = 1000, 100_000  # 3 PATCHes of a 256000-byte blob
    repo = unique_repo("chunked")
    client.using(Transfer(reporter=reporter)).upload_blob(repo, desc, io.BytesIO(data))
    # the second PATCH failed: not sent again to that session, a new one took the whole blob
    assert [m for m, _, _ in proxy.requests if m in ("POST", "PATCH", "PUT")] == [
        "POST",
        "PATCH",
        "PATCH",
        "POST",
        "PATCH",
        "PATCH",
        "PATCH",
        "PUT",
    ]
    assert len(reporter.messages) == 1 and "starting the upload again" in reporter.messages[0]
    with RegistryClient(registry.host, registry.url, anonymous=True).open_blob(repo, desc) as f:
        assert f.read() == data


def test_a_short_source_stream_is_still_blamed_on_the_source(registry: RegistryServer) -> None:
    data = b"x" * 5000
    desc_size = len(data) + 100  # the descriptor promises more than the stream holds
    from imagewise.oci.model import Descriptor

    desc = Descriptor("application/octet-stream", Digest.of(data), desc_size)
    client = RegistryClient(registry.host, registry.url, retry=FAST, anonymous=True)
    with pytest.raises(Exception) as e:
        client.upload_blob(unique_repo("short"), desc, io.BytesIO(data))
    assert f"descriptor says {desc_size} bytes, stream had {len(data)}" in str(e.value)


# -- 2. a manifest pulled by tag must match the registry's Docker-Content-Digest ------------------


def test_manifest_altered_in_transit_is_refused(registry: RegistryServer, proxies: Any) -> None:
    repo, built = _pushed(registry, (100,), seed=8)

    def rule(method: str, path: str, n: int) -> Fault | None:
        if method == "GET" and path.endswith("/manifests/v1"):
            return Fault(
                "alter", alter=lambda b: b.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
            )
        return None

    proxy = proxies(rule)
    ref = ImageReference.parse(f"{proxy.host}/{repo}:v1")
    with pytest.raises(DigestMismatch) as e:
        RegistrySource(ref).top()
    assert e.value.expected == built.manifest_digest
    assert "Docker-Content-Digest" in str(e.value)
    result = CliRunner().invoke(cli, ["inspect", f"docker://{proxy.host}/{repo}:v1"])
    assert result.exit_code == 2
    assert built.manifest_digest in result.stderr
    # unaltered, the same pull by tag goes through and keeps the registry's digest
    assert RegistrySource(
        ImageReference.parse(f"{registry.host}/{repo}:v1")
    ).top().digest == Digest.parse(built.manifest_digest)


# -- 3. stalls, the overall timeout, Retry-After -------------------------------------------------


@pytest.mark.parametrize("kind", ["stall", "stall-body"])
def test_a_stalled_blob_download_is_retried_and_said(
    registry: RegistryServer, proxies: Any, tmp_path: Path, kind: str
) -> None:
    repo, built = _pushed(registry)
    big = max(built.layers, key=lambda d: d.size)

    def rule(method: str, path: str, n: int) -> Fault | None:
        if (
            method == "GET"
            and path.endswith(str(big.digest))
            and not proxy.count("GET", "blob", kind)
        ):
            return Fault(kind)
        return None

    proxy = proxies(rule)
    started = time.monotonic()
    result = _copy_cli(
        "--stall-timeout", "1", f"docker://{proxy.host}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1"
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30
    assert (
        f"imagewise: registry {proxy.host} sent nothing for 1 s on blob {big.digest}"
        in result.stderr
    )
    assert "(try 2 of 3)" in result.stderr
    if kind == "stall-body":  # resumed where the body stopped
        assert f"after {big.size // 2} bytes; retrying" in result.stderr
    assert built.manifest_digest in result.stdout


def test_a_manifest_body_that_stalls_is_fetched_again(
    registry: RegistryServer, proxies: Any
) -> None:
    repo, built = _pushed(registry, (100,))

    def rule(method: str, path: str, n: int) -> Fault | None:
        return (
            Fault("stall-body")
            if method == "GET" and _kind(path) == "manifest" and n == 0
            else None
        )

    proxy = proxies(rule)
    reporter = Recorder()
    source = RegistrySource(
        ImageReference.parse(f"{proxy.host}/{repo}:v1"),
        transfer=Transfer(stall=1, reporter=reporter),
    )
    assert source.top().digest == Digest.parse(built.manifest_digest)
    assert len(reporter.messages) == 1
    assert reporter.messages[0].startswith(
        f"registry {proxy.host} sent nothing for 1 s on manifest {proxy.host}/{repo}:v1; "
        "retrying in "
    )


def test_a_registry_that_never_answers_fails_with_host_blob_and_time(
    registry: RegistryServer, proxies: Any, tmp_path: Path
) -> None:
    repo, built = _pushed(registry)
    big = max(built.layers, key=lambda d: d.size)

    def rule(method: str, path: str, n: int) -> Fault | None:
        return Fault("stall") if method == "GET" and path.endswith(str(big.digest)) else None

    proxy = proxies(rule)
    started = time.monotonic()
    result = _copy_cli(
        f"docker://{proxy.host}/{repo}:v1",
        f"oci:{tmp_path / 'out'}:v1",
        env={"IMAGEWISE_STALL_TIMEOUT": "1"},
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2
    assert elapsed < 30
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"imagewise: error: registry {proxy.host} sent nothing for 1 s on blob {big.digest}"
    ), last
    assert "3 times (3 s in all); giving up" in last
    assert result.stderr.count("retrying in") == 2


def test_a_stalled_upload_is_started_over(registry: RegistryServer, proxies: Any) -> None:
    repo, built = _pushed(registry)
    big = max(built.layers, key=lambda d: d.size)

    def rule(method: str, path: str, n: int) -> Fault | None:
        if (
            method == "PUT"
            and _kind(path) == "uploads"
            and str(big.digest)[7:] in path
            and not proxy.count("PUT", "uploads", "stall")
        ):
            return Fault("stall")
        return None

    proxy = proxies(rule)
    reporter = Recorder()
    result = copy(
        f"docker://{registry.host}/{repo}:v1",
        f"docker://{proxy.host}/{unique_repo('resil')}:v1",
        stall=1,
        reporter=reporter,
    )
    assert result.digest == built.manifest_digest
    assert any(
        m.startswith(f"registry {proxy.host} sent nothing for 1 s on upload of blob {big.digest}")
        and "; starting the upload again in " in m
        for m in reporter.messages
    ), reporter.messages


@pytest.mark.parametrize("direction", ["pull", "push"])
def test_overall_timeout_ends_the_copy(
    registry: RegistryServer, proxies: Any, tmp_path: Path, direction: str
) -> None:
    repo, _ = _pushed(registry)

    def rule(method: str, path: str, n: int) -> Fault | None:
        if direction == "pull":
            return Fault("stall") if method == "GET" and _kind(path) == "blob" else None
        return Fault("stall") if method == "PUT" and _kind(path) == "uploads" else None

    proxy = proxies(rule)
    started = time.monotonic()
    if direction == "pull":
        src, dst = f"docker://{proxy.host}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1"
    else:
        src, dst = f"docker://{registry.host}/{repo}:v1", f"docker://{proxy.host}/{repo}-2:v1"
    result = _copy_cli("--timeout", "2", src, dst)
    elapsed = time.monotonic() - started
    assert result.exit_code == 2
    assert 1.9 < elapsed < 15, elapsed
    assert "not finished within the overall timeout of 2 s" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert proxy.host in last and registry.host not in last, last


def test_a_long_retry_after_fails_at_once_and_says_the_cap(
    registry: RegistryServer, proxies: Any, tmp_path: Path
) -> None:
    repo, _ = _pushed(registry, (100,))

    def rule(method: str, path: str, n: int) -> Fault | None:
        if _kind(path) == "manifest" and n == 0:
            return Fault("status", 429, {"Retry-After": "99999"})
        return None

    proxy = proxies(rule)
    started = time.monotonic()
    result = _copy_cli(f"docker://{proxy.host}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1")
    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert (
        f"imagewise: error: registry {proxy.host} answered HTTP 429 (manifest {proxy.host}/"
        f"{repo}:v1) and asked to retry after 99999 s, longer than the 60 s imagewise waits "
        "for a Retry-After; giving up: try again later"
    ) in result.stderr


def test_a_short_retry_after_is_waited_and_said(
    registry: RegistryServer, proxies: Any, tmp_path: Path
) -> None:
    repo, built = _pushed(registry, (100,))

    def rule(method: str, path: str, n: int) -> Fault | None:
        if _kind(path) == "manifest" and n == 0:
            return Fault("status", 503, {"Retry-After": "1"})
        return None

    proxy = proxies(rule)
    reporter = Recorder()
    started = time.monotonic()
    result = copy(
        f"docker://{proxy.host}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1", reporter=reporter
    )
    assert time.monotonic() - started >= 0.95
    assert result.digest == built.manifest_digest
    assert reporter.messages == [
        (
            f"registry {proxy.host} answered HTTP 503 (manifest {proxy.host}/{repo}:v1) and asked "
            "to wait 1 s; retrying in 1 s (try 2 of 5)"
        )
    ]


def test_the_library_prints_nothing_itself(
    registry: RegistryServer, proxies: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repo, _ = _pushed(registry, (100,))

    def rule(method: str, path: str, n: int) -> Fault | None:
        return Fault("status", 503) if _kind(path) == "manifest" and n == 0 else None

    proxy = proxies(rule)
    reporter = Recorder()
    copy(f"docker://{proxy.host}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1", reporter=reporter)
    assert len(reporter.messages) == 1 and "HTTP 503" in reporter.messages[0]
    out, err = capfd.readouterr()
    assert out == err == ""


def test_transfer_reads_the_stall_time_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEWISE_STALL_TIMEOUT", "7")
    assert Transfer().stall == 7.0
    assert Transfer(stall=2).stall == 2.0
    monkeypatch.setenv("IMAGEWISE_STALL_TIMEOUT", "soon")
    assert Transfer().stall == 60.0
    limited = Transfer(stall=30, timeout=5)
    connect, quiet, pool = limited.timeouts()
    assert quiet <= 5 and connect <= 5 and pool is not None and pool <= 5


def test_a_blob_entry_a_crash_left_half_written_is_sent_again(registry: RegistryServer) -> None:
    """A distribution registry killed while writing a blob's link leaves it empty, and then
    answers 500 for that blob (seen in the restore-after-crash test): a copy to it sends the
    blob again, which repairs the entry, instead of failing on the HEAD."""
    import httpx

    repo = unique_repo("halfwritten")
    img = push_image(registry, repo, "1.0", build_image((4096, 2048), seed=4417))
    layer = str(img.layers[1].digest)
    link = (
        registry.storage_dir / "docker/registry/v2/repositories" / repo / "_layers/sha256"
        / layer.split(":")[1] / "link"
    )  # fmt: skip
    link.write_text("")  # what a kill -9 in the middle of the write leaves
    assert httpx.head(f"{registry.url}/v2/{repo}/blobs/{layer}").status_code == 500
    push_image(registry, repo, "1.1", img)  # imagewise's registry sink, as copy and restore
    assert httpx.head(f"{registry.url}/v2/{repo}/blobs/{layer}").status_code == 200
