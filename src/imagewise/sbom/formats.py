"""SBOM renderers: imagewise JSON, a table, CycloneDX JSON and SPDX JSON (the last two through
the official ``cyclonedx-python-lib`` and ``spdx-tools``, imported only when asked for);
``encoders.SBOM`` declares them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagewise.sbom.catalog import Catalog


def to_json_doc(cat: Catalog) -> dict[str, Any]:
    """The body of the SBOM's imagewise JSON document (the envelope is ``encoders.SBOM``'s)."""
    doc: dict[str, Any] = {
        "source": cat.source,
        "distro": cat.distro.to_json() if cat.distro else None,
        "base_layers": cat.base_layers,
        "base_rule": cat.base_rule,
        "packages": [p.to_json() for p in cat.packages],
        "skipped": [s.to_json() for s in cat.skipped],
    }
    return doc


def render_table(cat: Catalog) -> str:
    """One line a package in aligned columns (NAME, VERSION, TYPE, LAYER, BASE), then a summary
    line. Cells are never wrapped, so every package stays on one line for ``grep`` and ``awk``."""
    from imagewise.textsafe import safe

    rows = [("NAME", "VERSION", "TYPE", "LAYER", "BASE")]
    for p in cat.packages:
        loc = p.introduced_by
        layer = "" if loc is None or loc.layer_index is None else str(loc.layer_index)
        base = {True: "base", False: "app", None: ""}[p.from_base]
        rows.append((safe(p.name), safe(p.version), safe(p.type), layer, base))
    distro = safe(cat.distro.pretty_name or cat.distro.label) if cat.distro else "unknown distro"
    summary = f"{len(cat.packages)} packages; {distro}"
    if cat.skipped:
        summary += f"; {len(cat.skipped)} files skipped (see --format json)"
    return aligned(rows) + summary + "\n"


def aligned(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` as lines of columns two spaces apart, each as wide as its widest cell (in
    terminal cells: an East Asian wide character takes two), without trailing spaces."""
    widths = [max(map(_cells, column)) for column in zip(*rows, strict=True)] if rows else []
    lines = []
    for row in rows:
        parts = [c + " " * (w - _cells(c)) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip() + "\n")
    return "".join(lines)


def _cells(text: str) -> int:
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(
        0 if combining(ch) else 2 if east_asian_width(ch) in ("W", "F") else 1 for ch in text
    )


def render(cat: Catalog, fmt: str) -> str:
    """``cat`` in format ``fmt`` (an id or alias of ``encoders.SBOM``)."""
    from imagewise.encoders import SBOM

    return SBOM.encode(fmt, cat)
