"""HTTP/1.1 for registry calls: a small pooled client on the standard library's sockets.

A registry command spends most of its life starting up when the work is a few manifest reads or
PUTs (``tag``, a no-change ``sync`` or incremental backup). httpx with httpcore and h11 (and
the ``urllib.request``, ``http.client`` and ``email`` packages they import) took ~45 ms of that;
this module is what registry calls need and nothing more:

* keep-alive connections pooled per origin, safe to share between threads; an idle connection
  the server closed is noticed before it is used again;
* TLS through a context the caller gives (``verify``), or none for ``http://``;
* request bodies as bytes or as an iterator of chunks (``Content-Length`` enforced, or chunked);
* responses read whole or streamed (``iter_raw``, ``read1``, or ``readinto`` a buffer the caller
  reuses, as a blob copy does), framed by ``Content-Length``, chunked coding or the end of the
  connection; ``Accept-Encoding: identity`` so bodies are never encoded;
* per-request timeouts: connect, read and write (a read or write quiet that long raises
  :class:`ReadTimeout` / :class:`WriteTimeout`);
* redirects on request (``follow_redirects``), dropping ``Authorization`` across origins;
* proxies from ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` (as curl and
  httpx read them): absolute-form requests for ``http://``, a ``CONNECT`` tunnel for ``https://``.

Errors form a small tree under :class:`HTTPError`; every failure of the connection or of the
peer's framing is a :class:`TransportError`.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import (
    parse_qsl,
    quote,
    unquote,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)

if TYPE_CHECKING:
    import io
    import ssl

#: idle keep-alive connections kept per origin
KEEP_IDLE = 16
#: redirects followed for one request
MAX_REDIRECTS = 10
#: a connection's read buffer and the largest body piece: 256 KiB pieces take a tenth less CPU
#: than 64 KiB ones over a 200 MB copy (fewer reads, fewer pieces joined), with less variance
_READ = 256 * 1024
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HTTPError(Exception):
    """Any failure of this module."""


class TransportError(HTTPError):
    """The connection failed, timed out, or the peer broke HTTP framing."""


class ConnectError(TransportError):
    """No connection could be made (refused, unreachable, name unknown, TLS handshake failed)."""


class TimeoutException(TransportError):
    """Some phase of the request went quiet for its timeout."""


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class ReadError(TransportError):
    pass


class WriteError(TransportError):
    pass


class RemoteProtocolError(TransportError):
    """The peer closed early or sent something that is not HTTP/1.1."""


class LocalProtocolError(TransportError):
    """The request body did not match its declared ``Content-Length``."""


class StreamError(HTTPError):
    """A response body used the wrong way (read after close, content before read)."""


class ResponseNotRead(StreamError):
    pass


class Timeout:
    """Seconds allowed to connect and for each read and write (None: no limit)."""

    __slots__ = ("connect", "read", "write")

    def __init__(
        self,
        default: float | None = None,
        *,
        connect: float | None = None,
        read: float | None = None,
        write: float | None = None,
    ) -> None:
        self.connect = connect if connect is not None else default
        self.read = read if read is not None else default
        self.write = write if write is not None else default


class Headers:
    """Header fields in order; names compared without case."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def get(self, name: str, default: Any = None) -> Any:
        found = self.get_list(name)
        return ", ".join(found) if found else default

    def get_list(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_list(name))

    def __repr__(self) -> str:
        return f"Headers({len(self._items)} fields)"


class Request:
    """What is about to be sent (seen by ``Client.on_request`` hooks)."""

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: dict[str, str], content: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.url).path)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url.split('?')[0]})"


# -- URLs -----------------------------------------------------------------------------------------


def join_url(base: str, url: str) -> str:
    """``url`` resolved against ``base`` (a path like ``/v2/...`` keeps the base's origin)."""
    return urljoin(base, url)


def merge_params(url: str, params: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    """``url`` with ``params`` added to its query string (a name given replaces the old value)."""
    parts = urlsplit(url)
    new = list(params.items()) if isinstance(params, dict) else list(params)
    names = {k for k, _ in new}
    old = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode([*old, *new])))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConnectError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname or ""
    if not host:
        raise ConnectError("URL without a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as e:
        raise ConnectError(f"bad port in URL: {e}") from e
    return scheme, host, port


#: characters a request target keeps as they are (RFC 3986 reserved and unreserved, and ``%``
#: so existing escapes stay); anything else (spaces, controls, non-ASCII) is percent-encoded
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:%-._~"


def _target(url: str) -> str:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return quote(target, safe=_TARGET_SAFE)


def _field(name: str, value: str) -> str:
    """One header line; a name or value that would split the request is refused."""
    line = f"{name}: {value}"
    if "\r" in line or "\n" in line or not name or ":" in name:
        raise LocalProtocolError(f"refusing a header with a line break or a bad name: {name!r}")
    return line


def _host_header(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


# -- proxies from the environment -----------------------------------------------------------------


def _env(name: str) -> str:
    return (os.environ.get(name.lower()) or os.environ.get(name.upper()) or "").strip()


def proxy_for(scheme: str, host: str, port: int) -> str | None:
    """The proxy URL the environment gives for this origin, or None (``NO_PROXY`` honoured:
    ``*``, host names matching themselves and their subdomains, IP addresses and networks,
    each optionally with ``:port``)."""
    proxy = _env(f"{scheme}_proxy") or _env("all_proxy")
    if not proxy:
        return None
    for entry in (e.strip() for e in _env("no_proxy").split(",")):
        if entry and _bypasses(entry, host, port):
            return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypasses(entry: str, host: str, port: int) -> bool:
    if entry == "*":
        return True
    name, want_port = entry, None
    if name.startswith("["):
        name, _, rest = name[1:].partition("]")
        want_port = rest[1:] if rest.startswith(":") else None
    elif name.count(":") == 1:
        name, want_port = name.split(":")
    if want_port and want_port != str(port):
        return False
    host = host.lower().strip("[]")
    name = name.lower().lstrip(".")
    if "/" in name or name.replace(".", "").isdigit() or ":" in name:
        import ipaddress

        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False
    name = name.removeprefix("*.")
    return host == name or host.endswith("." + name)


# -- connections ----------------------------------------------------------------------------------


class _Conn:
    """One socket with its buffered reader; ``reused`` once it has served a response."""

    __slots__ = ("rfile", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = cast("io.BufferedReader", sock.makefile("rb", buffering=_READ))
        self.reused = False

    def alive(self) -> bool:
        """False when the idle socket is readable: the server closed it (or sent junk).
        ``poll`` where there is one: ``select`` refuses descriptors past 1023, which a busy
        service process reaches."""
        try:
            if hasattr(select, "poll"):
                p = select.poll()
                p.register(self.sock, select.POLLIN)
                return not p.poll(0)
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            try:
                self.sock.close()
            except OSError:
                pass


def _connect(host: str, port: int, timeout: float | None, what: str = "") -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as e:
        raise ConnectTimeout(f"timed out connecting to {what or host}") from e
    except OSError as e:
        raise ConnectError(f"{e.strerror or e}" if isinstance(e.strerror, str) else str(e)) from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Pool:
    """Idle keep-alive connections per (scheme, host, port, proxy)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, str], list[_Conn]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str, int, str]) -> _Conn | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None or conn.alive():
                return conn
            conn.close()

    def give(self, key: tuple[str, str, int, str], conn: _Conn) -> None:
        conn.reused = True
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < KEEP_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


# -- responses ------------------------------------------------------------------------------------


class Response:
    """Status, headers and a body read whole (``read``/``content``) or streamed (``iter_raw``,
    ``read1``, ``readinto``)."""

    def __init__(
        self,
        status_code: int,
        reason_phrase: str,
        headers: Headers,
        url: str,
        body: Body,
        release: Callable[[bool], None],
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.url = url
        self._body = body
        self._release = release
        self._content: bytes | None = None
        self.is_closed = False
        self._consumed = False

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body in pieces as they arrive; the connection goes back to the pool at the end."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._consumed or self.is_closed:
            raise StreamError("the response body was already read or closed")
        self._consumed = True
        for chunk in self._body:
            yield chunk
        self._finish(True)

    def read1(self, n: int = _READ) -> bytes:
        """The next piece of a streamed body, up to ``n`` bytes from one read of the
        connection; ``b""`` at the end. The connection goes back to the pool as soon as the
        whole body has been read."""
        self._streaming()
        data = self._body.read1(n)
        if self._body.done:
            self._finish(True)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """As :meth:`read1`, into ``buffer`` (one buffer serves a whole copy); 0 at the end."""
        self._streaming()
        n = self._body.readinto(buffer)
        if self._body.done:
            self._finish(True)
        return n

    def _streaming(self) -> None:
        if self._content is not None or (self.is_closed and not self._body.done):
            raise StreamError("the response body was already read or closed")
        self._consumed = True

    iter_bytes = iter_raw  # no content coding is ever asked for (Accept-Encoding: identity)

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_raw())
        return self._content

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead("the response body has not been read")
        return self._content

    def json(self) -> Any:
        import json

        return json.loads(self.content)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header by relation: ``{"next": {"url": ..., "rel": "next"}}``."""
        out: dict[str, dict[str, str]] = {}
        for value in self.headers.get_list("Link"):
            for part in value.split(","):
                url, _, params = part.strip().partition(";")
                link = {"url": url.strip().strip("<>")}
                for p in params.split(";"):
                    k, _, v = p.strip().partition("=")
                    if k:
                        link[k.strip().lower()] = v.strip().strip("\"'")
                out[link.get("rel") or link["url"]] = link
        return out

    def _finish(self, reusable: bool) -> None:
        if not self.is_closed:
            self.is_closed = True
            self._release(reusable)

    def close(self) -> None:
        """Close a body not read to its end (its connection with it); a body read to its end
        gave its connection back already."""
        self._finish(False)


def _read_head(conn: _Conn) -> tuple[int, str, Headers, str]:
    """Status line and header fields; interim 1xx answers are skipped."""
    rfile = conn.rfile
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise RemoteProtocolError("server disconnected without sending a response")
        if len(line) > _MAX_LINE:
            raise RemoteProtocolError("status line too long")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise RemoteProtocolError(f"not an HTTP/1.x status line: {line[:60]!r}")
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        items: list[tuple[str, str]] = []
        while True:
            hline = rfile.readline(_MAX_LINE + 1)
            if not hline:
                raise RemoteProtocolError("server disconnected in the middle of the headers")
            if hline in (b"\r\n", b"\n"):
                break
            if len(hline) > _MAX_LINE or len(items) >= _MAX_HEADERS:
                raise RemoteProtocolError("response headers too large")
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep:
                raise RemoteProtocolError(f"malformed header line: {hline[:60]!r}")
            items.append((name.strip(), value.strip()))
        if 100 <= status < 200 and status != 101:
            continue
        return status, reason, Headers(items), version


def _body_reader(
    conn: _Conn, method: str, status: int, headers: Headers, version: str, timeout: float | None
) -> tuple[Body, bool]:
    """The response body, and whether the connection can serve another request afterwards."""
    keep = version != "HTTP/1.0" and "close" not in headers.get("Connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        return Body.empty(), keep
    coding = headers.get("Transfer-Encoding", "").lower()
    if "chunked" in coding:
        return Body(conn, timeout, chunked=True), keep
    length = headers.get("Content-Length")
    if length is not None:
        try:
            n = int(length.split(",")[0])
        except ValueError as e:
            raise RemoteProtocolError(f"bad Content-Length {length!r}") from e
        if n < 0:
            raise RemoteProtocolError(f"bad Content-Length {length!r}")
        return Body(conn, timeout, length=n), keep
    return Body(conn, timeout), False


class Body:
    """A response body as it comes off its connection: ``read1`` (new bytes) or ``readinto``
    (the caller's buffer, which a long copy reuses instead of making a new object for every
    piece), each at most one read from the socket and empty only at the end. Framed by a
    length, chunked coding, or (neither) the end of the connection; socket failures become
    this module's errors."""

    __slots__ = ("_chunk", "_chunked", "_done", "_left", "_rfile", "_sock", "_started", "_timeout")

    def __init__(
        self,
        conn: _Conn | None,
        timeout: float | None,
        *,
        length: int | None = None,
        chunked: bool = False,
    ) -> None:
        self._rfile = conn.rfile if conn is not None else None
        self._sock = conn.sock if conn is not None else None
        self._timeout = timeout
        self._chunked = chunked
        self._left = 0 if chunked else length  # bytes left in this piece; None: up to the end
        self._chunk = 0 if chunked else (length or 0)  # the piece's size, for messages
        self._done = conn is None or (not chunked and length == 0)
        self._started = False

    @classmethod
    def empty(cls) -> Body:
        return cls(None, None)

    @property
    def done(self) -> bool:
        """True once the whole body has been read."""
        return self._done

    def read1(self, n: int = _READ) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end (or when ``n`` is 0)."""
        if n <= 0 or not self._ready():
            return b""
        assert self._rfile is not None
        try:
            data = self._rfile.read1(n if self._left is None else min(n, self._left))
        except OSError as e:  # timeouts and resets among them
            raise _read_failure(e) from e
        self._account(len(data))
        return data

    def readinto(self, buffer: memoryview) -> int:
        """Bytes read into the start of ``buffer``; 0 at the end (or for an empty buffer)."""
        if not len(buffer) or not self._ready():
            return 0
        assert self._rfile is not None
        view = buffer if self._left is None or self._left >= len(buffer) else buffer[: self._left]
        try:
            n = self._rfile.readinto1(view)
        except OSError as e:  # timeouts and resets among them
            raise _read_failure(e) from e
        self._account(n)
        return n

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read1(_READ):
            yield chunk

    def _ready(self) -> bool:
        """False at the end of the body; otherwise the socket is ready to be read from the
        current piece (a chunk header read first where one is due)."""
        if self._done:
            return False
        if not self._started:
            assert self._sock is not None
            self._started = True
            try:
                self._sock.settimeout(self._timeout)
            except OSError as e:
                raise _read_failure(e) from e
        if self._chunked and self._left == 0:
            try:
                self._next_chunk()
            except OSError as e:
                raise _read_failure(e) from e
        return not self._done

    def _account(self, n: int) -> None:
        if self._left is None:  # up to the end of the connection
            self._done = n == 0
            return
        if n == 0:
            raise RemoteProtocolError(
                f"peer closed the connection {self._chunk - self._left} bytes into a "
                f"{self._chunk}-byte body"
            )
        self._left -= n
        if self._left == 0 and not self._chunked:
            self._done = True

    def _next_chunk(self) -> None:
        """Read the CRLF ending the last chunk (if any) and the next chunk's size line; at
        the last chunk, its trailers, and the body is done."""
        rfile = self._rfile
        assert rfile is not None
        if self._chunk and rfile.readline(3) not in (b"\r\n", b"\n"):
            raise RemoteProtocolError("chunk not followed by CRLF")
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise RemoteProtocolError("peer closed the connection inside a chunked body")
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError as e:
            raise RemoteProtocolError(f"bad chunk size line {line[:40]!r}") from e
        if size < 0:
            raise RemoteProtocolError(f"bad chunk size line {line[:40]!r}")
        if size == 0:
            while True:  # trailers, then the blank line
                t = rfile.readline(_MAX_LINE + 1)
                if not t:
                    raise RemoteProtocolError("peer closed the connection inside chunk trailers")
                if t in (b"\r\n", b"\n"):
                    break
            self._done = True
            return
        self._chunk = self._left = size


def _read_failure(e: OSError) -> TransportError:
    """A socket failure while reading a body, as this module's error."""
    if isinstance(e, TimeoutError):
        return ReadTimeout("timed out reading the response body")
    return ReadError(str(e) or type(e).__name__)


# -- the client -----------------------------------------------------------------------------------


class Client:
    """Requests against ``base_url`` (paths like ``/v2/`` resolve against it); thread-safe.

    ``verify``: an SSL context, a callable making one when the first TLS connection starts, or
    False (TLS without certificate checks, ``--insecure``). ``on_request`` hooks see each
    request just before it is sent (tests count calls with them).
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        verify: ssl.SSLContext | Callable[[], ssl.SSLContext] | bool = True,
        timeout: Timeout | None = None,
        headers: dict[str, str] | None = None,
        trust_env: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout or Timeout(60.0)
        self.headers = {"Accept": "*/*", "Accept-Encoding": "identity", **(headers or {})}
        self.on_request: list[Callable[[Request], None]] = []
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()
        self._trust_env = trust_env
        self._pool = _Pool()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def close(self) -> None:
        self._pool.close()

    # -- public calls ------------------------------------------------------------------------

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        data: dict[str, str] | None = None,
        timeout: Timeout | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> Response:
        """Send one request (and its redirects when asked); the body is read unless ``stream``."""
        full = join_url(self.base_url + "/", url) if self.base_url else url
        if params:
            full = merge_params(full, params)
        h = _merged(self.headers, headers or {})
        if data is not None:
            content = urlencode(data).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        t = timeout or self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            req = Request(method, full, h, content)
            for hook in list(self.on_request):
                hook(req)
            resp = self._send(req, t)
            loc = resp.headers.get("Location")
            if not (follow_redirects and resp.status_code in _REDIRECTS and loc):
                break
            discard(resp)
            nxt = join_url(full, loc)
            if _origin(nxt) != _origin(full):
                h = {k: v for k, v in h.items() if k.lower() != "authorization"}
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else method
                content = None
                h = {
                    k: v
                    for k, v in h.items()
                    if k.lower() not in ("content-type", "content-length")
                }
            full = nxt
        else:
            raise RemoteProtocolError(f"more than {MAX_REDIRECTS} redirects")
        if not stream:
            try:
                resp.read()
            except BaseException:
                resp.close()
                raise
        return resp

    # -- one exchange ----------------------------------------------------------------------------

    def _send(self, req: Request, t: Timeout) -> Response:
        scheme, host, port = _origin(req.url)
        proxy = proxy_for(scheme, host, port) if self._trust_env else None
        key = (scheme, host, port, proxy or "")
        replayable = req.content is None or isinstance(req.content, bytes | bytearray)
        wire = _wire(req, scheme, host, port, proxy)  # a bad header is refused before connecting
        while True:
            conn = self._pool.take(key)
            fresh = conn is None
            if conn is None:
                conn = self._open(scheme, host, port, proxy, t)
            try:
                return self._exchange(conn, key, req, wire, t)
            except _StaleConnection as e:
                conn.close()
                if fresh or not replayable:
                    raise e.error from e.error.__cause__
            except BaseException:
                conn.close()
                raise

    def _exchange(
        self,
        conn: _Conn,
        key: tuple[str, str, int, str],
        req: Request,
        wire: _Wire,
        t: Timeout,
    ) -> Response:
        data, content, body, h = wire
        sock = conn.sock
        sent_error: TransportError | None = None
        try:
            sock.settimeout(t.write)
            _sendall(sock, data)
            if isinstance(content, bytes | bytearray):
                _sendall(sock, content)
            elif body is not None:
                _send_body(sock, body, h)
        except _SendFailed as f:
            e = f.error
            if isinstance(e, TimeoutError):
                raise WriteTimeout("timed out sending the request") from e
            if conn.reused and not f.body_started:
                raise _StaleConnection(_with_cause(WriteError(str(e)), e)) from e
            # the server may have answered early (and closed): that answer says more
            sent_error = _with_cause(WriteError(str(e) or type(e).__name__), e)
        try:
            sock.settimeout(t.read)
            status, reason, headers, version = _read_head(conn)
        except TimeoutError as e:
            if sent_error is not None:
                raise sent_error from sent_error.__cause__
            raise ReadTimeout("timed out waiting for the response") from e
        except RemoteProtocolError as e:
            if sent_error is not None:
                raise sent_error from sent_error.__cause__
            if conn.reused and "without sending a response" in str(e):
                raise _StaleConnection(e) from e
            raise
        except (ConnectionError, OSError) as e:
            if sent_error is not None:
                raise sent_error from sent_error.__cause__
            if conn.reused:
                raise _StaleConnection(_with_cause(ReadError(str(e)), e)) from e
            raise ReadError(str(e) or type(e).__name__) from e
        body, keep = _body_reader(conn, req.method, status, headers, version, t.read)
        keep = keep and sent_error is None
        pool = self._pool

        def release(reusable: bool) -> None:
            if reusable and keep:
                pool.give(key, conn)
            else:
                conn.close()

        return Response(status, reason, headers, req.url, body, release)

    def _open(self, scheme: str, host: str, port: int, proxy: str | None, t: Timeout) -> _Conn:
        if proxy:
            _, phost, pport = _origin(proxy)
            sock = _connect(phost, pport, t.connect, f"proxy {phost}:{pport}")
            if scheme == "https":
                _tunnel(sock, host, port, proxy, t)
        else:
            sock = _connect(host, port, t.connect)
        if scheme == "https":
            sock.settimeout(t.connect)
            try:
                sock = self._context().wrap_socket(sock, server_hostname=host)
            except TimeoutError as e:
                sock.close()
                raise ConnectTimeout(f"TLS handshake with {host} timed out") from e
            except OSError as e:
                sock.close()
                raise ConnectError(f"TLS handshake with {host} failed: {e}") from e
        return _Conn(sock)

    def _context(self) -> ssl.SSLContext:
        with self._tls_lock:
            if self._tls is None:
                import ssl

                v = self._verify
                if v is False:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                elif v is True:
                    ctx = ssl.create_default_context()
                elif isinstance(v, ssl.SSLContext):
                    ctx = v
                else:
                    ctx = v()
                self._tls = ctx
            return self._tls


#: a request as it goes out: the head (with a small body appended), a larger bytes body sent
#: after it, or an iterated body, and the header fields sent
_Wire = tuple[bytes, "bytes | bytearray | None", "Iterable[bytes] | None", dict[str, str]]


def _wire(req: Request, scheme: str, host: str, port: int, proxy: str | None) -> _Wire:
    h = dict(req.headers)
    target = _target(req.url)
    if proxy and scheme == "http":
        target = quote(req.url.split("#")[0], safe=_TARGET_SAFE)  # absolute-form
        h.update(_proxy_auth(proxy))
    content = req.content
    body: Iterable[bytes] | None = None
    if isinstance(content, bytes | bytearray):
        h = _merged(h, {"Content-Length": str(len(content))})
    elif content is not None:
        body, content = content, None
        if not any(k.lower() == "content-length" for k in h):
            h["Transfer-Encoding"] = "chunked"
    elif req.method in ("POST", "PUT", "PATCH") and not any(
        k.lower() == "content-length" for k in h
    ):
        h["Content-Length"] = "0"
    head = [f"{req.method} {target} HTTP/1.1", f"Host: {_host_header(scheme, host, port)}"]
    head += [_field(k, v) for k, v in h.items() if k.lower() != "host"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    if content is not None and len(content) <= 256 * 1024:
        data, content = data + bytes(content), None
    return data, content, body, h


class _StaleConnection(Exception):
    """A pooled connection the server had closed: the request goes again on a new one."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def _with_cause(err: TransportError, cause: BaseException) -> TransportError:
    err.__cause__ = cause
    return err


class _SendFailed(Exception):
    """The socket refused bytes (``error``); ``body_started``: some of an iterated body went."""

    def __init__(self, error: OSError, body_started: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.body_started = body_started


def _sendall(sock: socket.socket, data: bytes | bytearray, body_started: bool = False) -> None:
    try:
        sock.sendall(data)
    except OSError as e:  # timeouts, resets, broken pipes; not errors of the body's source
        raise _SendFailed(e, body_started) from e


def _send_body(sock: socket.socket, body: Iterable[bytes], headers: dict[str, str]) -> None:
    """Send an iterated body: chunked, or exactly its declared ``Content-Length``. Errors of the
    iterator itself (the source of the bytes) pass through unchanged."""
    declared = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    if declared is None:
        for chunk in body:
            if chunk:
                _sendall(sock, b"%x\r\n%b\r\n" % (len(chunk), chunk), True)
        _sendall(sock, b"0\r\n\r\n", True)
        return
    want = int(declared)
    sent = 0
    for chunk in body:
        sent += len(chunk)
        if sent > want:
            raise LocalProtocolError(f"request body longer than its Content-Length {want}")
        _sendall(sock, chunk, True)
    if sent < want:
        raise LocalProtocolError(
            f"request body of {sent} bytes, shorter than its Content-Length {want}"
        )


def _merged(base: dict[str, str], top: dict[str, str]) -> dict[str, str]:
    """``top`` over ``base``, header names compared without case."""
    if not top:
        return dict(base)
    low = {k.lower() for k in top}
    return {**{k: v for k, v in base.items() if k.lower() not in low}, **top}


def discard(resp: Response) -> None:
    """Read what is left of a response's body (so its connection can serve again) and close it;
    a body that breaks off only costs the connection."""
    try:
        resp.read()
    except HTTPError:
        pass
    resp.close()


def _proxy_auth(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _tunnel(sock: socket.socket, host: str, port: int, proxy: str, t: Timeout) -> None:
    """``CONNECT host:port`` through an HTTP proxy; the socket then carries the TLS session."""
    authority = _host_header("https", host, port) if port != 443 else f"{host}:443"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{k}: {v}" for k, v in _proxy_auth(proxy).items()]
    try:
        sock.settimeout(t.connect)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        conn = _Conn(sock)
        status, reason, _, _ = _read_head(conn)
    except TimeoutError as e:
        sock.close()
        raise ConnectTimeout(f"proxy did not answer CONNECT to {authority}") from e
    except (OSError, RemoteProtocolError) as e:
        sock.close()
        raise ConnectError(f"proxy CONNECT to {authority} failed: {e}") from e
    conn.rfile.close()  # nothing is buffered past the head: the TLS server speaks second
    if status != 200:
        sock.close()
        raise ConnectError(f"proxy refused CONNECT to {authority}: HTTP {status} {reason}")


__all__ = [
    "Client",
    "ConnectError",
    "ConnectTimeout",
    "HTTPError",
    "Headers",
    "ReadTimeout",
    "Request",
    "Response",
    "StreamError",
    "Timeout",
    "TimeoutException",
    "TransportError",
    "WriteTimeout",
    "join_url",
    "merge_params",
    "proxy_for",
]
