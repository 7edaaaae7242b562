"""A blob download as a file object: streamed, digest-verified, resumed after a dropped connection.

The digest is checked when the stream reaches its end: a mismatch raises
:class:`~imagewise.errors.DigestMismatch` and is never retried, because the same bytes would come
back. A connection that breaks mid-body is resumed with a ``Range`` request from the byte reached.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.oci.digest import Digest, DigestingReader
from imagewise.registry.errors import is_stall, stall_text, transport_error
from imagewise.registry.http import Response, StreamError, TransportError
from imagewise.registry.transfer import STALL_ATTEMPTS, Transfer

if TYPE_CHECKING:
    from typing_extensions import Buffer


class _Body:
    """``read(n)`` over an HTTP response body; reopens with ``Range`` when the connection drops
    or the body stalls (no byte for ``transfer.stall`` seconds), saying so to the reporter."""

    def __init__(
        self,
        open_at: Callable[[int], Response],
        host: str,
        attempts: int,
        what: str = "",
        transfer: Transfer | None = None,
    ) -> None:
        self._open_at = open_at
        self._host = host
        self._attempts = attempts
        self._what = what
        self._transfer = transfer if transfer is not None else Transfer()
        self._timed = self._transfer.timeout is not None
        self._resp: Response | None = open_at(0)
        self._buf = b""
        self._off = 0  # consumed part of _buf
        self._received = 0  # body bytes received so far (where a resumed request starts)

    def _next_chunk(self) -> bytes:
        data = self._pull(None)
        assert isinstance(data, bytes)
        return data

    def _pull(self, into: memoryview | None) -> bytes | int:
        """One read of the response (``read1``, or ``readinto(into)``), reopened with a
        ``Range`` request when the connection drops or stalls."""
        failures = 0
        stalls = 0
        t = self._transfer
        while True:
            try:
                resp = self._resp
                assert resp is not None
                got: bytes | int
                if into is None:
                    got = resp.read1()
                    n = len(got)
                else:
                    got = n = resp.readinto(into)
                self._received += n
                if self._timed and n:
                    t.check(f"{self._what} at registry {self._host}")
                return got
            except (TransportError, StreamError) as e:
                failures += 1
                self._close_resp()
                if self._timed and t.expired():
                    raise t.out_of_time(f"{self._what} at registry {self._host}") from e
                stalled = is_stall(e)
                stalls += stalled
                if failures >= self._attempts or (stalled and stalls >= STALL_ATTEMPTS):
                    raise transport_error(
                        self._host, e, self._what, t.stall, stalls if stalled else failures
                    ) from e
                if stalled:
                    why = stall_text(self._host, self._what, t.stall)
                    nth, tries = stalls + 1, STALL_ATTEMPTS
                else:
                    why = str(transport_error(self._host, e, self._what))
                    nth, tries = failures + 1, self._attempts
                t.wait(0, f"{why} after {self._received} bytes", self._what, nth, tries)
                self._resp = self._open_at(self._received)

    def readinto(self, buffer: memoryview) -> int:
        """Bytes read into the start of ``buffer`` (what is left of an earlier ``read`` first,
        else one read of the connection); 0 at the end of the body."""
        if self._off < len(self._buf):
            piece = self._buf[self._off : self._off + len(buffer)]
            self._off += len(piece)
            buffer[: len(piece)] = piece
            return len(piece)
        n = self._pull(buffer)
        assert isinstance(n, int)
        return n

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with ``n < 0``); fewer than ``n`` only at the end of the body."""
        if n is None or n < 0:
            parts = [self._buf[self._off :]]
            self._buf, self._off = b"", 0
            while chunk := self._next_chunk():
                parts.append(chunk)
            return b"".join(parts)
        parts = []
        want = n
        while want > 0:
            if self._off >= len(self._buf):
                self._buf, self._off = self._next_chunk(), 0
                if not self._buf:
                    break
            if self._off == 0 and want >= len(self._buf):
                piece, self._buf = self._buf, b""
            else:
                piece = self._buf[self._off : self._off + want]
                self._off += len(piece)
            parts.append(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _close_resp(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._close_resp()


class BlobReader(io.RawIOBase):
    """Reads a blob, hashing as it goes; at EOF the digest and size must match the descriptor."""

    def __init__(self, body: _Body, digest: Digest, size: int, where: str) -> None:
        super().__init__()
        self._body = body
        self._dr = DigestingReader(body, digest, where)
        self._digest = digest
        self._size = size
        self._where = where
        self._verified = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._dr.read(n if n is not None else -1)
        self._counted(end=n is None or n < 0 or len(data) < n)
        return data

    def readinto(self, b: Buffer) -> int:
        """Bytes read into ``b`` (at most one read of the connection); 0 at the end of the
        blob, which is checked then."""
        view = memoryview(b).cast("B")
        n = self._dr.readinto(view)
        self._counted(end=not n and len(view) > 0)
        return n

    def readall(self) -> bytes:
        return self.read(-1)

    def _counted(self, end: bool) -> None:
        """After a read: more bytes than the descriptor's size is a mismatch at once; at the
        end of the blob, its digest and size are checked."""
        if self._size >= 0 and self._dr.count > self._size:
            raise DigestMismatch(str(self._digest), f"more than {self._size} bytes", self._where)
        if end:
            self._verify()

    def _verify(self) -> None:
        if self._verified:
            return
        self._dr.check()  # raises DigestMismatch
        if self._size >= 0 and self._dr.count != self._size:
            raise ImageFormatError(
                f"{self._where}: expected {self._size} bytes, got {self._dr.count}"
            )
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def open_blob_stream(
    open_at: Callable[[int], Response],
    host: str,
    attempts: int,
    digest: Digest,
    size: int,
    where: str,
    transfer: Transfer | None = None,
) -> BlobReader:
    return BlobReader(_Body(open_at, host, attempts, where, transfer), digest, size, where)
