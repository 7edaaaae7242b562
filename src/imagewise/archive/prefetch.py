"""Decompress ahead in a background thread, so decoding overlaps with walking and analysis.

isal and zstandard release the GIL while they decode, so on a machine with a spare core the
layer walk costs little more wall time than decompression alone. The thread stays at most
``depth`` chunks (about 1 MiB each) ahead: memory stays bounded. Errors raised while decoding
(``LayerReadError``, ``DigestMismatch``) are re-raised in the reading thread, in order.

``Prefetcher`` offers the walker's ``read_chunk()``; ``close()`` stops the thread (a read that is
in flight finishes first) and closes the underlying stream. ``on_chunk`` runs in the reading
thread after each chunk (progress is reported from there, never from the decoding thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import IO, Any, Self

#: chunks decoded ahead of the reader
DEPTH = 4
_JOIN_TIMEOUT = 10.0


class Prefetcher:
    def __init__(
        self, stream: IO[bytes], depth: int = DEPTH, on_chunk: Callable[[], None] | None = None
    ) -> None:
        self._stream: Any = stream
        self._on_chunk = on_chunk  # called in the reading thread after each chunk
        self._next = getattr(stream, "read_chunk", None) or (lambda: stream.read(1 << 20))
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self.position = 0
        self._thread = threading.Thread(target=self._run, name="imagewise-decompress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._next()
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the reader, raised there
            self._put(e)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read_chunk(self, hint: int | None = None) -> bytes:
        """The next decoded chunk (b"" at the end); ``hint`` is ignored (chunks are ready-made)."""
        if self._done:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        self.position += len(item)
        if self._on_chunk is not None:
            self._on_chunk()
        return item

    def read(self, n: int = -1) -> bytes:  # pragma: no cover - the walker uses read_chunk
        raise NotImplementedError("Prefetcher supports read_chunk() only")

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(_JOIN_TIMEOUT)
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
