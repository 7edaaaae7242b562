"""Renderers for ``imagewise check``: tty, json (``imagewise/check/v1``), sarif and html."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from imagewise.check.run import CheckResult
from imagewise.findings import Finding, Severity
from imagewise.textsafe import safe
from imagewise.units import format_size

SCHEMA = "imagewise/check/v1"


def _finding_json(f: Finding) -> dict[str, Any]:
    out = f.to_json()
    if f.extra.get("dockerfile_line"):
        out["dockerfile"] = f.extra.get("dockerfile", "")
        out["dockerfile_line"] = f.extra["dockerfile_line"]
    if f.extra.get("masked"):
        out["masked"] = f.extra["masked"]
    return out


def image_json(r: CheckResult) -> dict[str, Any]:
    img = r.image
    return {
        "reference": img.reference,
        "digest": str(img.digest),
        "media_type": img.manifest.media_type,
        "platform": str(img.platform),
        "layers": len(img.layers),
        "size_bytes": r.analysis.dive.size_bytes,
        "distro": r.distro,
        "user": img.config.user,
    }


def to_json(r: CheckResult) -> dict[str, Any]:
    analysis = r.analysis.to_json()
    analysis.pop("schema", None)
    return {
        "schema": SCHEMA,
        "image": image_json(r),
        "analysis": analysis,
        "lint": {"file": r.lint_file, "findings": [_finding_json(f) for f in r.lint]},
        "packages": len(r.packages),
        "vulnerability_scan": {"performed": r.vulns_scanned, "note": r.vuln_note,
                               "warnings": list(r.vuln_warnings)},
        "vulnerabilities": [v.to_json() for v in r.vulnerabilities],
        "secrets": [_finding_json(f) for f in r.secrets],
        "audit": [_finding_json(f) for f in r.audit],
        "score": r.verdict.score_json(),
        "policy": r.verdict.to_json(),
        "timing": {"seconds": round(r.seconds, 3), "cached_layers": r.cache_hits,
                   "read_layers": r.cache_misses},
    }


def render_json(r: CheckResult) -> str:
    return json.dumps(to_json(r), indent=2) + "\n"


def _where(f: Finding) -> str:
    loc = f.location
    parts = []
    if loc.file and loc.line:
        parts.append(f"{loc.file}:{loc.line}")
    elif f.extra.get("dockerfile_line"):
        parts.append(f"{f.extra.get('dockerfile')}:{f.extra['dockerfile_line']}")
    if loc.layer_index is not None:
        parts.append(f"layer {loc.layer_index}")
    if loc.path:
        parts.append(loc.path + (f":{loc.line}" if loc.line and not loc.file else ""))
    return safe("  ".join(parts))


_SEV_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan",
              Severity.STYLE: "dim"}
_GRADE_STYLE = {"A": "green", "B": "green", "C": "yellow", "D": "red", "F": "bold red"}


def render_tty(r: CheckResult, color: bool = False, width: int = 110, top: int = 8) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(record=True, force_terminal=color, no_color=not color, width=width,
                      file=open("/dev/null", "w"))  # noqa: SIM115 - recording console
    img = r.image
    v = r.verdict
    console.print(Text.assemble(("imagewise check ", "bold"), safe(img.reference), "  ",
                                (str(img.digest)[:19], "dim"), f"  {img.platform}  "
                                f"{len(img.layers)} layers  {format_size(r.analysis.dive.size_bytes)}"
                                + (f"  {safe(r.distro)}" if r.distro else "")))
    verdict = Text("PASS", style="bold green") if v.passed else Text("FAIL", style="bold red")
    console.print(Text.assemble("verdict: ", verdict, f"  ({len(v.violations)} policy violations; "
                                f"policy {safe(str(v.policy_source))})"))
    console.print()

    score = v.score_json()
    t = Table(title=f"Scorecard  {score['grade']} ({score['total']}/100)", title_justify="left",
              show_edge=False, pad_edge=False)
    t.add_column("area")
    t.add_column("grade")
    t.add_column("score", justify="right")
    t.add_column("what matters most")
    for s in v.scores:
        tops = "\n".join(safe(f"{f.rule}: {f.message}") for f in s.top) or "-"
        t.add_row(s.area, Text(s.grade, style=_GRADE_STYLE.get(s.grade, "")), str(s.score),
                  Text(tops))
    console.print(t)

    if v.violations:
        console.print()
        vt = Table(title="Policy violations", title_justify="left", show_edge=False, pad_edge=False)
        vt.add_column("rule")
        vt.add_column("message")
        vt.add_column("where")
        for x in v.violations:
            loc = x.location
            where = f"{loc.file}:{loc.line}" if loc.file and loc.line else (
                f"layer {loc.layer_index}" if loc.layer_index is not None else "")
            vt.add_row(Text(x.rule, style="red"), Text(safe(x.message)), Text(safe(where)))
        console.print(vt)

    def section(title: str, findings: Iterable[Finding]) -> None:
        items = list(findings)
        if not items:
            return
        console.print()
        ft = Table(title=f"{title} ({len(items)})", title_justify="left", show_edge=False,
                   pad_edge=False)
        ft.add_column("sev")
        ft.add_column("rule")
        ft.add_column("message")
        ft.add_column("where")
        for f in sorted(items, key=lambda f: (-f.severity, -f.bytes_saved))[:top]:
            msg = safe(f.message) + (f"\n→ {safe(f.fix)}" if f.fix and f.bytes_saved else "")
            ft.add_row(Text(str(f.severity), style=_SEV_STYLE.get(f.severity, "")),
                       Text(safe(f.rule)), Text(msg), Text(_where(f)))
        if len(items) > top:
            ft.add_row("", "", f"... {len(items) - top} more (--format json for all)", "")
        console.print(ft)

    console.print()
    a = r.analysis.dive
    console.print(f"efficiency {a.efficiency:.2%}   dive wasted {format_size(a.wasted_bytes)}   "
                  f"reclaimable {format_size(r.analysis.reclaimable_bytes)}   "
                  f"packages {len(r.packages)}")
    if r.vuln_note:
        console.print(Text(safe(r.vuln_note), style="yellow"))
    for w in r.vuln_warnings:
        console.print(Text("warning: " + safe(w), style="yellow"))
    if r.vulnerabilities:
        console.print()
        vt = Table(title=f"Vulnerabilities ({len(r.vulnerabilities)})", title_justify="left",
                   show_edge=False, pad_edge=False)
        for col in ("id", "severity", "package", "version", "fixed in", "layer"):
            vt.add_column(col)
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
        for x in sorted(r.vulnerabilities, key=lambda x: order.get(x.severity, 9))[:top]:
            loc = x.package.introduced_by
            layer = "" if loc is None or loc.layer_index is None else (
                f"{loc.layer_index}" + (" (base)" if x.from_base else ""))
            vt.add_row(*(Text(safe(c)) for c in (x.id, x.severity, x.package.name, x.version,
                                                  ", ".join(x.fixed_versions))), layer)
        if len(r.vulnerabilities) > top:
            vt.add_row(f"... {len(r.vulnerabilities) - top} more", "", "", "", "", "")
        console.print(vt)
    section("Secrets", r.secrets)
    section("Waste", r.analysis.waste)
    section("Audit", r.audit)
    section("Dockerfile lint", r.lint)
    return "".join(line.rstrip() + "\n" for line in console.export_text(styles=color).splitlines())


def render_sarif(r: CheckResult) -> str:
    """SARIF 2.1.0 from the lint renderer (rule metadata, fingerprints) for every finding, plus
    the vulnerability rules and results of ``scan``'s renderer. Image findings not linked to a
    Dockerfile line point at the Dockerfile (when given) or at ``image``."""
    from imagewise.dockerfile.output import render_sarif as findings_sarif
    from imagewise.vulns.render import vulnerability_sarif

    anchor = r.lint_file or "image"
    findings = [f if f.location.file and f.location.line
                else f.replace(location=f.location.replace(
                    file=anchor, line=int(f.extra.get("dockerfile_line") or 1)))
                for f in (*r.lint, *r.audit, *r.secrets, *r.analysis.waste)]
    doc = json.loads(findings_sarif(findings))
    run = doc["runs"][0]
    vuln_rules, vuln_results = vulnerability_sarif(r.vulnerabilities)
    for result in vuln_results:
        for loc in result["locations"]:
            loc["physicalLocation"] = {"artifactLocation": {"uri": anchor},
                                       "region": {"startLine": 1}}
    run["tool"]["driver"]["rules"].extend(vuln_rules)
    run["results"].extend(vuln_results)
    return json.dumps(doc, indent=2) + "\n"
