"""The check report: the analysis report extended with verdict, scorecard, vulnerabilities,
secrets, audit and lint sections, one self-contained file."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from imagewise.check.render import _where
from imagewise.check.run import CheckResult
from imagewise.findings import Finding
from imagewise.report.html import Section, analysis_sections, render_page


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    rows = list(rows)
    if not rows:
        return f"<p class=\"n\">{escape(empty)}</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _findings(findings: Iterable[Finding], empty: str) -> str:
    items = sorted(findings, key=lambda f: (-f.severity, -f.bytes_saved))
    return _table(("severity", "rule", "message", "fix", "where"),
                  ((str(f.severity), f.rule, f.message, f.fix, _where(f)) for f in items), empty)


def verdict_section(r: CheckResult) -> Section:
    v = r.verdict
    score = v.score_json()
    state = "PASS" if v.passed else "FAIL"
    cls = "good" if v.passed else "bad"
    cards = "".join(
        f'<div class="card"><div class="k">{escape(s.area)}</div>'
        f'<div class="v {"good" if s.grade in "AB" else "meh" if s.grade == "C" else "bad"}">'
        f'{s.grade} <small>{s.score}</small></div>'
        f'<div class="n">{escape("; ".join(f.rule for f in s.top) or "nothing to fix")}</div></div>'
        for s in v.scores)
    head = (f'<div class="cards"><div class="card"><div class="k">verdict</div>'
            f'<div class="v {cls}">{state}</div><div class="n">overall {score["grade"]} '
            f'({score["total"]}/100), policy {escape(v.policy_source)}</div></div>{cards}</div>')
    rows = []
    for x in v.violations:
        loc = x.location
        where = f"{loc.file}:{loc.line}" if loc.file and loc.line else (
            f"layer {loc.layer_index}" if loc.layer_index is not None else "")
        rows.append((x.area, x.rule, x.message, where))
    return Section("verdict", "Verdict and scorecard",
                   head + _table(("area", "rule", "violation", "where"), rows, "No policy violations."))


def vulns_section(r: CheckResult) -> Section:
    note = f'<p class="n">{escape(r.vuln_note)}</p>' if r.vuln_note else ""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    rows = []
    for x in sorted(r.vulnerabilities, key=lambda x: order.get(x.severity, 9)):
        loc = x.package.introduced_by
        layer = "" if loc is None or loc.layer_index is None else str(loc.layer_index)
        origin = "base image" if x.from_base else ("application" if x.from_base is False else "")
        rows.append((x.id, x.severity, x.package.name, x.version, ", ".join(x.fixed_versions),
                     layer, origin))
    return Section("vulnerabilities", f"Vulnerabilities ({len(rows)})", note + _table(
        ("id", "severity", "package", "version", "fixed in", "layer", "origin"), rows,
        "No known vulnerabilities." if not r.vuln_note else ""))


def render_html(r: CheckResult) -> str:
    a = r.analysis
    sections = [verdict_section(r), *analysis_sections(a), vulns_section(r),
                Section("secrets", f"Secrets ({len(r.secrets)})", _findings(r.secrets, "No secrets found.")),
                Section("audit", f"Image audit ({len(r.audit)})", _findings(r.audit, "No audit findings.")),
                Section("lint", f"Dockerfile lint ({len(r.lint)})",
                        _findings(r.lint, "No Dockerfile given." if not r.lint_file else "No lint findings."))]
    return render_page(f"imagewise check: {a.reference}", sections,
                       subtitle=f"{a.digest}  {len(r.packages)} packages",
                       data={"tree": a.tree.to_json()})
