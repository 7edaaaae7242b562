"""SBOM renderers: imagewise JSON, a table, CycloneDX JSON and SPDX JSON (the last two through
the official ``cyclonedx-python-lib`` and ``spdx-tools``, imported only when asked for);
``encoders.SBOM`` declares them."""

from __future__ import annotations

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
    from imagewise.textsafe import aligned, safe

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


def render(cat: Catalog, fmt: str) -> str:
    """``cat`` in format ``fmt`` (an id or alias of ``encoders.SBOM``)."""
    from imagewise.encoders import SBOM

    return SBOM.encode(fmt, cat)
