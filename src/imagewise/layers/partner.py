"""A second process for the pass: its other core.

Two kinds of visitor may run there (``Visitor.offload``):

* ``"layer"``: visitors that read file contents and keep per-layer results (the secret scan)
  do much of a ``check``'s work, and their results for a layer depend on that
  layer alone. The partner reads the layers the pass will read with those visitors and sends
  each layer's ``layer_result`` values back; the pass walks the layer with the other visitors
  and, once the layer's results arrive, hands them to these exactly as on a layer-cache hit
  (``restore_layer``, then the layer's entries replayed without content). The values are the
  ones the layer cache stores, so what a run derives is the same with or without a partner,
  and the same records go into the cache.
* ``"image"``: visitors whose whole result is a small value (dive's figures) run entirely in
  the partner, over every layer; the pass never visits them and adopts the value at the end
  (``image_result`` there, ``adopt_image_result`` here).

The partner is forked before the pass reads its first layer (and before it starts a thread).

When it is used (``usable``): only for layers that lie in local files (a registry blob would
be downloaded twice), and as ``archive.forking`` allows a second process: two or more usable
cores, the main thread of a process (the service's worker threads never fork), images big
enough to pay for the fork. ``IMAGEWISE_PARTNER=0`` turns it off, ``=1`` on whatever the size.

Trust: the partner reads the local files as the pass does (mapped under its own read lease, or
streamed through the source's digest-verifying reader) and the pass stores nothing in the cache
before its own digest checks have passed. The partner is only an accelerator: when it fails in
any way (an error, a crash, a result that cannot be sent) the pass does that work itself, in its
own process: the layer again for the ``"layer"`` visitors (and the rest as if there were no
partner), every layer again for the ``"image"`` ones.

Nothing in the partner touches standard streams, threads or locks of the parent (it writes only
its pipe and ends with ``os._exit``, running no ``atexit`` handler and no ``finally`` of the
caller).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from imagewise.archive.forking import (
    FAILED,
    fork_child,
    frame,
    read_frame,
    reap,
    report,
    write_all,
)

if TYPE_CHECKING:
    from imagewise.layers.model import Visitor
    from imagewise.sources.base import Image, Layer


def usable(layers: Sequence[Layer]) -> bool:
    """Whether a partner process may read ``layers``: all of them lie in local files and a
    second process may read their bytes (``forking.allowed``, which ``IMAGEWISE_PARTNER``
    decides: ``0`` never, ``1`` whatever the size and the number of cores)."""
    from imagewise.archive import forking

    if not layers or not forking.allowed(sum(layer.size for layer in layers)):
        return False
    return all(layer.region() is not None for layer in layers)


class Partner:
    """The forked partner.

    It reads ``layers`` (in order) with the visitors ``whole`` (``offload = "image"``) and,
    for the layers ``reads``, ``each`` (``offload = "layer"``). ``results(index)`` gives one
    layer's results for ``each``, ``image_results()`` the image results of ``whole`` (after the
    last layer); either is ``None`` when the partner could not give them (then do that work
    yourself). ``read(layer, visitors)`` is how the partner reads one layer (the pass's own
    reader)."""

    def __init__(
        self,
        image: Image,
        layers: Sequence[Layer],
        each: Sequence[Visitor],
        reads: Sequence[Layer],
        whole: Sequence[Visitor],
        read: Callable[[Layer, Sequence[Visitor]], None],
    ) -> None:
        self.each = list(each)
        self.whole = list(whole)
        self._indexes = {layer.index for layer in reads} if self.each else set()
        self._failed = False
        r, w = os.pipe()
        _widen(w)

        def serve() -> int:  # in the partner
            return _serve(w, image, layers, self.each, self._indexes, self.whole, read)

        try:
            pid = fork_child(serve, close=(r,))
        except OSError:
            os.close(r)
            os.close(w)
            raise
        os.close(w)
        self._pid = pid
        self._fd = r

    def has(self, index: int) -> bool:
        """Whether the partner is (still) reading layer ``index`` for ``each``."""
        return not self._failed and index in self._indexes

    def results(self, index: int) -> list[Any] | None:
        """Layer ``index``'s results for ``each`` (waits for them); ``None``: it failed."""
        if not self.has(index):
            return None
        return self._until(("layer", index), len(self.each))

    def image_results(self) -> list[Any] | None:
        """The image results of ``whole`` (waits for them); ``None``: the partner failed."""
        if self._failed or not self.whole:
            return None
        return self._until(("image", -1), len(self.whole))

    def _until(self, want: tuple[str, int], count: int) -> list[Any] | None:
        """Frames read up to the one tagged ``want``; later layers cannot come before it."""
        while True:
            frame = self._frame()
            if frame is None or (frame[0][0] == "image" and want[0] == "layer"):
                break
            tag, values = frame
            if tag == want:
                if len(values) != count:
                    break
                return values
            if tag[0] == want[0] == "layer" and tag[1] > want[1]:
                break  # sent out of order: cannot happen; trust nothing further
        self._fail()
        return None

    def _frame(self) -> tuple[tuple[str, int], list[Any]] | None:
        _, body = read_frame(self._fd)  # no body: its end, or its own report that it failed
        if body is None:
            return None
        try:
            kind, index, values = pickle.loads(body)  # noqa: S301 - our own child, our own pipe
        except Exception:  # noqa: BLE001 - a garbled frame: do the work ourselves
            return None
        if kind not in ("layer", "image") or type(index) is not int or type(values) is not list:
            return None
        return (kind, index), values

    def _fail(self) -> None:
        self._failed = True
        self.close()

    def close(self) -> None:
        """Stop the partner (if still running) and reap it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            reap(self._pid)
            self._pid = 0

    def __del__(self) -> None:  # a pass that never reached its ``finally``
        if getattr(self, "_pid", 0):
            self.close()


def _serve(
    fd: int,
    image: Image,
    layers: Sequence[Layer],
    each: Sequence[Visitor],
    reads: set[int],
    whole: Sequence[Visitor],
    read: Callable[[Layer, Sequence[Visitor]], None],
) -> int:
    """The partner's work: each layer read, its results sent; then the image results. 0 when
    all went."""
    try:
        for layer in layers:
            i = layer.index
            mine = i in reads
            visitors = [*whole, *each] if mine else list(whole)
            if not visitors:
                continue
            for v in visitors:
                v.begin_layer(i, layer)
            read(layer, visitors)
            values = [v.layer_result(i, layer) for v in each] if mine else []
            for v in visitors:
                v.end_layer(i, layer)
            if mine:
                _send(fd, ("layer", i, values))
        if whole:
            for v in whole:
                v.end_image(image)
            _send(fd, ("image", -1, [v.image_result() for v in whole]))
    except BaseException:  # noqa: BLE001 - the pass does the work itself
        report("partner")
        try:
            write_all(fd, FAILED)
        except OSError:
            pass
        return 1
    return 0


def _send(fd: int, message: tuple[str, int, list[Any]]) -> None:
    write_all(fd, frame(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)))


def _widen(fd: int) -> None:
    """Let the pipe hold a layer's results while the pass is still walking that layer."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass  # the default size: the partner may wait for the pass now and then
