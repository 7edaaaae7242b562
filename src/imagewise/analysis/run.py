"""Analyse an image in one pass over its layers: dive's figures, reclaimable bytes, waste."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from imagewise.analysis.attribution import LayerRef, final_findings, hidden_findings
from imagewise.analysis.dive import DiveEfficiency
from imagewise.analysis.final import final_facts, size_tree
from imagewise.analysis.model import ImageAnalysis, LayerReport
from imagewise.analysis.overlay import HASH_MIN_BYTES, OverlayState
from imagewise.progress import NULL, Reporter

if TYPE_CHECKING:
    from imagewise.layers.model import Visitor
    from imagewise.sources.base import Image


class EfficiencyVisitors:
    """The visitors the efficiency analysis needs; add ``.all`` to a shared pass (``check``
    runs them next to the SBOM and secrets visitors) and call :meth:`result` afterwards."""

    def __init__(self, hash_min_bytes: int = HASH_MIN_BYTES) -> None:
        self.dive = DiveEfficiency()
        # the final facts are taken while dive may still be running in the partner
        self.overlay = OverlayState(hash_min_bytes, facts_at_end=True)

    @property
    def all(self) -> list[Visitor]:
        return [self.dive, self.overlay]

    def result(self, image: Image) -> ImageAnalysis:
        from imagewise.baseimage import base_layer_count
        from imagewise.secrets.mask import redact

        base = base_layer_count(image).layers or 0
        # every output of the analysis shows the history with its secrets masked
        refs = [
            LayerRef(
                layer.index,
                str(layer.diff_id or layer.digest),
                redact(layer.created_by),
                base=layer.index < base,
            )
            for layer in image.layers
        ]
        meta = [
            (str(layer.digest), str(layer.diff_id or ""), layer.media_type, layer.size)
            for layer in image.layers
        ]
        return build_analysis(
            image.reference, str(image.digest), self.dive, self.overlay, refs, meta
        )


def build_analysis(
    reference: str,
    digest: str,
    dive: DiveEfficiency,
    overlay: OverlayState,
    refs: Sequence[LayerRef],
    meta: Sequence[tuple[str, str, str, int]] = (),
) -> ImageAnalysis:
    figures = dive.figures or dive.result()
    n = len(figures.layer_sizes)
    refs = list(refs) + [LayerRef(i, "", "") for i in range(len(refs), n)]
    reclaim = overlay.reclaimable_by_layer(n)
    layers = tuple(
        LayerReport(
            index=i,
            digest=meta[i][0] if i < len(meta) else "",
            diff_id=meta[i][1] if i < len(meta) else refs[i].diff_id,
            created_by=refs[i].created_by,
            media_type=meta[i][2] if i < len(meta) else "",
            compressed_size=meta[i][3] if i < len(meta) else 0,
            size_bytes=figures.layer_sizes[i],
            entries=overlay.layer_entries[i] if i < len(overlay.layer_entries) else 0,
            dive_files=figures.layer_files[i],
            files=overlay.layer_files[i] if i < len(overlay.layer_files) else 0,
            reclaimable_bytes=reclaim[i],
        )
        for i in range(n)
    )
    facts = overlay.final or final_facts(overlay)
    waste = hidden_findings(overlay, refs) + final_findings(facts, refs)
    waste.sort(key=lambda f: (-f.bytes_saved, f.rule, f.location.layer_index or 0))
    return ImageAnalysis(
        reference=reference,
        digest=digest,
        dive=figures,
        reclaimable_bytes=overlay.reclaimable_bytes,
        final_bytes=facts.total_bytes,
        final_files=facts.files,
        layers=layers,
        waste=tuple(waste),
        largest_files=tuple(facts.largest),
        tree_builder=functools.cache(lambda: size_tree(overlay, facts.total_bytes)),
        missing_whiteouts=overlay.missing_whiteouts,
    )


def analyze(
    image: Image,
    reporter: Reporter = NULL,
    hash_min_bytes: int = HASH_MIN_BYTES,
    verify: bool = True,
) -> ImageAnalysis:
    """Read every layer once and return the full analysis (``verify``: see ``run_pass``)."""
    from imagewise.layers.passes import run_pass

    visitors = EfficiencyVisitors(hash_min_bytes)
    run_pass(image, visitors.all, reporter, verify=verify, diff_ids=verify)
    return visitors.result(image)
