"""Self-contained HTML reports: one file, inline CSS/JS/SVG, no network.

``render_page(title, sections, data=...)`` assembles any list of :class:`Section` (the ``check``
command adds its own next to the analysis ones); ``analysis_sections(a)`` gives the layer chart,
the size treemap, the waste table with fixes, dive's inefficient files and the largest files.
``data`` is embedded as JSON for the page's script (the treemap reads ``data["tree"]``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

from imagewise.units import format_size

if TYPE_CHECKING:
    from imagewise.analysis.gates import GateResult
    from imagewise.analysis.model import ImageAnalysis


@dataclass(frozen=True, slots=True)
class Section:
    """A titled block of the report. ``html`` is trusted markup: escape what goes into it."""

    id: str
    title: str
    html: str


def _asset(name: str) -> str:
    return resources.files("imagewise.report").joinpath("html_assets", name).read_text("utf-8")


def _json_script(data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_page(
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str = "",
    data: dict[str, Any] | None = None,
    refresh: int | None = None,
) -> str:
    """A page of ``sections``; ``refresh``: reload it every that many seconds (live pages)."""
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>{s.html}</section>'
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        + (f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else "")
        + f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="sub">{escape(subtitle)}</div></header>'
        f"<nav>{nav}</nav><main>{body}</main>"
        f'<script type="application/json" id="iw-data">{_json_script(data or {})}</script>'
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )


# -- the analysis sections --------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) or math.isinf(x) else f"{x * 100:.2f} %"


def _card(key: str, value: str, note: str = "", cls: str = "") -> str:
    return (
        f'<div class="card"><div class="k">{escape(key)}</div>'
        f'<div class="v {cls}">{escape(value)}</div><div class="n">{escape(note)}</div></div>'
    )


def summary_section(a: ImageAnalysis) -> Section:
    d = a.dive
    eff_cls = "good" if d.efficiency >= 0.95 else "meh" if d.efficiency >= 0.9 else "bad"
    rec_share = a.reclaimable_bytes / d.size_bytes if d.size_bytes else 0.0
    cards = "".join(
        [
            _card("image size", format_size(d.size_bytes), f"{len(a.layers)} layers"),
            _card("final filesystem", format_size(a.final_bytes), f"{a.final_files} files"),
            _card(
                "reclaimable",
                format_size(a.reclaimable_bytes),
                f"{rec_share * 100:.1f} % of the layers",
                "bad" if rec_share > 0.1 else "",
            ),
            _card("efficiency (dive)", _pct(d.efficiency), "score as dive computes it", eff_cls),
            _card(
                "wasted bytes (dive)",
                format_size(d.wasted_bytes),
                f"user wasted {_pct(d.user_wasted_percent)}",
            ),
            _card(
                "fixes found",
                str(len(a.waste)),
                f"save up to {format_size(sum(f.bytes_saved for f in a.waste))}",
            ),
        ]
    )
    tiles = (
        '<p class="muted" id="iw-save-vs-reclaimable">Reclaimable is only what later layers '
        'hide; "save up to" also counts what the fixes remove from the final filesystem '
        "(caches, leftovers).</p>"
    )
    note = (
        '<p class="muted">Reclaimable: bytes some layer stores that the final filesystem '
        "does not show, each hidden copy counted once. dive's wasted bytes count every copy "
        "of a path seen in two layers, the kept one too, and miss directory deletions.</p>"
    )
    return Section("summary", "Summary", f'<div class="cards">{cards}</div>{tiles}{note}')


def layers_section(a: ImageAnalysis) -> Section:
    from imagewise.analysis.attribution import short_instruction

    biggest = max([layer.size_bytes for layer in a.layers] + [1])
    row_h, label_w, bar_w, width = 26, 40, 560, 1200
    height = row_h * len(a.layers) + 10
    parts = [
        (
            f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="bytes added by each layer">'
        )
    ]
    for n, layer in enumerate(a.layers):
        y = 5 + n * row_h
        w = bar_w * layer.size_bytes / biggest
        waste_w = bar_w * min(layer.reclaimable_bytes, layer.size_bytes) / biggest
        # the label ends with an ellipsis when cut; hovering shows the whole instruction
        full = short_instruction(layer.created_by, 1 << 30) or "(no history)"
        cmd = short_instruction(layer.created_by, 64) or "(no history)"
        parts.append(
            f'<g class="layer"><title>layer {layer.index}: {escape(format_size(layer.size_bytes))}, '
            f"{escape(format_size(layer.reclaimable_bytes))} reclaimable - {escape(full)}</title>"
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" font-size="12" '
            f'fill="#667085">{layer.index}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" rx="3" '
            f'fill="#2f6fed"/>'
            f'<rect x="{label_w + w - waste_w:.1f}" y="{y + 3}" width="{waste_w:.1f}" '
            f'height="{row_h - 8}" rx="3" fill="#e5484d"/>'
            f'<text x="{label_w + bar_w + 10}" y="{y + 16}" font-size="12" fill="#1d2330">'
            f"{escape(format_size(layer.size_bytes))}</text>"
            f'<text x="{label_w + bar_w + 90}" y="{y + 16}" font-size="12" fill="#667085">'
            f"{escape(cmd)}</text></g>"
        )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span><i style="background:#2f6fed"></i>bytes added by the '
        'layer</span><span><i style="background:#e5484d"></i>of which hidden later '
        "(reclaimable)</span></div>"
    )
    return Section("layers", "Layers", legend + "".join(parts))


def treemap_section() -> Section:
    return Section(
        "treemap",
        "Final filesystem",
        '<div class="crumbs" id="iw-treemap-crumbs"></div><div id="iw-treemap"></div>'
        '<div class="muted">Click a directory to zoom in; small entries are folded '
        'into "(N more)".</div>',
    )


def waste_section(a: ImageAnalysis) -> Section:
    if not a.waste:
        return Section("waste", "Waste and fixes", "<p>No waste found.</p>")
    rows = []
    for f in a.waste:
        ex = f.extra.get("examples") or []
        examples = "".join(
            f"<li><code>{escape(str(e['path']))}</code> {escape(format_size(int(e['bytes'])))}</li>"
            for e in ex
        )
        created = escape(str(f.extra.get("created_by", "")))
        rows.append(
            f'<tr><td class="num">{escape(format_size(f.bytes_saved))}</td>'
            f'<td class="num">{f.location.layer_index}</td>'
            f'<td><div>{escape(f.title)}</div><div class="rule"><span class="rid">{escape(f.rule)}</span> · '
            f'<span class="sev-{f.severity}">{f.severity}</span>'
            + "".join(
                f' · also <span class="rid">{escape(str(r))}</span>'
                for r in f.extra.get("also", ())
            )
            + "</div>"
            f'<div class="fix">Fix: {escape(f.fix)}</div>'
            + (
                f"<details><summary>files and instruction</summary><ul>{examples}</ul>"
                f'<div class="muted">created by: <code>{created}</code></div></details>'
                if examples or created
                else ""
            )
            + "</td></tr>"
        )
    return Section(
        "waste",
        "Waste and fixes",
        '<table><thead><tr><th class="num">saves</th><th class="num">layer</th>'
        f"<th>what and how to fix it</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table>",
    )


def inefficient_section(a: ImageAnalysis, limit: int = 200) -> Section:
    files = a.dive.inefficient_files
    rows = "".join(
        f'<tr><td class="num">{f.count}</td><td class="num">'
        f"{escape(format_size(f.wasted_bytes))}</td><td><code>{escape(f.path)}</code>"
        f"</td></tr>"
        for f in files[:limit]
    )
    more = f'<p class="muted">... and {len(files) - limit} more.</p>' if len(files) > limit else ""
    return Section(
        "inefficient",
        "Inefficient files (dive)",
        '<p class="muted">Paths seen in more than one layer, with dive\'s wasted '
        "space (every copy counted, the kept one too).</p><table><thead><tr>"
        '<th class="num">count</th><th class="num">wasted</th><th>path</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>{more}",
    )


def largest_section(a: ImageAnalysis) -> Section:
    rows = "".join(
        f'<tr><td class="num">{escape(format_size(f.size))}</td>'
        f'<td class="num">{f.layer}</td><td><code>/{escape(f.path)}</code></td></tr>'
        for f in a.largest_files
    )
    return Section(
        "largest",
        "Largest files",
        '<table><thead><tr><th class="num">size</th><th class="num">layer</th>'
        f"<th>path</th></tr></thead><tbody>{rows}</tbody></table>",
    )


def gates_section(results: Sequence[GateResult]) -> Section:
    rows = "".join(
        f'<tr><td class="{r.status.lower()}">{r.status}</td><td>{escape(r.rule)}</td>'
        f"<td>{escape(r.threshold)}</td><td>{escape(r.message)}</td></tr>"
        for r in results
    )
    return Section(
        "gates",
        "Gates",
        "<table><thead><tr><th>result</th><th>rule</th>"
        f"<th>threshold</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>",
    )


def analysis_sections(a: ImageAnalysis) -> list[Section]:
    return [
        summary_section(a),
        layers_section(a),
        treemap_section(),
        waste_section(a),
        inefficient_section(a),
        largest_section(a),
    ]


def analysis_data(a: ImageAnalysis) -> dict[str, Any]:
    """The JSON the page script needs for the analysis sections (the treemap's tree)."""
    return {"tree": a.tree.to_json()}


def render_analysis(
    a: ImageAnalysis, extra: Sequence[Section] = (), gates: Sequence[GateResult] = ()
) -> str:
    sections = analysis_sections(a)
    if gates:
        sections.insert(1, gates_section(gates))
    return render_page(
        f"imagewise analysis: {a.reference}",
        [*sections, *extra],
        subtitle=a.digest,
        data=analysis_data(a),
    )
