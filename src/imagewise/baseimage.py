"""Which layers of an image come from its base image: one rule for the SBOM, scan and analysis.

``base_layer_count(image)``, first rule that applies:

1. the image config label or manifest annotation ``org.opencontainers.image.base.layers``
   (non-standard, honoured when present);
2. history: the base ends at the last empty-layer ``CMD``/``ENTRYPOINT`` history entry (the
   instruction official base images end with) that still has layer-creating entries after it;
   the layers before that point are the base;
3. history written by buildah: the first instruction of a Dockerfile's stage records
   ``FROM <base image>`` as its comment (later ones ``FROM <12-hex image id>``); the layers
   before the last such entry are the base;
4. history: layer 0 is ``ADD file:<hash> in /`` (how the classic builder records a base image's
   root filesystem) and more layers follow: the base is that one layer.

An image whose only ``CMD``/``ENTRYPOINT`` entry is its last one looks like a base image itself,
and one matching no rule gives no boundary: in both cases the base is unknown (``None``).
(``org.opencontainers.image.base.digest`` names the base but not its layer count, so it cannot
decide the boundary offline.)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from imagewise.sources.base import Image

LABEL = "org.opencontainers.image.base.layers"
_BASE_END = re.compile(r"^(/bin/sh -c )?(#\(nop\)\s*)?(CMD|ENTRYPOINT)\b", re.IGNORECASE)
_BUILDAH_FROM = re.compile(r"^FROM (?![0-9a-f]{12}$)\S+$")
_ROOTFS = re.compile(r"^(/bin/sh -c )?(#\(nop\)\s*)?ADD file:[0-9a-f]+ in /\s*$")


class BaseLayers(NamedTuple):
    """How many layers belong to the base image (None: unknown) and the rule that decided it."""

    layers: int | None
    rule: str


def base_layer_count(image: Image) -> BaseLayers:
    """The number of base layers and the rule that decided it (layers None when unknown)."""
    for where, values in (
        ("label", image.config.labels),
        ("annotation", image.manifest.annotations),
    ):
        raw = values.get(LABEL, "")
        if raw.isdigit():
            return BaseLayers(int(raw), f"{where} {LABEL}")
    history = image.config.history
    layer_no = 0
    ends: list[int] = []
    stage_starts: list[int] = []
    for h in history:
        if h.empty_layer and _BASE_END.match(h.created_by.strip()):
            ends.append(layer_no)
        if not h.empty_layer:
            if _BUILDAH_FROM.match(h.comment.strip()):
                stage_starts.append(layer_no)
            layer_no += 1
    inner = [n for n in ends if 0 < n < layer_no]
    if inner:
        return BaseLayers(
            inner[-1], "history: layers before the last CMD/ENTRYPOINT followed by more layers"
        )
    starts = [n for n in stage_starts if n > 0]
    if starts:
        return BaseLayers(
            starts[-1], "history: layers before the buildah FROM comment of the last stage"
        )
    layers = [h for h in history if not h.empty_layer]
    if len(layers) > 1 and _ROOTFS.match(layers[0].created_by.strip()):
        return BaseLayers(
            1, "history: layer 0 adds the base image's root filesystem (ADD file:... in /)"
        )
    if ends:
        return BaseLayers(
            None, "history ends with its only CMD/ENTRYPOINT: the image looks like a base image"
        )
    return BaseLayers(None, "no base-image boundary in history")
