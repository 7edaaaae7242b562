"""A second process for the content visitors: the pass's other core.

Visitors that read file contents and keep per-layer results (the secret scan, the catalogers:
``Visitor.partner``) do most of a ``check``'s work, and their results for a layer depend on
that layer alone. So the pass forks a partner before it reads the first layer: the partner walks
the same layers from the same local files with those visitors only and sends each layer's
``layer_result`` values back; meanwhile the pass walks every layer with the other visitors and,
once a layer's results arrive, hands them to the content visitors exactly as on a layer-cache
hit (``restore_layer``, then the layer's entries replayed without content). The results are the
ones the layer cache stores, so what a run derives is the same with or without a partner, and
the same records go into the cache.

When it is used (``usable``): only for layers that lie in local files (a registry blob would
be downloaded twice), on a machine with two or more usable cores, from the main thread of a
process (the service's worker threads never fork), and for images big enough to pay for the
fork (``MIN_BYTES``). ``IMAGEWISE_PARTNER=0`` turns it off, ``=1`` on whatever the size.

Trust: the partner reads the local files as the pass does (mapped under its own read lease, or
streamed through the source's digest-verifying reader) and the pass stores nothing in the cache
before its own digest checks have passed. The partner is only an accelerator: when it fails in
any way (an error, a crash, a result that cannot be sent) the pass reads that layer again for
its content visitors, in its own process, and the remaining layers as if there were no partner.

Nothing in the partner touches standard streams, threads or locks of the parent (it writes only
its pipe and ends with ``os._exit``, running no ``atexit`` handler and no ``finally`` of the
caller).
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagewise.layers.model import Visitor
    from imagewise.sources.base import Layer

#: images whose layers hold fewer bytes than this are read in one process (the fork and the
#: replay would cost more than they save)
MIN_BYTES = 32 * 1024 * 1024
_HEAD = struct.Struct("<q")


def usable(layers: Sequence[Layer]) -> bool:
    """Whether a partner process may read ``layers`` (see the module docstring).

    ``IMAGEWISE_PARTNER=0`` never uses one; ``=1`` uses one whatever the size and the number of
    cores (the test suite's second run does, to hold every pass to the same results both ways).
    """
    setting = os.environ.get("IMAGEWISE_PARTNER", "").strip().lower()
    if setting in ("0", "off", "no", "false"):
        return False
    forced = setting in ("1", "on", "yes", "true")
    if not layers or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if not forced and (_cores() < 2 or sum(layer.size for layer in layers) < MIN_BYTES):
        return False
    return all(layer.region() is not None for layer in layers)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Partner:
    """The forked partner: ``results(index)`` gives one layer's results, in the order of
    ``visitors``, or ``None`` when the partner could not (then read the layer yourself).

    ``read(layer, visitors)`` is how the partner reads one layer (the pass's own reader)."""

    def __init__(
        self,
        layers: Sequence[Layer],
        visitors: Sequence[Visitor],
        read: Callable[[Layer, Sequence[Visitor]], None],
    ) -> None:
        self.visitors = list(visitors)
        self._indexes = {layer.index for layer in layers}
        self._failed = False
        self._buf = b""
        r, w = os.pipe()
        _widen(w)
        pid = os.fork()
        if pid == 0:  # the partner
            code = 1
            try:
                os.close(r)
                code = _serve(w, layers, self.visitors, read)
            finally:
                os._exit(code)
        os.close(w)
        self._pid = pid
        self._fd = r

    def has(self, index: int) -> bool:
        """Whether the partner is (still) reading layer ``index``."""
        return not self._failed and index in self._indexes

    def results(self, index: int) -> list[Any] | None:
        """Layer ``index``'s results (waits for them); ``None``: the partner failed."""
        if not self.has(index):
            return None
        while True:
            frame = self._frame()
            if frame is None:
                self._fail()
                return None
            got, values = frame
            if got == index:
                return values
            if got > index:  # cannot happen (layers are sent in order): do not trust the rest
                self._fail()
                return None

    def _frame(self) -> tuple[int, list[Any]] | None:
        head = self._read(_HEAD.size)
        if head is None:
            return None
        (length,) = _HEAD.unpack(head)
        if length < 0:  # the partner's own report that it failed
            return None
        body = self._read(length)
        if body is None:
            return None
        try:
            index, values = pickle.loads(body)  # noqa: S301 - our own child, over our own pipe
        except Exception:  # noqa: BLE001 - a garbled frame: read the layer ourselves
            return None
        if type(index) is not int or type(values) is not list:
            return None
        if len(values) != len(self.visitors):
            return None
        return index, values

    def _read(self, n: int) -> bytes | None:
        parts = []
        while n > 0:
            try:
                data = os.read(self._fd, min(n, 1 << 20))
            except OSError:
                return None
            if not data:
                return None
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def _fail(self) -> None:
        self._failed = True
        self.close()

    def close(self) -> None:
        """Stop the partner (if still running) and reap it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            import signal

            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass
            self._pid = 0

    def __del__(self) -> None:  # a pass that never reached its ``finally``
        if getattr(self, "_pid", 0):
            self.close()


def _serve(
    fd: int,
    layers: Sequence[Layer],
    visitors: Sequence[Visitor],
    read: Callable[[Layer, Sequence[Visitor]], None],
) -> int:
    """The partner's work: each layer read, its results sent; 0 when all went."""
    try:
        for layer in layers:
            i = layer.index
            for v in visitors:
                v.begin_layer(i, layer)
            read(layer, visitors)
            values = [v.layer_result(i, layer) for v in visitors]
            for v in visitors:
                v.end_layer(i, layer)
            body = pickle.dumps((i, values), protocol=pickle.HIGHEST_PROTOCOL)
            _write(fd, _HEAD.pack(len(body)) + body)
    except BaseException:  # noqa: BLE001 - the pass reads the layer itself
        if os.environ.get("IMAGEWISE_DEBUG"):
            import traceback

            os.write(2, ("imagewise partner: " + traceback.format_exc()).encode(errors="replace"))
        try:
            _write(fd, _HEAD.pack(-1))
        except OSError:
            pass
        return 1
    return 0


def _widen(fd: int) -> None:
    """Let the pipe hold a layer's results while the pass is still walking that layer."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass  # the default size: the partner may wait for the pass now and then


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
