"""Renderers for ``imagewise check``: the terminal's table, the json body, sarif (html is in
``check.html``); ``encoders.CHECK`` declares them and adds the json envelope."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable
from typing import Any

from imagewise.check.run import CheckResult
from imagewise.findings import Finding, Severity
from imagewise.textsafe import safe
from imagewise.units import format_size


def _finding_json(f: Finding) -> dict[str, Any]:
    out = f.to_json()
    if f.extra.get("dockerfile_line"):
        out["dockerfile"] = f.extra.get("dockerfile", "")
        out["dockerfile_line"] = f.extra["dockerfile_line"]
    if f.extra.get("masked"):
        out["masked"] = f.extra["masked"]
    if also(f):
        out["also"] = list(also(f))
    return out


def also(f: Finding) -> tuple[str, ...]:
    """The other rules that reported the same problem (grouped by the policy)."""
    return tuple(f.extra.get("also", ()))


def also_text(f: Finding) -> str:
    return ("also reported as " + ", ".join(also(f))) if also(f) else ""


def not_checked_lines(r: CheckResult) -> list[str]:
    """What this check could not judge, one line each, for every output."""
    lines = [f"{u.gate}: {u.reason}" for u in r.verdict.not_checked]
    if not r.linted:
        lines.append("Dockerfile lint (build area): no Dockerfile given (--dockerfile)")
    if not r.vulns_scanned and not any(
        u.gate.endswith("max_vulnerability_severity") for u in r.verdict.not_checked
    ):
        lines.append(f"vulnerabilities: {r.vuln_note}")
    return lines


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


def to_json(r: CheckResult, lazy: bool = False) -> dict[str, Any]:
    """The JSON document (``lazy``: see ``ImageAnalysis.to_json``)."""
    from imagewise.analysis.model import finding_json

    analysis = r.analysis.to_json(lazy=lazy)
    # waste as the verdict counts it: linked to Dockerfile lines, one finding per problem
    analysis["leftovers"] = [{**finding_json(f), **_finding_json(f)} for f in r.waste]
    return {
        "image": image_json(r),
        "analysis": analysis,
        "lint": {"file": r.lint_file, "findings": [_finding_json(f) for f in r.lint]},
        "packages": len(r.packages),
        "vulnerability_scan": {
            "performed": r.vulns_scanned,
            "note": r.vuln_note,
            "warnings": list(r.vuln_warnings),
        },
        "warnings": list(r.warnings),
        "not_checked": not_checked_lines(r),
        "vulnerabilities": [v.to_json() for v in r.vulnerabilities],
        "secrets": [_finding_json(f) for f in r.secrets],
        "audit": [_finding_json(f) for f in r.audit],
        "score": r.verdict.score_json(),
        "policy": r.verdict.to_json(),
        "timing": {
            "seconds": round(r.seconds, 3),
            "cached_layers": r.cache_hits,
            "read_layers": r.cache_misses,
        },
    }


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


_SEV_STYLE = {
    Severity.ERROR: "red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
    Severity.STYLE: "dim",
}
_GRADE_STYLE = {"A": "green", "B": "green", "C": "yellow", "D": "red", "F": "bold red"}


_STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCOMPLETE": "bold yellow"}


def terminal_width() -> int:
    """The width to draw for: $COLUMNS, else the terminal's, else 80."""
    return shutil.get_terminal_size((80, 24)).columns


_WIDE = 100
_RULE_WIDTH = 26


def _rule_id(rule: str, narrow: bool) -> str:
    """A long gate name (``security_baseline.max_vulnerability_severity``) on two lines, cut
    after its section, when the table is narrow."""
    return rule.replace(".", ".\n", 1) if narrow and len(rule) > _RULE_WIDTH else rule


def _message_where(message: str, where: str, narrow: bool) -> list[Any]:
    from rich.text import Text

    if not narrow:  # Text, not str: rich would read ``[...]`` in a message as markup
        return [Text(message), Text(where)]
    return [Text.assemble(message, ("\nat " + where, "dim")) if where else Text(message)]


def render_tty(r: CheckResult, color: bool = False, width: int | None = None, top: int = 8) -> str:
    """The human report, ``width`` columns wide (default: :func:`terminal_width`). Warnings are
    not in it: the command writes them to standard error."""
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    width = max(40, width or terminal_width())
    narrow = width < _WIDE  # "where" goes under the message instead of in a column
    console = Console(
        record=True, force_terminal=color, no_color=not color, width=width, file=io.StringIO()
    )  # a recording console: the text is exported below
    img = r.image
    v = r.verdict
    console.print(
        Text.assemble(
            ("imagewise check ", "bold"),
            safe(img.reference),
            "  ",
            (str(img.digest)[:19], "dim"),
            f"  {img.platform}  "
            f"{len(img.layers)} layers  {format_size(r.analysis.dive.size_bytes)}"
            + (f"  {safe(r.distro)}" if r.distro else ""),
        )
    )
    verdict = Text(v.status, style=_STATUS_STYLE[v.status])
    n = len(v.not_checked)
    unchecked = f"{n} gate{'s' if n > 1 else ''} not checked; " if n else ""
    console.print(
        Text.assemble(
            "verdict: ",
            verdict,
            f"  ({len(v.violations)} policy violations; "
            f"{unchecked}policy {safe(str(v.policy_source))})",
        )
    )
    missing = not_checked_lines(r)
    if missing:
        console.print(Text("not checked:", style="yellow"))
        for line in missing:
            console.print(Padding(Text(safe(line), style="yellow"), (0, 0, 0, 2)))
    console.print()

    score = v.score_json()
    t = Table(
        title=f"Scorecard  {score['grade']} ({score['total']}/100)",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    t.add_column("area", overflow="fold")
    t.add_column("grade", overflow="fold")
    t.add_column("score", justify="right", overflow="fold")
    t.add_column("what matters most", overflow="fold")
    for s in v.scores:
        lines = [safe(f"{f.rule}: {f.message}") for f in s.top]
        lines += [f"not checked: {safe(n)}" for n in s.not_checked]
        t.add_row(
            s.area,
            Text(s.grade, style=_GRADE_STYLE.get(s.grade, "")),
            "-" if s.score is None else str(s.score),
            Text("\n".join(lines) or "-"),
        )
    console.print(t)

    if v.violations:
        console.print()
        vt = Table(title="Policy violations", title_justify="left", show_edge=False, pad_edge=False)
        vt.add_column("rule", overflow="fold", max_width=_RULE_WIDTH if narrow else None)
        vt.add_column("message", overflow="fold")
        if not narrow:
            vt.add_column("where", overflow="fold")
        for x in v.violations:
            loc = x.location
            where = (
                f"{loc.file}:{loc.line}"
                if loc.file and loc.line
                else (f"layer {loc.layer_index}" if loc.layer_index is not None else "")
            )
            vt.add_row(
                Text(_rule_id(x.rule, narrow), style="red"),
                *_message_where(safe(x.message), safe(where), narrow),
            )
        console.print(vt)

    def section(title: str, findings: Iterable[Finding]) -> None:
        items = list(findings)
        if not items:
            return
        console.print()
        ft = Table(
            title=f"{title} ({len(items)})", title_justify="left", show_edge=False, pad_edge=False
        )
        ft.add_column("sev", overflow="fold")
        ft.add_column("rule", overflow="fold")
        ft.add_column("message", overflow="fold")
        if not narrow:
            ft.add_column("where", overflow="fold")
        for f in sorted(items, key=lambda f: (-f.severity, -f.bytes_saved))[:top]:
            msg = safe(f.message) + (f"\n→ {safe(f.fix)}" if f.fix and f.bytes_saved else "")
            msg += f"\n({also_text(f)})" if also(f) else ""
            ft.add_row(
                Text(str(f.severity), style=_SEV_STYLE.get(f.severity, "")),
                Text(safe(f.rule)),
                *_message_where(msg, _where(f), narrow),
            )
        if len(items) > top:
            ft.add_row(
                "",
                "",
                f"... {len(items) - top} more (--format json for all)",
                *([] if narrow else [""]),
            )
        console.print(ft)

    console.print()
    a = r.analysis.dive
    console.print(
        f"efficiency {a.efficiency:.2%}   dive wasted {format_size(a.wasted_bytes)}   "
        f"reclaimable {format_size(r.analysis.reclaimable_bytes)}   "
        f"packages {len(r.packages)}"
    )
    if r.vuln_note:
        console.print()
        console.print(
            Text("Vulnerabilities: not checked (" + safe(r.vuln_note) + ")", style="yellow")
        )
    if r.vulnerabilities:
        console.print()
        vt = Table(
            title=f"Vulnerabilities ({len(r.vulnerabilities)})",
            title_justify="left",
            show_edge=False,
            pad_edge=False,
        )
        for col in ("id", "severity", "package", "version", "fixed in", "layer"):
            vt.add_column(col, overflow="fold")
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
        for vuln in sorted(r.vulnerabilities, key=lambda v: order.get(v.severity, 9))[:top]:
            introduced = vuln.package.introduced_by
            layer = (
                ""
                if introduced is None or introduced.layer_index is None
                else (f"{introduced.layer_index}" + (" (base)" if vuln.from_base else ""))
            )
            vt.add_row(
                *(
                    Text(safe(c))
                    for c in (
                        vuln.id,
                        vuln.severity,
                        vuln.package.name,
                        vuln.version,
                        ", ".join(vuln.fixed_versions),
                    )
                ),
                layer,
            )
        if len(r.vulnerabilities) > top:
            vt.add_row(f"... {len(r.vulnerabilities) - top} more", "", "", "", "", "")
        console.print(vt)
    section("Secrets", r.secrets)
    section("Waste", r.waste)
    section("Audit", r.audit)
    section("Dockerfile lint", r.lint)
    return "".join(line.rstrip() + "\n" for line in console.export_text(styles=color).splitlines())


def render_sarif(r: CheckResult) -> str:
    """SARIF 2.1.0 from the lint renderer (rule metadata, fingerprints) for every finding, plus
    the vulnerability rules and results of ``scan``'s renderer. Image findings not linked to a
    Dockerfile line point at the Dockerfile (when given) or at ``image``."""
    from imagewise.dockerfile.output import render_sarif as findings_sarif
    from imagewise.rules import rule_table
    from imagewise.vulns.render import vulnerability_sarif

    anchor = r.lint_file or "image"
    findings = [
        f
        if f.location.file and f.location.line
        else f.replace(
            location=f.location.replace(file=anchor, line=int(f.extra.get("dockerfile_line") or 1))
        )
        for f in (*r.lint, *r.audit, *r.secrets, *r.waste)
    ]
    findings = [
        f.replace(message=f"{f.message} ({also_text(f)})") if also(f) else f for f in findings
    ]
    doc = json.loads(findings_sarif(findings, rules=rule_table()))
    run = doc["runs"][0]
    notes = [
        {"level": "warning", "message": {"text": "not checked: " + line}}
        for line in not_checked_lines(r)
    ]
    notes += [{"level": "warning", "message": {"text": w}} for w in r.warnings]
    run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": notes}]
    run["properties"] = {"verdict": r.verdict.status, "notChecked": not_checked_lines(r)}
    vuln_rules, vuln_results = vulnerability_sarif(r.vulnerabilities)
    for result in vuln_results:
        for loc in result["locations"]:
            loc["physicalLocation"] = {
                "artifactLocation": {"uri": anchor},
                "region": {"startLine": 1},
            }
    run["tool"]["driver"]["rules"].extend(vuln_rules)
    run["results"].extend(vuln_results)
    return json.dumps(doc, indent=2) + "\n"
