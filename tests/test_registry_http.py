"""The registry's HTTP/1.1 client (``imagewise.registry.http``) against raw loopback servers that
answer byte for byte as scripted: body framing (length, chunked, until close), keep-alive reuse
and a pooled connection the server closed, request bodies against their Content-Length, early
answers, timeouts, redirects, and proxies from the environment (``HTTP_PROXY`` absolute-form,
``NO_PROXY``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from imagewise.registry import http
from imagewise.registry.http import Client, Timeout, proxy_for


class RawServer:
    """Accepts connections on loopback; for each request read (head and body, by Content-Length
    or chunked), ``answer(request_bytes)`` gives the raw bytes to send, or None to close the
    connection without answering. Counts connections and keeps every request's head and body."""

    def __init__(
        self,
        answer: Callable[[bytes, bytes], bytes | None],
        close_after: bool = False,
        read_body: bool = True,
    ) -> None:
        self.answer = answer
        self.close_after = close_after
        self.read_body = read_body
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                body = _read_body(f, head) if self.read_body else b""
                self.requests.append((head, body))
                out = self.answer(head, body)
                if out is None:
                    return
                conn.sendall(out)
                if self.close_after:
                    return
        except OSError:
            return
        finally:
            f.close()
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self.sock.close()


def _read_body(f: object, head: bytes) -> bytes:
    text = head.decode("latin-1").lower()
    if "transfer-encoding: chunked" in text:
        out = b""
        while True:
            size = int(f.readline().strip(), 16)  # type: ignore[attr-defined]
            if size == 0:
                f.readline()  # type: ignore[attr-defined]
                return out
            out += f.read(size)  # type: ignore[attr-defined]
            f.readline()  # type: ignore[attr-defined]
    for line in text.split("\r\n"):
        if line.startswith("content-length:"):
            return f.read(int(line.split(":")[1]))  # type: ignore[attr-defined,no-any-return]
    return b""


def ok(body: bytes = b"hello", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(answer: Callable[[bytes, bytes], bytes | None], **kw: bool) -> RawServer:
        servers.append(RawServer(answer, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


FAST = Timeout(5.0)


def test_keep_alive_reuses_one_connection(serve: Callable[..., RawServer]) -> None:
    srv = serve(lambda h, b: ok(b"x" * 100))
    c = Client(f"http://{srv.host}", timeout=FAST)
    for _ in range(5):
        assert c.get("/v2/").content == b"x" * 100
    assert srv.connections == 1
    head = srv.requests[0][0].decode()
    assert head.startswith("GET /v2/ HTTP/1.1\r\n") and f"Host: {srv.host}" in head
    assert "Accept-Encoding: identity" in head  # bodies are never content-coded
    c.close()


def test_a_pooled_connection_the_server_closed_is_replaced(
    serve: Callable[..., RawServer],
) -> None:
    # the server closes after each answer without saying so (no "Connection: close")
    srv = serve(lambda h, b: ok(b"fine"), close_after=True)
    c = Client(f"http://{srv.host}", timeout=FAST)
    for _ in range(3):
        assert c.request("PUT", "/x", content=b"payload").content == b"fine"
        time.sleep(0.05)  # the close reaches us before the next request: seen, not used
    assert srv.connections == 3
    assert [body for _, body in srv.requests] == [b"payload"] * 3


def test_a_closed_connection_noticed_only_on_use_is_retried_if_the_body_allows(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = serve(lambda h, b: ok(b"again"), close_after=True)
    c = Client(f"http://{srv.host}", timeout=FAST)
    monkeypatch.setattr(http._Conn, "alive", lambda self: True)  # the close goes unseen
    for _ in range(2):
        assert c.get("/a").content == b"again"  # bytes (or no body): sent again on a new one
        time.sleep(0.05)
    assert c.request("POST", "/b", content=b"data").content == b"again"
    assert srv.requests[-1][1] == b"data"
    time.sleep(0.05)
    # a streamed body cannot be sent twice: the caller hears of it (its upload starts over)
    with pytest.raises(http.TransportError):
        c.request("PUT", "/c", content=iter([b"streamed"]), headers={"Content-Length": "8"})


def test_chunked_and_until_close_bodies(serve: Callable[..., RawServer]) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    srv = serve(lambda h, b: chunked)
    c = Client(f"http://{srv.host}", timeout=FAST)
    assert c.get("/").content == b"hello world"
    assert c.get("/").content == b"hello world"  # the chunked body ended cleanly: reused
    assert srv.connections == 1
    old = serve(lambda h, b: b"HTTP/1.0 200 OK\r\n\r\nto the end", close_after=True)
    assert Client(f"http://{old.host}", timeout=FAST).get("/").content == b"to the end"


def test_streamed_body_in_pieces_then_connection_reused(serve: Callable[..., RawServer]) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: several reads
    srv = serve(lambda h, b: ok(data))
    c = Client(f"http://{srv.host}", timeout=FAST)
    resp = c.get("/blob", stream=True)
    with pytest.raises(http.ResponseNotRead):
        _ = resp.content
    pieces = list(resp.iter_raw())
    assert b"".join(pieces) == data and len(pieces) > 1 and resp.is_closed
    resp2 = c.get("/blob", stream=True)
    resp2.close()  # closed unread: its connection is not reused
    assert c.get("/blob").content == data
    assert srv.connections == 2


def test_bodies_read_into_one_reused_buffer(serve: Callable[..., RawServer]) -> None:
    data = bytes(range(256)) * 1024
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    bodies = {"/sized": ok(data), "/chunked": chunked, "/empty": ok(b"")}
    srv = serve(lambda h, b: bodies[h.split(b" ")[1].decode()])
    c = Client(f"http://{srv.host}", timeout=FAST)
    view = memoryview(bytearray(3000))
    for path, want in (("/sized", data), ("/chunked", b"hello world"), ("/empty", b"")):
        resp = c.get(path, stream=True)
        got = bytearray()
        while n := resp.readinto(view):
            assert 0 < n <= len(view)
            got += view[:n]
        assert bytes(got) == want and resp.is_closed
        assert resp.readinto(view) == 0 and resp.read1() == b""  # stays at the end
    assert srv.connections == 1  # every body ended cleanly: one connection served them all
    resp = c.get("/sized", stream=True)  # asking for nothing reads nothing, ends nothing
    assert resp.readinto(view[:0]) == 0 and resp.read1(0) == b"" and not resp.is_closed
    assert resp.readinto(view) > 0
    resp.close()
    old = serve(lambda h, b: b"HTTP/1.0 200 OK\r\n\r\nto the end", close_after=True)
    resp = Client(f"http://{old.host}", timeout=FAST).get("/", stream=True)
    assert resp.read1(0) == b"" and not resp.is_closed
    assert resp.read1(4) == b"to t"
    n = resp.readinto(view)
    assert bytes(view[:n]) == b"he end" and resp.readinto(view) == 0
    resp = c.get("/sized", stream=True)
    resp.close()
    with pytest.raises(http.StreamError):
        resp.readinto(view)


def test_a_short_body_read_into_a_buffer_is_a_transport_error(
    serve: Callable[..., RawServer],
) -> None:
    srv = serve(
        lambda h, b: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", close_after=True
    )
    resp = Client(f"http://{srv.host}", timeout=FAST).get("/", stream=True)
    view = memoryview(bytearray(64))
    with pytest.raises(http.RemoteProtocolError, match="5 bytes into a 100-byte body"):
        while resp.readinto(view):
            pass


def test_a_body_shorter_than_its_length_is_a_transport_error(
    serve: Callable[..., RawServer],
) -> None:
    srv = serve(
        lambda h, b: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", close_after=True
    )
    c = Client(f"http://{srv.host}", timeout=FAST)
    with pytest.raises(http.RemoteProtocolError, match="5 bytes into a 100-byte body"):
        c.get("/")


def test_iterated_request_bodies(serve: Callable[..., RawServer]) -> None:
    srv = serve(lambda h, b: ok(b"got"))
    c = Client(f"http://{srv.host}", timeout=FAST)
    # no Content-Length: sent chunked, arrives whole
    assert c.request("PUT", "/u", content=iter([b"ab", b"", b"cd"])).content == b"got"
    assert srv.requests[-1][1] == b"abcd"
    assert b"Transfer-Encoding: chunked" in srv.requests[-1][0]
    # a declared length is held to: more or fewer bytes never reach the server as a request
    for parts, match in (([b"abc", b"def"], "longer"), ([b"ab"], "shorter")):
        with pytest.raises(http.LocalProtocolError, match=match):
            c.request("PUT", "/u", content=iter(parts), headers={"Content-Length": "4"})

    class SourceBroke(Exception):
        pass

    def failing() -> Iterator[bytes]:
        yield b"ab"
        raise SourceBroke("the source of the bytes failed")

    with pytest.raises(SourceBroke):  # the source's own error, unchanged
        c.request("PUT", "/u", content=failing(), headers={"Content-Length": "4"})


def test_an_early_answer_to_an_unfinished_upload_is_returned(
    serve: Callable[..., RawServer],
) -> None:
    refuse = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!"
    srv = serve(lambda h, b: refuse, close_after=True, read_body=False)
    c = Client(f"http://{srv.host}", timeout=FAST)
    # 8 MiB declared: the server answers and closes while the bytes are still going
    big = (b"z" * (1 << 20) for _ in range(8))
    resp = c.request("PUT", "/u", content=big, headers={"Content-Length": str(8 << 20)})
    assert resp.status_code == 413 and resp.content == b"big!"


def test_timeouts_and_refused_connections(serve: Callable[..., RawServer]) -> None:
    srv = serve(lambda h, b: (time.sleep(1.0), ok())[1])
    c = Client(f"http://{srv.host}", timeout=Timeout(0.2))
    with pytest.raises(http.ReadTimeout):
        c.get("/")
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(http.ConnectError):
        Client(f"http://127.0.0.1:{port}", timeout=FAST).get("/")


def test_redirects_followed_when_asked(serve: Callable[..., RawServer]) -> None:
    target = serve(lambda h, b: ok(b"moved here"))
    origin = serve(
        lambda h, b: (
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target.host}/new?x=1\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    c = Client(f"http://{origin.host}", timeout=FAST)
    assert c.get("/old").status_code == 307
    resp = c.get("/old", headers={"Authorization": "Bearer secret"}, follow_redirects=True)
    assert resp.content == b"moved here" and resp.url.endswith("/new?x=1")
    assert b"Authorization" in origin.requests[-1][0]
    assert b"authorization" not in target.requests[-1][0].lower()  # not sent to another origin


def test_links_params_and_urls() -> None:
    assert http.merge_params("http://r/v2/x/blobs/uploads/u?_state=s", {"digest": "sha256:a"}) == (
        "http://r/v2/x/blobs/uploads/u?_state=s&digest=sha256%3Aa"
    )
    assert http.join_url("http://r:5000/", "/v2/a/tags/list?n=2&last=b") == (
        "http://r:5000/v2/a/tags/list?n=2&last=b"
    )
    resp = http.Response(
        200,
        "OK",
        http.Headers([("Link", '</v2/_catalog?last=b&n=2>; rel="next"')]),
        "http://r/v2/_catalog",
        http.Body.empty(),
        lambda reusable: None,
    )
    assert resp.links["next"]["url"] == "/v2/_catalog?last=b&n=2"
    headers = http.Headers([("WWW-Authenticate", "Bearer a"), ("www-authenticate", "Basic b")])
    assert headers.get("Www-Authenticate") == "Bearer a, Basic b" and "WWW-AUTHENTICATE" in headers


def test_proxy_from_the_environment(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(lambda h, b: ok(b"via proxy"))
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@{proxy.host}")
    monkeypatch.setenv("NO_PROXY", "")
    c = Client("http://registry.example:5000", timeout=FAST)
    assert c.get("/v2/").content == b"via proxy"
    head = proxy.requests[-1][0].decode()
    assert head.startswith("GET http://registry.example:5000/v2/ HTTP/1.1\r\n")
    assert (
        "Host: registry.example:5000" in head and "Proxy-Authorization: Basic dXNlcjpwdw==" in head
    )
    direct = serve(lambda h, b: ok(b"direct"))
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.0/8")
    assert Client(f"http://{direct.host}", timeout=FAST).get("/").content == b"direct"


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("*", "any.host", 443, True),
        ("example.com", "registry.example.com", 443, True),
        (".example.com", "example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        ("registry.local:5000", "registry.local", 5000, True),
        ("registry.local:5000", "registry.local", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("::1", "::1", 443, True),
        ("", "registry.example", 443, False),
    ],
)
def test_no_proxy_matching(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, port: int, bypassed: bool
) -> None:
    for name in ("http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for("https", host, port) == (None if bypassed else "http://proxy.corp:3128")
    assert proxy_for("http", host, port) is None  # HTTPS_PROXY is for https only


def test_header_names_are_merged_without_case(serve: Callable[..., RawServer]) -> None:
    srv = serve(lambda h, b: ok())
    c = Client(f"http://{srv.host}", timeout=FAST, headers={"User-Agent": "iw/1"})
    c.request("PUT", "/x", content=b"abc", headers={"user-agent": "other", "content-length": "9"})
    head = srv.requests[-1][0].decode().lower()
    assert head.count("user-agent:") == 1 and "user-agent: other" in head
    assert head.count("content-length:") == 1 and "content-length: 3" in head  # the real length


def test_connections_are_reused_past_descriptor_1023(serve: Callable[..., RawServer]) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    held = [socket.socket() for _ in range(1100)]  # push the client's socket past FD_SETSIZE
    try:
        srv = serve(lambda h, b: ok(b"ok"))
        c = Client(f"http://{srv.host}", timeout=FAST)
        for _ in range(3):
            assert c.get("/").content == b"ok"
        assert srv.connections == 1
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_request_lines_cannot_be_split(serve: Callable[..., RawServer]) -> None:
    srv = serve(lambda h, b: ok())
    c = Client(f"http://{srv.host}", timeout=FAST)
    # a token from an auth server, or a Location from a registry, with a line break in it
    with pytest.raises(http.LocalProtocolError, match="line break"):
        c.get("/v2/", headers={"Authorization": "Bearer x\r\nX-Injected: 1"})
    c.get("/v2/a b/tags/list?last=é%2F")
    assert srv.requests[-1][0].split(b"\r\n")[0] == (
        b"GET /v2/a%20b/tags/list?last=%C3%A9%2F HTTP/1.1"
    )
    assert srv.connections == 1 and len(srv.requests) == 1  # the refused one never went out
