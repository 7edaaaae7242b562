"""The contract of the single pass over each layer: tar entries and the visitors that read them.

The OCI layer rules (whiteouts, opaque directories, replacement) live in :mod:`imagewise.layers.merged`.

Paths are normalised: relative to the image root, no leading ``/`` or ``./``, no trailing ``/``,
``..`` resolved (an entry that would leave the root is rejected by the walker), e.g. ``etc/passwd``.
The root directory itself is ``""``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.archive.entry import Entry, Kind

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.sources.base import Image, Layer

__all__ = ["Entry", "Kind", "Visitor"]  # Entry and Kind are archive's, shown here


class Visitor:
    """An analyzer that subscribes to the single pass. Subclass and override what you need.

    ``wants_content(entry)`` says whether the visitor will read the entry's content, so the walker
    can skip content nobody needs. A visitor must not keep an ``Entry`` past ``visit``; copy the
    fields it needs.
    """

    #: bump when results for the same layer bytes would change; part of the layer cache key
    version: str = "1"
    name: str = "visitor"

    def begin_image(self, image: Image) -> None:
        pass

    def begin_layer(self, index: int, layer: Layer) -> None:
        pass

    def wants_content(self, entry: Entry) -> bool:
        return False

    def visit(self, entry: Entry) -> None:
        pass

    #: ``visit_batch`` is this visitor's own (a loop over columns): a pass whose visitors all
    #: have one walks layers read in place in batches (``archive.batch``)
    batches: bool = False

    def visit_batch(self, batch: EntryBatch) -> None:
        """Visit a run of plain entries (no whiteouts, no hard links) given as columns; the
        same as visiting ``batch.entries()`` one by one. A visitor that sets ``batches`` reads
        any content it wants itself (``batch.located``, ``batch.content``)."""
        for entry in batch.entries():
            self.visit(entry)

    def end_layer(self, index: int, layer: Layer) -> None:
        pass

    def end_image(self, image: Image) -> None:
        pass

    # --- layer result cache (optional) -------------------------------------------------------
    # A visitor that reads content can make its per-layer work cacheable: ``layer_result`` returns
    # a JSON-able value holding everything it derived from this layer's *content*; on a cache hit
    # the pass calls ``restore_layer`` with that value instead, then replays the layer's entries
    # with no content (``Entry.open`` raises, ``Entry.read`` returns b""). Metadata-only visitors
    # need nothing: replayed entries carry every header field. ``cacheable = False`` opts out
    # (the pass then reads the layer for real).
    # Order per layer: begin_layer, [restore_layer on a hit], visit..., layer_result (on a miss,
    # to store), end_layer. So per-layer state must still be held when layer_result is called.
    # The value may be stored only at the end of the pass (once the layer's digest check has
    # passed): return a fresh object, never one the visitor keeps mutating. ``None`` means
    # nothing to keep: the layer is then read again next time (a visitor that does not override
    # ``layer_result`` stores nothing and needs nothing to be replayed). ``restore_layer`` gets
    # exactly what this version of the visitor returned for a layer with the same content.
    cacheable: bool = True
    # --- the partner process (optional, see ``layers/partner``) ------------------------------
    # ``offload = "layer"``: its content work may run in the partner, layer by layer: its
    # ``layer_result`` depends on that layer alone and, through ``restore_layer`` and the
    # replayed entries, gives the pass everything reading the content would have (worth it for
    # heavy content work: the secret scan).
    # ``offload = "image"``: the whole visitor may run in the partner: what its callers read
    # after the pass is ``image_result()`` (picklable, taken after ``end_image``), handed to the
    # pass's own instance through ``adopt_image_result`` instead of any visit (dive's figures).
    offload: str = ""

    def image_result(self) -> object:
        return None

    def adopt_image_result(self, value: object) -> None:
        pass

    def layer_result(self, index: int, layer: Layer) -> object:
        return None

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        pass
