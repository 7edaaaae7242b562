"""Apply a policy to what one check found: gates, rule levels, the verdict and the scorecard."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from imagewise.findings import Finding, Location, Severity
from imagewise.policy.grouping import group, rules_of
from imagewise.policy.model import SEVERITIES, Policy
from imagewise.record import Record
from imagewise.registries import registry_allowed
from imagewise.units import format_size

AREAS = ("build", "security", "performance", "operations")
_LEVEL = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}


class Vuln(Record):
    """The policy's view of a vulnerability (the scanner has a richer model)."""

    __slots__ = (  # noqa: RUF023 - in field order
        "id",
        "package",
        "version",
        "severity",  # low|medium|high|critical|unknown
        "fixed_versions",
        "layer_index",
    )

    def __init__(
        self,
        id: str,
        package: str,
        version: str,
        severity: str,
        fixed_versions: tuple[str, ...] = (),
        layer_index: int | None = None,
    ) -> None:
        self.id = id
        self.package = package
        self.version = version
        self.severity = severity
        self.fixed_versions = fixed_versions
        self.layer_index = layer_index


class CheckFacts(Record):
    """Everything a policy judges, gathered by ``imagewise check``."""

    __slots__ = (  # noqa: RUF023 - in field order
        "size_bytes",
        "layer_count",
        "efficiency",
        "reclaimable_bytes",
        "tag",
        "base_image",  # FROM of the final stage when a Dockerfile is given
        "labels",
        "findings",  # lint, audit, secrets, waste — with their rule areas
        "areas",  # rule id -> area
        "vulns",
        "vuln_scan_ran",
        "vuln_note",  # why the vulnerability scan did not run
        "lint_ran",  # a Dockerfile was given and linted
        "ignores",  # the ignore entries in force
        "today",
    )

    def __init__(
        self,
        size_bytes: int = 0,
        layer_count: int = 0,
        efficiency: float | None = None,
        reclaimable_bytes: int | None = None,
        tag: str | None = None,
        base_image: str = "",
        labels: dict[str, str] | None = None,
        findings: tuple[Finding, ...] = (),
        areas: dict[str, str] | None = None,
        vulns: tuple[Vuln, ...] = (),
        vuln_scan_ran: bool = False,
        vuln_note: str = "",
        lint_ran: bool = False,
        ignores: tuple[Ignore, ...] = (),
        today: date | None = None,
    ) -> None:
        self.size_bytes = size_bytes
        self.layer_count = layer_count
        self.efficiency = efficiency
        self.reclaimable_bytes = reclaimable_bytes
        self.tag = tag
        self.base_image = base_image
        self.labels = {} if labels is None else labels
        self.findings = findings
        self.areas = {} if areas is None else areas
        self.vulns = vulns
        self.vuln_scan_ran = vuln_scan_ran
        self.vuln_note = vuln_note
        self.lint_ran = lint_ran
        self.ignores = ignores
        self.today = today


class Ignore(Record):
    """An ignore entry as the policy judges it (``max_ignore_days``)."""

    __slots__ = ("id", "source", "expires")  # noqa: RUF023 - in field order

    def __init__(self, id: str, source: str, expires: date | None = None) -> None:
        self.id = id
        self.source = source
        self.expires = expires


class Unchecked(Record):
    """A gate that could not be judged because its input is missing."""

    __slots__ = ("gate", "reason", "area")  # noqa: RUF023 - in field order

    def __init__(self, gate: str, reason: str, area: str) -> None:
        self.gate = gate
        self.reason = reason
        self.area = area

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "reason": self.reason, "area": self.area}


class Violation(Record):
    __slots__ = ("rule", "message", "area", "location")  # noqa: RUF023 - in field order

    def __init__(
        self,
        rule: str,
        message: str,
        area: str,
        location: Location | None = None,
    ) -> None:
        self.rule = rule
        self.message = message
        self.area = area
        self.location = Location() if location is None else location

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "area": self.area,
            **self.location.to_json(),
        }


class AreaScore(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "area",
        "score",  # None: the area was not checked
        "grade",  # "-" when not checked
        "top",
        "not_checked",  # what in this area did not run, in words
    )

    def __init__(
        self,
        area: str,
        score: int | None,
        grade: str,
        top: tuple[Finding, ...],
        not_checked: tuple[str, ...] = (),
    ) -> None:
        self.area = area
        self.score = score
        self.grade = grade
        self.top = top
        self.not_checked = not_checked

    @property
    def checked(self) -> bool:
        return self.score is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "grade": self.grade,
            "checked": self.checked,
            "not_checked": list(self.not_checked),
            "top": [_finding_json(f) for f in self.top],
        }


def _finding_json(f: Finding) -> dict[str, Any]:
    out = f.to_json()
    if f.extra.get("also"):
        out["also"] = list(f.extra["also"])
    return out


class Verdict(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "passed",  # what the exit status says: no violation, and complete (or allowed not to be)
        "violations",
        "findings",  # policy levels applied, "off" ones removed, duplicates grouped
        "scores",
        "policy_source",
        "not_checked",
    )

    def __init__(
        self,
        passed: bool,
        violations: tuple[Violation, ...],
        findings: tuple[Finding, ...],
        scores: tuple[AreaScore, ...],
        policy_source: str = "",
        not_checked: tuple[Unchecked, ...] = (),
    ) -> None:
        self.passed = passed
        self.violations = violations
        self.findings = findings
        self.scores = scores
        self.policy_source = policy_source
        self.not_checked = not_checked

    @property
    def status(self) -> str:
        """FAIL (a violation), INCOMPLETE (none, but a gate could not be judged) or PASS."""
        if self.violations:
            return "FAIL"
        return "INCOMPLETE" if self.not_checked else "PASS"

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "status": self.status,
            "source": self.policy_source,
            "violations": [v.to_json() for v in self.violations],
            "not_checked": [u.to_json() for u in self.not_checked],
        }

    def score_json(self) -> dict[str, Any]:
        done = [s.score for s in self.scores if s.score is not None]
        total = round(sum(done) / max(1, len(done)))
        return {"total": total, "grade": grade(total), **{s.area: s.to_json() for s in self.scores}}


def grade(score: int) -> str:
    for limit, g in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if score >= limit:
            return g
    return "F"


def apply_levels(policy: Policy, findings: Iterable[Finding]) -> list[Finding]:
    out = []
    for f in findings:
        level = policy.level(f.rule)
        if level == "off":
            continue
        out.append(f.replace(severity=_LEVEL[level]) if level else f)
    return out


_PINNED = re.compile(r"(@sha256:[0-9a-f]{64}$)|(:[^:/@]+$)")


def _gates(policy: Policy, facts: CheckFacts, findings: list[Finding]) -> list[Violation]:
    v: list[Violation] = []
    sec, opt = policy.security_baseline, policy.optimization
    rule_area = facts.areas

    if opt.max_size is not None and facts.size_bytes > opt.max_size:
        v.append(
            Violation(
                "optimization.max_size",
                f"image is {format_size(facts.size_bytes)}, "
                f"over the {format_size(opt.max_size)} limit",
                "performance",
            )
        )
    if opt.max_layers is not None and facts.layer_count > opt.max_layers:
        v.append(
            Violation(
                "optimization.max_layers",
                f"{facts.layer_count} layers, over the limit of {opt.max_layers}",
                "performance",
            )
        )
    if (
        opt.min_efficiency is not None
        and facts.efficiency is not None
        and facts.efficiency < opt.min_efficiency
    ):
        v.append(
            Violation(
                "optimization.min_efficiency",
                f"efficiency {facts.efficiency:.2%} is under {opt.min_efficiency:.0%}",
                "performance",
            )
        )
    if (
        opt.max_reclaimable_bytes is not None
        and facts.reclaimable_bytes is not None
        and facts.reclaimable_bytes > opt.max_reclaimable_bytes
    ):
        v.append(
            Violation(
                "optimization.max_reclaimable_bytes",
                f"{format_size(facts.reclaimable_bytes)} reclaimable, over "
                f"{format_size(opt.max_reclaimable_bytes)}",
                "performance",
            )
        )
    if opt.forbid_caches:
        for f in findings:
            if _CACHE_RULES & set(rules_of(f)):
                v.append(
                    Violation("optimization.forbid_caches", f.message, "performance", f.location)
                )
    if sec.require_non_root:
        for f in findings:
            if "CIS-DI-0001" in rules_of(f):
                v.append(
                    Violation(
                        "security_baseline.require_non_root", f.message, "security", f.location
                    )
                )
    if sec.forbid_secrets:
        for f in findings:
            if any(_is_secret(r) for r in rules_of(f)):
                v.append(
                    Violation("security_baseline.forbid_secrets", f.message, "security", f.location)
                )
    if facts.base_image:
        base = facts.base_image
        if sec.require_pinned_base and (not _PINNED.search(base) or base.endswith(":latest")):
            v.append(
                Violation(
                    "security_baseline.require_pinned_base",
                    f"base image {base} is not pinned to a version tag or digest",
                    "security",
                )
            )
        if sec.allowed_registries and base.lower() != "scratch":
            from imagewise.errors import ImagewiseError
            from imagewise.reference import ImageReference

            try:
                reg = "" if "$" in base else ImageReference.parse(base.split("@")[0]).registry
            except ImagewiseError:  # not a reference we can judge
                reg = ""
            if reg and not registry_allowed(reg, sec.allowed_registries):
                v.append(
                    Violation(
                        "security_baseline.allowed_registries",
                        f"base image registry {reg} is not allowed "
                        f"({', '.join(sec.allowed_registries)})",
                        "security",
                    )
                )
    if sec.max_vulnerability_severity is not None and facts.vuln_scan_ran:
        limit = SEVERITIES.index(sec.max_vulnerability_severity)

        def rank(sev: str) -> int:
            return SEVERITIES.index(sev if sev in SEVERITIES else sec.unknown_severity)

        bad = [
            x
            for x in facts.vulns
            if rank(x.severity) > limit and (x.fixed_versions or not sec.only_fixable)
        ]
        for x in bad:
            fixed = f"; fixed in {', '.join(x.fixed_versions)}" if x.fixed_versions else ""
            v.append(
                Violation(
                    "security_baseline.max_vulnerability_severity",
                    f"{x.id} ({x.severity}) in {x.package} {x.version}{fixed}",
                    "security",
                    Location(layer_index=x.layer_index),
                )
            )
    if sec.max_ignore_days is not None:
        horizon = (facts.today or date.today()) + timedelta(days=sec.max_ignore_days)
        for ig in facts.ignores:
            if ig.expires is None or ig.expires > horizon:
                when = f"expires {ig.expires}" if ig.expires else "never expires"
                v.append(
                    Violation(
                        "security_baseline.max_ignore_days",
                        f"{ig.source}: the ignore of {ig.id} {when}; ignores must expire "
                        f"within {sec.max_ignore_days} days",
                        "security",
                    )
                )
    missing = [k for k in policy.labels.required if not facts.labels.get(k)]
    if missing:
        v.append(
            Violation("labels.required", "missing labels: " + ", ".join(missing), "operations")
        )
    if facts.tag is not None:
        if policy.tags.forbid_latest and facts.tag == "latest":
            v.append(Violation("tags.forbid_latest", "image is tagged latest", "operations"))
        elif (
            policy.tags.allowed_patterns
            and facts.tag
            and not any(re.search(p, facts.tag) for p in policy.tags.allowed_patterns)
        ):
            v.append(
                Violation(
                    "tags.allowed_patterns",
                    f"tag {facts.tag!r} follows no tag convention "
                    "(semantic version, environment or timestamp)",
                    "operations",
                )
            )
    # every finding at error level is a violation of its own rule (unless a gate judged it)
    gated = {*_CACHE_RULES, "CIS-DI-0001", "CIS-DI-0010"}
    for f in findings:
        if f.severity >= Severity.ERROR and not any(
            _is_secret(r) or r in gated for r in rules_of(f)
        ):
            v.append(Violation(f.rule, f.message, rule_area.get(f.rule, "build"), f.location))
    return v


_CACHE_RULES = frozenset({"DKL-DI-0004", "DKL-DI-0005"})


def _is_secret(rule: str) -> bool:
    return rule == "CIS-DI-0010" or rule.startswith(("SECRET", "secret/"))


_NO_DOCKERFILE = "no Dockerfile given (--dockerfile): the base image is unknown"


def _unchecked(policy: Policy, facts: CheckFacts) -> list[Unchecked]:
    """The gates whose input is missing: the verdict cannot say they pass."""
    sec, out = policy.security_baseline, []
    if sec.max_vulnerability_severity is not None and not facts.vuln_scan_ran:
        out.append(
            Unchecked(
                "security_baseline.max_vulnerability_severity",
                facts.vuln_note or "the vulnerability scan did not run",
                "security",
            )
        )
    if not facts.base_image:
        if sec.require_pinned_base:
            out.append(
                Unchecked("security_baseline.require_pinned_base", _NO_DOCKERFILE, "security")
            )
        if sec.allowed_registries:
            out.append(
                Unchecked("security_baseline.allowed_registries", _NO_DOCKERFILE, "security")
            )
    if facts.tag is None:
        why = "the image reference names no tag"
        if policy.tags.forbid_latest:
            out.append(Unchecked("tags.forbid_latest", why, "operations"))
        if policy.tags.allowed_patterns:
            out.append(Unchecked("tags.allowed_patterns", why, "operations"))
    return out


_WEIGHT = {Severity.ERROR: 20, Severity.WARNING: 8, Severity.INFO: 2, Severity.STYLE: 1}


def _score(
    area: str,
    findings: list[Finding],
    violations: list[Violation],
    facts: CheckFacts,
    unchecked: list[Unchecked],
) -> AreaScore:
    notes = [f"{u.gate}: {u.reason}" for u in unchecked if u.area == area]
    if area == "build" and not facts.lint_ran:
        return AreaScore(
            area, None, "-", (), ("Dockerfile lint: no Dockerfile given (--dockerfile)", *notes)
        )
    if area == "security" and not facts.vuln_scan_ran and not notes:
        notes.append("vulnerabilities: " + (facts.vuln_note or "the scan did not run"))
    mine = [f for f in findings if facts.areas.get(f.rule, "build") == area]
    penalty = 0
    seen: dict[str, int] = {}
    for f in sorted(mine, key=lambda f: -f.severity):
        # repeated hits of one rule weigh less than distinct problems
        n = seen.get(f.rule, 0)
        seen[f.rule] = n + 1
        penalty += _WEIGHT.get(f.severity, 0) // (1 + n)
    penalty += 10 * sum(1 for x in violations if x.area == area and "." in x.rule)
    if area == "security" and facts.vuln_scan_ran:
        sev_w = {"critical": 25, "high": 10, "medium": 3, "low": 1}
        penalty += min(60, sum(sev_w.get(x.severity, 0) for x in facts.vulns))
    score = max(0, 100 - penalty)
    top = tuple(sorted(mine, key=lambda f: (-f.severity, -f.bytes_saved))[:3])
    return AreaScore(area, score, grade(score), top, tuple(dict.fromkeys(notes)))


def evaluate(policy: Policy, facts: CheckFacts, *, allow_incomplete: bool = False) -> Verdict:
    """The verdict: levels applied, one finding per problem (:mod:`.grouping`), the gates, the
    gates that could not be judged, and the scorecard. It passes when nothing is violated and
    every enabled gate was judged (or ``allow_incomplete``)."""
    findings = group(apply_levels(policy, facts.findings))
    violations = _gates(policy, facts, findings)
    unchecked = _unchecked(policy, facts)
    scores = tuple(_score(a, findings, violations, facts, unchecked) for a in AREAS)
    passed = not violations and (allow_incomplete or not unchecked)
    return Verdict(
        passed, tuple(violations), tuple(findings), scores, policy.source, tuple(unchecked)
    )
