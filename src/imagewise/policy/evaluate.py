"""Apply a policy to what one check found: gates, rule levels, the verdict and the scorecard."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from imagewise.findings import Finding, Location, Severity
from imagewise.policy.model import SEVERITIES, Policy
from imagewise.units import format_size

AREAS = ("build", "security", "performance", "operations")
_LEVEL = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}


@dataclass(frozen=True)
class Vuln:
    """The policy's view of a vulnerability (the scanner has a richer model)."""

    id: str
    package: str
    version: str
    severity: str  # low|medium|high|critical|unknown
    fixed_versions: tuple[str, ...] = ()
    layer_index: int | None = None


@dataclass(frozen=True)
class CheckFacts:
    """Everything a policy judges, gathered by ``imagewise check``."""

    size_bytes: int = 0
    layer_count: int = 0
    efficiency: float | None = None
    reclaimable_bytes: int | None = None
    tag: str | None = None
    base_image: str = ""  # FROM of the final stage when a Dockerfile is given
    labels: dict[str, str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()  # lint, audit, secrets, waste — with their rule areas
    areas: dict[str, str] = field(default_factory=dict)  # rule id -> area
    vulns: tuple[Vuln, ...] = ()
    vuln_scan_ran: bool = False


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    area: str
    location: Location = field(default_factory=Location)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "area": self.area, **self.location.to_json()}


@dataclass(frozen=True)
class AreaScore:
    area: str
    score: int
    grade: str
    top: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "grade": self.grade, "top": [f.to_json() for f in self.top]}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    violations: tuple[Violation, ...]
    findings: tuple[Finding, ...]  # with policy levels applied, "off" ones removed
    scores: tuple[AreaScore, ...]
    policy_source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "source": self.policy_source,
                "violations": [v.to_json() for v in self.violations]}

    def score_json(self) -> dict[str, Any]:
        total = round(sum(s.score for s in self.scores) / max(1, len(self.scores)))
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
        v.append(Violation("optimization.max_size", f"image is {format_size(facts.size_bytes)}, "
                           f"over the {format_size(opt.max_size)} limit", "performance"))
    if opt.max_layers is not None and facts.layer_count > opt.max_layers:
        v.append(Violation("optimization.max_layers", f"{facts.layer_count} layers, over the limit of "
                           f"{opt.max_layers}", "performance"))
    if opt.min_efficiency is not None and facts.efficiency is not None and facts.efficiency < opt.min_efficiency:
        v.append(Violation("optimization.min_efficiency", f"efficiency {facts.efficiency:.2%} is under "
                           f"{opt.min_efficiency:.0%}", "performance"))
    if (opt.max_reclaimable_bytes is not None and facts.reclaimable_bytes is not None
            and facts.reclaimable_bytes > opt.max_reclaimable_bytes):
        v.append(Violation("optimization.max_reclaimable_bytes",
                           f"{format_size(facts.reclaimable_bytes)} reclaimable, over "
                           f"{format_size(opt.max_reclaimable_bytes)}", "performance"))
    if opt.forbid_caches:
        for f in findings:
            if f.rule in ("DKL-DI-0004", "DKL-DI-0005"):
                v.append(Violation("optimization.forbid_caches", f.message, "performance", f.location))
    if sec.require_non_root:
        for f in findings:
            if f.rule == "CIS-DI-0001":
                v.append(Violation("security_baseline.require_non_root", f.message, "security", f.location))
    if sec.forbid_secrets:
        for f in findings:
            if f.rule == "CIS-DI-0010" or f.rule.startswith(("SECRET", "secret/")):
                v.append(Violation("security_baseline.forbid_secrets", f.message, "security", f.location))
    if facts.base_image:
        base = facts.base_image
        if sec.require_pinned_base and (not _PINNED.search(base) or base.endswith(":latest")):
            v.append(Violation("security_baseline.require_pinned_base",
                               f"base image {base} is not pinned to a version tag or digest", "security"))
        if sec.allowed_registries and base.lower() != "scratch":
            from imagewise.errors import ImagewiseError
            from imagewise.reference import ImageReference

            try:
                reg = "" if "$" in base else ImageReference.parse(base.split("@")[0]).registry
            except ImagewiseError:  # not a reference we can judge
                reg = ""
            if reg and reg not in sec.allowed_registries:
                v.append(Violation("security_baseline.allowed_registries",
                                   f"base image registry {reg} is not allowed "
                                   f"({', '.join(sec.allowed_registries)})", "security"))
    if facts.vuln_scan_ran:
        limit = SEVERITIES.index(sec.max_vulnerability_severity)

        def rank(sev: str) -> int:
            return SEVERITIES.index(sev if sev in SEVERITIES else sec.unknown_severity)

        bad = [x for x in facts.vulns if rank(x.severity) > limit
               and (x.fixed_versions or not sec.only_fixable)]
        for x in bad:
            fixed = f"; fixed in {', '.join(x.fixed_versions)}" if x.fixed_versions else ""
            v.append(Violation("security_baseline.max_vulnerability_severity",
                               f"{x.id} ({x.severity}) in {x.package} {x.version}{fixed}", "security",
                               Location(layer_index=x.layer_index)))
    missing = [k for k in policy.labels.required if not facts.labels.get(k)]
    if missing:
        v.append(Violation("labels.required", "missing labels: " + ", ".join(missing), "operations"))
    if facts.tag is not None:
        if policy.tags.forbid_latest and facts.tag == "latest":
            v.append(Violation("tags.forbid_latest", "image is tagged latest", "operations"))
        elif policy.tags.allowed_patterns and facts.tag and not any(
                re.search(p, facts.tag) for p in policy.tags.allowed_patterns):
            v.append(Violation("tags.allowed_patterns", f"tag {facts.tag!r} follows no tag convention "
                               "(semantic version, environment or timestamp)", "operations"))
    # every finding at error level is a violation of its own rule
    gated = {"CIS-DI-0001", "CIS-DI-0010", "DKL-DI-0004", "DKL-DI-0005"}
    for f in findings:
        if f.severity >= Severity.ERROR and not f.rule.startswith(("SECRET", "secret/")) and f.rule not in gated:
            v.append(Violation(f.rule, f.message, rule_area.get(f.rule, "build"), f.location))
    return v


_WEIGHT = {Severity.ERROR: 20, Severity.WARNING: 8, Severity.INFO: 2, Severity.STYLE: 1}


def _score(area: str, findings: list[Finding], violations: list[Violation], facts: CheckFacts) -> AreaScore:
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
    return AreaScore(area, score, grade(score), top)


def evaluate(policy: Policy, facts: CheckFacts) -> Verdict:
    findings = apply_levels(policy, facts.findings)
    violations = _gates(policy, facts, findings)
    scores = tuple(_score(a, findings, violations, facts) for a in AREAS)
    return Verdict(not violations, tuple(violations), tuple(findings), scores, policy.source)
