"""Renderers of a ScanResult: ``json`` (the body of imagewise's scan document), ``sarif``
(2.1.0) and ``table``; ``encoders.SCAN`` declares them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from imagewise import __version__
from imagewise.secrets.visitor import findings_json
from imagewise.vulns.matching import Vulnerability
from imagewise.vulns.scan import ScanResult, secret_level
from imagewise.vulns.severity import level_rank

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "negligible": "note",
    "unknown": "warning",
}
_SECURITY_SEVERITY = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "2.0",
    "negligible": "0.5",
    "unknown": "5.0",
}


def render(result: ScanResult, fmt: str) -> str:
    """``result`` in format ``fmt`` (an id or alias of ``encoders.SCAN``)."""
    from imagewise.encoders import SCAN

    return SCAN.encode(fmt, result)


def to_json(result: ScanResult) -> dict[str, Any]:
    return {
        "source": result.source,
        "distro": result.distro,
        "packages": len(result.packages),
        "vulnerability_scan": {
            "performed": result.vulns_scanned,
            "note": result.db_note,
            "database": str(result.db.path) if result.db else None,
            "newest_record": result.db.newest_modified if result.db else None,
        },
        "secret_scan": {"performed": result.secrets_scanned},
        "vulnerabilities": [v.to_json() for v in result.vulnerabilities],
        "secrets": findings_json(list(result.secrets)),
        "suppressed": [
            {
                "id": s.id,
                "package": s.package,
                "path": s.path,
                "by": s.by,
                "reason": s.reason,
            }
            for s in result.suppressed
        ],
        "warnings": list(result.warnings),
    }


def vulnerability_sarif(
    vulns: Sequence[Vulnerability],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SARIF ``rules`` and ``results`` for vulnerabilities (shared by ``scan`` and ``check``)."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for v in vulns:
        if v.id not in rules:
            rules[v.id] = {
                "id": v.id,
                "name": v.id.replace("-", ""),
                "shortDescription": {"text": v.summary or v.id},
                "helpUri": f"https://osv.dev/vulnerability/{v.records[0]}",
                "properties": {
                    "security-severity": _SECURITY_SEVERITY[v.severity],
                    "tags": ["security", "vulnerability"],
                },
            }
        fixed = f"; fixed in {', '.join(v.fixed_versions)}" if v.fixed_versions else "; no fix"
        where = (
            "base image"
            if v.from_base
            else ("application layer" if v.from_base is False else "layer")
        )
        results.append(
            {
                "ruleId": v.id,
                "level": _SARIF_LEVEL[v.severity],
                "message": {
                    "text": f"{v.package.name} {v.version} ({v.package.type}) is affected by "
                    f"{v.id} [{v.severity}]{fixed}; from the {where}"
                },
                "locations": [_location(v.path or v.package.name, 0)],
                "properties": {
                    "package": v.package.name,
                    "version": v.version,
                    "layer": v.layer,
                    "aliases": list(v.aliases),
                },
            }
        )
    return list(rules.values()), results


def render_sarif(result: ScanResult) -> str:
    vuln_rules, results = vulnerability_sarif(result.vulnerabilities)
    rules: dict[str, dict[str, Any]] = {r["id"]: r for r in vuln_rules}
    for f in result.secrets:
        if f.rule not in rules:
            rules[f.rule] = {
                "id": f.rule,
                "name": f.rule.split("/")[-1],
                "shortDescription": {"text": f.title},
                "help": {"text": f.fix},
                "properties": {
                    "security-severity": _SECURITY_SEVERITY[secret_level(f)],
                    "tags": ["security", "secret"],
                },
            }
        results.append(
            {
                "ruleId": f.rule,
                "level": _SARIF_LEVEL[secret_level(f)],
                "message": {"text": f.message},
                "locations": [_location(f.location.path, f.location.line)],
                "properties": {"layer": f.location.layer, "masked": f.extra.get("masked", "")},
            }
        )
    doc = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "imagewise",
                        "version": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _location(path: str, line: int) -> dict[str, Any]:
    phys: dict[str, Any] = {"artifactLocation": {"uri": path.lstrip("/") or "image"}}
    if line > 0:
        phys["region"] = {"startLine": line}
    return {"physicalLocation": phys}


def render_table(result: ScanResult) -> str:
    """A plain-text report (rich renders it with colour in the CLI when on a terminal)."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from imagewise.textsafe import safe

    buf = StringIO()
    con = Console(file=buf, width=140, color_system=None)
    con.print(
        Text(
            safe(
                f"{result.source}: {len(result.packages)} packages"
                + (f", {result.distro}" if result.distro else "")
            )
        )
    )
    if not result.vulns_scanned:
        con.print(Text(safe(result.db_note), style="bold"))
    elif result.vulnerabilities:
        t = Table(title="Vulnerabilities", show_lines=False)
        for col in (
            "ID",
            "Package",
            "Version",
            "Type",
            "Severity",
            "Fixed in",
            "Origin",
            "Aliases",
        ):
            t.add_column(col)
        for v in result.vulnerabilities:
            origin = "base" if v.from_base else ("app" if v.from_base is False else "")
            layer = v.package.introduced_by
            if layer is not None and layer.layer_index is not None:
                origin = f"{origin} (layer {layer.layer_index})".strip()
            t.add_row(
                *(
                    Text(safe(c))
                    for c in (
                        v.id,
                        v.package.name,
                        v.version,
                        v.package.type,
                        v.severity,
                        ", ".join(v.fixed_versions) or "-",
                        origin,
                        ", ".join(v.aliases[:3]),
                    )
                )
            )
        con.print(t)
    else:
        con.print("No known vulnerabilities.")
    if result.secrets:
        t = Table(title="Secrets")
        for col in ("Rule", "Layer", "Path", "Line", "Value (masked)", "Note"):
            t.add_column(col)
        for f in result.secrets:
            loc = f.location
            t.add_row(
                f.rule,
                "" if loc.layer_index is None else str(loc.layer_index),
                Text(safe(loc.path or "")),
                str(loc.line or ""),
                Text(safe(f.extra.get("masked", ""))),
                "removed in a later layer" if f.extra.get("removed_later") else "",
            )
        con.print(t)
    elif result.secrets_scanned:
        con.print("No secrets found.")
    counts: dict[str, int] = {}
    for v in result.vulnerabilities:
        counts[v.severity] = counts.get(v.severity, 0) + 1
    parts = [f"{counts[k]} {k}" for k in sorted(counts, key=level_rank, reverse=True)]
    if result.secrets:
        parts.append(f"{len(result.secrets)} secret{'s' if len(result.secrets) != 1 else ''}")
    if parts:
        con.print("Summary: " + ", ".join(parts))
    if result.suppressed:
        con.print(f"{len(result.suppressed)} suppressed by ignore files or VEX")
    return buf.getvalue()
