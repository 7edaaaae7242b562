"""Renderers for Dockerfile lint findings: table (the terminal's), json, sarif, checkstyle,
gitlab; ``encoders.LINT`` declares them.

Each renderer takes the one ``Finding`` model (plus the declared ``RuleInfo`` table and, for the
table, the file texts) and returns a string (the json body: a dict, the envelope is the
encoder's). No renderer builds findings or decides what fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from imagewise.findings import Finding, RuleInfo, Severity
from imagewise.textsafe import safe

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_SECURITY_SEVERITY = {
    Severity.ERROR: "8.0",
    Severity.WARNING: "5.5",
    Severity.INFO: "3.0",
    Severity.STYLE: "1.0",
    Severity.IGNORE: "0.0",
}

_SARIF_LEVEL = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
    Severity.STYLE: "note",
    Severity.IGNORE: "none",
}
_GITLAB_SEVERITY = {
    Severity.ERROR: "blocker",
    Severity.WARNING: "major",
    Severity.INFO: "info",
    Severity.STYLE: "minor",
    Severity.IGNORE: "info",
}
_CHECKSTYLE_SEVERITY = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
    Severity.STYLE: "info",
    Severity.IGNORE: "ignore",
}
_COLOR = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.INFO: "\x1b[1;36m",
    Severity.STYLE: "\x1b[1;35m",
    Severity.IGNORE: "\x1b[2m",
}
_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
_MAX_SNIPPET_LINES = 6


def render(
    findings: Sequence[Finding],
    fmt: str,
    *,
    rules: Mapping[str, RuleInfo] | None = None,
    sources: Mapping[str, str] | None = None,
    color: bool = False,
) -> str:
    """Render ``findings`` in format ``fmt`` (an id or alias of ``encoders.LINT``)."""
    from imagewise.encoders import LINT

    return LINT.encode(fmt, findings, rules=rules or {}, sources=sources or {}, color=color)


def _sorted(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(
        findings, key=lambda f: (f.location.file, f.location.line, f.location.column, f.rule)
    )


# -- json -----------------------------------------------------------------------------------------


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": str(f.severity),
        "file": f.location.file,
        "line": f.location.line,
        "column": f.location.column or 1,
        "message": f.message,
        "fix": f.fix,
    }


def findings_json(findings: Sequence[Finding]) -> dict[str, Any]:
    """The body of lint's JSON document (the envelope is ``encoders.LINT``'s)."""
    return {"findings": [finding_json(f) for f in _sorted(findings)]}


# -- sarif ----------------------------------------------------------------------------------------


def _rule_info(rule_id: str, rules: Mapping[str, RuleInfo], fallback: Finding) -> RuleInfo:
    info = rules.get(rule_id)
    if info is not None:
        return info
    return RuleInfo(id=rule_id, severity=fallback.severity, title=fallback.title or rule_id)


def _sarif_rule(info: RuleInfo) -> dict[str, Any]:
    help_parts = [p for p in (info.rationale, f"Fix: {info.fix}" if info.fix else "") if p]
    help_text = "\n\n".join(help_parts) or info.title
    kind = "dockerfile" if info.kind in ("", "custom") else info.kind  # custom: Dockerfile rules
    tags = list(dict.fromkeys(t for t in (info.area, info.source, kind) if t))
    props: dict[str, Any] = {
        "tags": tags,
        "precision": "high",
        "problem.severity": {"error": "error", "warning": "warning"}.get(
            _SARIF_LEVEL[info.severity], "recommendation"
        ),
    }
    if info.area == "security":  # GitHub ranks security alerts by this score
        props["security-severity"] = _SECURITY_SEVERITY[info.severity]
    return {
        "id": info.id,
        "name": info.id,
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.rationale or info.title},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": _SARIF_LEVEL[info.severity]},
        "properties": props,
    }


def _fingerprint(f: Finding) -> str:
    import hashlib

    key = f"{f.rule}\0{f.location.file}\0{f.message}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def render_sarif(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    from imagewise import __version__

    rules = rules or {}
    ordered = _sorted(findings)
    rule_ids: list[str] = []
    infos: dict[str, RuleInfo] = {}
    for f in ordered:
        if f.rule not in infos:
            infos[f.rule] = _rule_info(f.rule, rules, f)
            rule_ids.append(f.rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    occurrences: dict[str, int] = {}
    results = []
    for f in ordered:
        loc = f.location
        region: dict[str, Any] = {"startLine": max(loc.line, 1), "startColumn": max(loc.column, 1)}
        if loc.end_line and loc.end_line > loc.line:
            region["endLine"] = loc.end_line
        fp = _fingerprint(f)
        occurrences[fp] = occurrences.get(fp, 0) + 1
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message + (f" Fix: {f.fix}" if f.fix else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(loc.file), "uriBaseId": "%SRCROOT%"},
                        "region": region,
                    }
                }
            ],
            "partialFingerprints": {"imagewiseFindingHash/v1": f"{fp}:{occurrences[fp]}"},
        }
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "imagewise",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_sarif_rule(infos[r]) for r in rule_ids],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _uri(path: str) -> str:
    from urllib.parse import quote

    p = path.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return quote(p or "Dockerfile", safe="/:@-._~")


# -- checkstyle -----------------------------------------------------------------------------------


def render_checkstyle(
    findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None
) -> str:
    from xml.sax.saxutils import quoteattr  # imports urllib.request: only for this format

    by_file: dict[str, list[Finding]] = {}
    for f in _sorted(findings):
        by_file.setdefault(f.location.file, []).append(f)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<checkstyle version="4.3">']
    for name, items in by_file.items():
        out.append(f"  <file name={quoteattr(name)}>")
        for f in items:
            out.append(
                f'    <error line="{max(f.location.line, 1)}"'
                f' column="{max(f.location.column, 1)}"'
                f' severity="{_CHECKSTYLE_SEVERITY[f.severity]}"'
                f" message={quoteattr(_xml_safe(f.message))} source={quoteattr(f.rule)}/>"
            )
        out.append("  </file>")
    out.append("</checkstyle>")
    return "\n".join(out) + "\n"


def _xml_safe(text: str) -> str:
    """Drop characters XML 1.0 cannot carry at all (control characters other than tab/newline)."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


# -- gitlab code quality --------------------------------------------------------------------------


def render_gitlab(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    import hashlib

    items = []
    seen: dict[str, int] = {}
    for f in _sorted(findings):
        base = hashlib.sha256(
            f"{f.rule}\0{f.location.file}\0{f.location.line}\0{f.message}".encode()
        ).hexdigest()
        seen[base] = seen.get(base, 0) + 1
        fingerprint = (
            base if seen[base] == 1 else hashlib.sha256(f"{base}{seen[base]}".encode()).hexdigest()
        )
        items.append(
            {
                "description": f"{f.rule}: {f.message}",
                "check_name": f.rule,
                "fingerprint": fingerprint,
                "severity": _GITLAB_SEVERITY[f.severity],
                "categories": ["Style"] if f.severity <= Severity.STYLE else ["Bug Risk"],
                "location": {"path": f.location.file, "lines": {"begin": max(f.location.line, 1)}},
                "type": "issue",
            }
        )
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"


# -- tty ------------------------------------------------------------------------------------------


def render_tty(
    findings: Sequence[Finding],
    sources: Mapping[str, str] | None = None,
    color: bool = False,
    rules: Mapping[str, RuleInfo] | None = None,
) -> str:
    """Compiler-style output: ``file:line:col: severity RULE: message``, the offending lines
    with a caret underline, and the fix hint."""
    sources = sources or {}
    # lines as the parser counts them (split() would also break at \f, \x1c, \x85, ...)
    split = {name: [ln.rstrip("\r") for ln in text.split("\n")] for name, text in sources.items()}
    out: list[str] = []
    ordered = _sorted(findings)
    for f in ordered:
        out.extend(_tty_one(f, split.get(f.location.file), color))
    if ordered:
        out.append(_summary(ordered, color))
    return "\n".join(out) + ("\n" if out else "")


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color and text else text


def _tty_one(f: Finding, lines: list[str] | None, color: bool) -> list[str]:
    loc = f.location
    line, col = max(loc.line, 1), max(loc.column, 1)
    sev = _paint(str(f.severity), _COLOR[f.severity], color)
    head = (
        f"{_paint(f'{safe(loc.file)}:{line}:{col}:', _BOLD, color)} {sev} {safe(f.rule)}: "
        f"{safe(f.message)}"
    )
    out = [head]
    if lines and 0 < loc.line <= len(lines):
        end = min(max(loc.end_line, loc.line), len(lines))
        shown = list(range(loc.line, min(end, loc.line + _MAX_SNIPPET_LINES - 1) + 1))
        width = len(str(shown[-1]))
        gutter = _paint(" " * width + " |", _DIM, color)
        for n in shown:
            text = safe(lines[n - 1], lines=True).replace("\t", "    ")
            out.append(f"{_paint(f'{n:>{width}} |', _DIM, color)} {text}")
            if n == loc.line:
                before = safe(lines[n - 1][: col - 1], lines=True)
                shown_col = len(before.replace("\t", "    ")) + 1
                out.append(f"{gutter} {_caret(text, shown_col, color, f.severity)}")
        if end > shown[-1]:
            out.append(f"{gutter} ... {end - shown[-1]} more line(s)")
    if f.fix:
        out.append(f"  {_paint('fix:', _BOLD, color)} {safe(f.fix)}")
    return out


def _caret(text: str, col: int, color: bool, severity: Severity) -> str:
    """A caret under the offending text: the whole instruction line when the finding points at
    the instruction (column 1), else the word starting at ``col``."""
    start = col - 1
    if start >= len(text):
        start = len(text.rstrip())
    if col <= 1:
        start = len(text) - len(text.lstrip())
        end = len(text.rstrip().rstrip("\\").rstrip())
    else:
        end = start
        while end < len(text) and not text[end].isspace():
            end += 1
    marks = "^" + "~" * max(end - start - 1, 0)
    return " " * start + _paint(marks, _COLOR[severity], color)


def _summary(findings: Sequence[Finding], color: bool) -> str:
    counts: dict[Severity, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    parts = [
        f"{n} {sev}{'s' if n != 1 and sev >= Severity.WARNING else ''}"
        for sev, n in sorted(counts.items(), reverse=True)
    ]
    files = len({f.location.file for f in findings})
    total = len(findings)
    text = (
        f"{total} finding{'s' if total != 1 else ''} ({', '.join(parts)}) "
        f"in {files} file{'s' if files != 1 else ''}"
    )
    return _paint(text, _BOLD, color)
