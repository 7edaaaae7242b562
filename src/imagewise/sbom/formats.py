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
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from imagewise.textsafe import safe

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "VERSION", "TYPE", "LAYER", "BASE"):
        table.add_column(col, overflow="fold")
    for p in cat.packages:
        loc = p.introduced_by
        layer = "" if loc is None or loc.layer_index is None else str(loc.layer_index)
        base = {True: "base", False: "app", None: ""}[p.from_base]
        table.add_row(*(Text(safe(c)) for c in (p.name, p.version, p.type)), layer, base)
    buf = StringIO()
    console = Console(file=buf, width=160, color_system=None)
    console.print(table)
    distro = safe(cat.distro.pretty_name or cat.distro.label) if cat.distro else "unknown distro"
    summary = f"{len(cat.packages)} packages; {distro}"
    if cat.skipped:
        summary += f"; {len(cat.skipped)} files skipped (see --format json)"
    rows = "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())
    return rows + summary + "\n"


def render(cat: Catalog, fmt: str) -> str:
    """``cat`` in format ``fmt`` (an id or alias of ``encoders.SBOM``)."""
    from imagewise.encoders import SBOM

    return SBOM.encode(fmt, cat)
