"""Plain-text (table) rendering of an analysis, a diff and gate results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from imagewise.analysis.attribution import short_instruction
from imagewise.analysis.model import ImageAnalysis
from imagewise.textsafe import safe
from imagewise.units import format_size

if TYPE_CHECKING:
    from imagewise.analysis.diff import ImageDiff
    from imagewise.analysis.gates import GateResult

INEFFICIENT_SHOWN = 15
WASTE_SHOWN = 25
LARGEST_SHOWN = 10


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else "inf" if math.isinf(x) else f"{x * 100:.4f} %"


def render_table(a: ImageAnalysis, width: int = 100) -> str:
    d = a.dive
    out: list[str] = []
    out.append(f"Image: {safe(a.reference)}")
    out.append(f"Digest: {a.digest}")
    out.append(
        f"Layers: {len(a.layers)}   size: {format_size(d.size_bytes)} "
        f"(user {format_size(d.user_size_bytes)})   final filesystem: "
        f"{a.final_files} files, {format_size(a.final_bytes)}"
    )
    out.append("")
    cmd_width = max(20, width - 46)
    out.append(f"{'#':>3}  {'size':>9}  {'entries':>7}  {'reclaim':>9}  created by")
    for layer in a.layers:
        cmd = safe(short_instruction(layer.created_by, cmd_width)) or "(missing)"
        out.append(
            f"{layer.index:>3}  {format_size(layer.size_bytes):>9}  {layer.entries:>7}  "
            f"{format_size(layer.reclaimable_bytes):>9}  {cmd}"
        )
    out.append("")
    out.append("dive-compatible figures:")
    out.append(f"  efficiency:           {_pct(d.efficiency)}")
    out.append(f"  wastedBytes:          {d.wasted_bytes} bytes ({format_size(d.wasted_bytes)})")
    out.append(f"  userWastedPercent:    {_pct(d.user_wasted_percent)}")
    out.append(
        f"reclaimable bytes:      {a.reclaimable_bytes} bytes "
        f"({format_size(a.reclaimable_bytes)}) - in the layers, not in the final filesystem"
    )
    if d.inefficient_files:
        out.append("")
        out.append("Inefficient files (as dive lists them):")
        out.append(f"  {'Count':>5}  {'Wasted Space':>12}  File Path")
        for f in d.inefficient_files[:INEFFICIENT_SHOWN]:
            out.append(f"  {f.count:>5}  {format_size(f.wasted_bytes):>12}  {safe(f.path)}")
        if len(d.inefficient_files) > INEFFICIENT_SHOWN:
            out.append(
                f"  ... and {len(d.inefficient_files) - INEFFICIENT_SHOWN} more "
                f"(--format json lists all)"
            )
    out.append("")
    if a.waste:
        out.append("Waste and fixes (largest first):")
        for w in a.waste[:WASTE_SHOWN]:
            out.append(
                f"  {format_size(w.bytes_saved):>9}  {w.rule}  layer {w.location.layer_index}"
                f"  {safe(w.title)}"
            )
            out.append(f"  {'':>9}  fix: {safe(w.fix)}")
        if len(a.waste) > WASTE_SHOWN:
            out.append(f"  ... and {len(a.waste) - WASTE_SHOWN} more (--format json lists all)")
    else:
        out.append("Waste and fixes: none found")
    if a.largest_files:
        out.append("")
        out.append("Largest files:")
        for fs in a.largest_files[:LARGEST_SHOWN]:
            out.append(f"  {format_size(fs.size):>9}  layer {fs.layer:<3} /{safe(fs.path)}")
    return "\n".join(out)


def render_gates(results: list[GateResult]) -> str:
    lines = ["", "", "Gates:"] + [f"  {r.line()}" for r in results]
    failed = sum(r.status == "FAIL" for r in results)
    passed = sum(r.status == "PASS" for r in results)
    skipped = sum(r.status == "SKIP" for r in results)
    lines.append(f"{'FAIL' if failed else 'PASS'} [pass:{passed} fail:{failed} skip:{skipped}]")
    return "\n".join(lines)


def analysis_table(a: ImageAnalysis, gates: Sequence[GateResult] = ()) -> str:
    """``analyze``'s table: the analysis, then the gates' outcomes when there are any."""
    return render_table(a) + (render_gates(list(gates)) if gates else "")


def render_diff(d: ImageDiff) -> str:
    out = [f"A: {safe(d.a_reference)}", f"B: {safe(d.b_reference)}", ""]
    sign = "+" if d.size_delta >= 0 else "-"
    out.append(
        f"final filesystem: {format_size(d.a_bytes)} -> {format_size(d.b_bytes)} "
        f"({sign}{format_size(abs(d.size_delta))}); {len(d.added)} added, "
        f"{len(d.removed)} removed, {len(d.changed)} changed"
    )
    out.append("")
    out.append(f"{'#':>3}  {'A size':>9}  {'B size':>9}  {'delta':>10}  same  created by (B)")
    for row in d.layers:
        delta = row.b_size - row.a_size
        out.append(
            f"{row.index:>3}  {_opt(row.a_size, row.in_a):>9}  {_opt(row.b_size, row.in_b):>9}"
            f"  {('+' if delta >= 0 else '-') + format_size(abs(delta)):>10}  "
            f"{'yes' if row.same else 'no ':>4}  {safe(short_instruction(row.created_by, 50))}"
        )
    for title, items in (("Added", d.added), ("Removed", d.removed), ("Changed", d.changed)):
        if not items:
            continue
        out.append("")
        out.append(f"{title} ({len(items)}):")
        for c in items[:50]:
            out.append(f"  {c.sign} /{safe(c.path)}  {safe(c.describe())}")
        if len(items) > 50:
            out.append(f"  ... and {len(items) - 50} more (--format json lists all)")
    return "\n".join(out)


def _opt(size: int, present: bool) -> str:
    return format_size(size) if present else "-"
