"""The check report: the analysis report extended with verdict, scorecard, vulnerabilities,
secrets, audit and lint sections, one self-contained file."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from imagewise.check.render import _where, also, not_checked_lines
from imagewise.check.run import CheckResult
from imagewise.findings import Finding
from imagewise.report.html import Section, analysis_sections, render_page


class _Html(str):
    """A table cell that is markup already (escaped where it needs to be)."""


def _cell(c: str) -> str:
    return c if isinstance(c, _Html) else escape(c)


def _rid(rule: str) -> _Html:
    """A rule id that never wraps."""
    return _Html(f'<span class="rid">{escape(rule)}</span>')


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="n">{escape(empty)}</p>'
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _message(f: Finding) -> _Html:
    text = escape(f.message)
    if also(f):
        text += (
            '<div class="muted">also reported as ' + ", ".join(_rid(r) for r in also(f)) + "</div>"
        )
    return _Html(text)


def _findings(findings: Iterable[Finding], empty: str) -> str:
    items = sorted(findings, key=lambda f: (-f.severity, -f.bytes_saved))
    return _table(
        ("severity", "rule", "message", "fix", "where"),
        ((str(f.severity), _rid(f.rule), _message(f), f.fix, _where(f)) for f in items),
        empty,
    )


def _lines(cls: str, lines: Iterable[str], prefix: str = "") -> str:
    items = "".join(f"<p>{escape(prefix + line)}</p>" for line in lines)
    return f'<div class="{cls}">{items}</div>' if items else ""


def warnings_html(r: CheckResult) -> str:
    return _lines("warnings", r.warnings, "warning: ")


def verdict_section(r: CheckResult) -> Section:
    v = r.verdict
    score = v.score_json()
    state = v.status
    cls = {"PASS": "good", "FAIL": "bad"}.get(state, "meh")
    cards = []
    for s in v.scores:
        if s.score is None:
            cards.append(
                f'<div class="card"><div class="k">{escape(s.area)}</div>'
                f'<div class="v unchecked">not checked</div>'
                f'<div class="n">{escape("; ".join(s.not_checked))}</div></div>'
            )
            continue
        tops = "; ".join(_rid(f.rule) for f in s.top) or "nothing to fix"
        if s.not_checked:  # the names; the reasons are in the list under the cards
            names = dict.fromkeys(n.split(":", 1)[0].rsplit(".", 1)[-1] for n in s.not_checked)
            tops += (
                '<br><span class="unchecked">not checked: '
                + ", ".join(_rid(n) for n in names)
                + "</span>"
            )
        cards.append(
            f'<div class="card"><div class="k">{escape(s.area)}</div>'
            f'<div class="v {"good" if s.grade in "AB" else "meh" if s.grade == "C" else "bad"}">'
            f'{s.grade} <small>{s.score}</small></div><div class="n">{tops}</div></div>'
        )
    head = (
        f'<div class="cards"><div class="card"><div class="k">verdict</div>'
        f'<div class="v {cls}">{state}</div><div class="n">overall {score["grade"]} '
        f"({score['total']}/100), policy {escape(v.policy_source)}</div></div>"
        f"{''.join(cards)}</div>"
    )
    missing = not_checked_lines(r)
    unchecked = (
        f"<h3>Not checked</h3>{_lines('warnings unchecked-list', missing)}" if missing else ""
    )
    rows = []
    for x in v.violations:
        loc = x.location
        where = (
            f"{loc.file}:{loc.line}"
            if loc.file and loc.line
            else (f"layer {loc.layer_index}" if loc.layer_index is not None else "")
        )
        rows.append((x.area, _rid(x.rule), x.message, where))
    return Section(
        "verdict",
        "Verdict and scorecard",
        head
        + warnings_html(r)
        + unchecked
        + _table(("area", "rule", "violation", "where"), rows, "No policy violations."),
    )


def vulns_section(r: CheckResult) -> Section:
    if not r.vulns_scanned:
        return Section(
            "vulnerabilities",
            "Vulnerabilities (not checked)",
            f'<p class="unchecked">Not checked: {escape(r.vuln_note)}</p>',
        )
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    rows = []
    for x in sorted(r.vulnerabilities, key=lambda x: order.get(x.severity, 9)):
        loc = x.package.introduced_by
        layer = "" if loc is None or loc.layer_index is None else str(loc.layer_index)
        origin = "base image" if x.from_base else ("application" if x.from_base is False else "")
        rows.append(
            (
                _rid(x.id),
                x.severity,
                x.package.name,
                x.version,
                ", ".join(x.fixed_versions),
                layer,
                origin,
            )
        )
    return Section(
        "vulnerabilities",
        f"Vulnerabilities ({len(rows)})",
        _table(
            ("id", "severity", "package", "version", "fixed in", "layer", "origin"),
            rows,
            "No known vulnerabilities.",
        ),
    )


def lint_section(r: CheckResult) -> Section:
    if not r.linted:
        return Section(
            "lint",
            "Dockerfile lint (not checked)",
            '<p class="unchecked">Not checked: no Dockerfile given (--dockerfile).</p>',
        )
    return Section(
        "lint", f"Dockerfile lint ({len(r.lint)})", _findings(r.lint, "No lint findings.")
    )


def render_html(r: CheckResult) -> str:
    a = r.analysis.replace(waste=r.waste)  # the waste as the verdict counts it
    sections = [
        verdict_section(r),
        *analysis_sections(a),
        vulns_section(r),
        Section(
            "secrets", f"Secrets ({len(r.secrets)})", _findings(r.secrets, "No secrets found.")
        ),
        Section("audit", f"Image audit ({len(r.audit)})", _findings(r.audit, "No audit findings.")),
        lint_section(r),
    ]
    return render_page(
        f"imagewise check: {a.reference}",
        sections,
        subtitle=f"{a.digest}  {len(r.packages)} packages",
        data={"tree": a.tree.to_json()},
    )
