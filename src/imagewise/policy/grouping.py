"""One problem, one finding: findings of different rules that name the same thing at the same
place are grouped into one.

The Dockerfile linter, the image audit, the secret detectors and the waste analysis look at the
same image from different sides, so one problem is often seen by several of them: an
``ENV DB_PASSWORD=...`` is IW109 and DL3064 in the Dockerfile, CIS-DI-0010 in the config and a
secret detector's hit; apt caches left in a layer are DKL-DI-0005, IW-WASTE-APT-LISTS,
IW-WASTE-APT-ARCHIVES and DL3009 on the RUN line. :func:`group` keeps one finding per group,
the one of the rule listed first in its topic (for caches the waste analysis' finding, which
knows the bytes and the fix), raised to the most serious severity in the group, and lists the
other rule ids in its ``extra["also"]``; gates and scores then count the problem once. The
waste analysis' findings are disjoint (each file in one category), so a group's saving is the
sum of theirs, and their fixes are kept.

What "the same thing" is: a topic below, a set of rules. What "the same place" is depends on
the topic: the Dockerfile line (or, without one, the layer) of a build step; the file for a
secret in a file; the ``ENV`` line or key for a secret in the config; the image itself for a
fact of the final image (its user, its health check).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from imagewise.findings import Finding

# topic -> (how a place is told apart, rules in order of preference; "secret/" is a prefix)
_TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "secret": ("secret", ("CIS-DI-0010", "secret/", "IW109", "DL3064")),
    "apt-cache": ("step", ("IW-WASTE-APT-LISTS", "IW-WASTE-APT-ARCHIVES", "DKL-DI-0005", "DL3009")),
    "apk-cache": ("step", ("IW-WASTE-APK-CACHE", "DKL-DI-0004", "DL3019")),
    "yum-cache": ("step", ("IW-WASTE-YUM-CACHE", "DL3032", "DL3040")),
    "pip-cache": ("step", ("IW-WASTE-PIP-CACHE", "DL3042")),
    "yarn-cache": ("step", ("IW-WASTE-YARN-CACHE", "DL3060")),
    "sudo": ("step", ("DKL-DI-0001", "DL3004")),
    "add": ("step", ("CIS-DI-0009", "DL3020")),
    "root-user": ("image", ("CIS-DI-0001", "IW103")),
    "healthcheck": ("image", ("CIS-DI-0006", "IW104", "DL3057")),
}
_BY_RULE: dict[str, tuple[str, int]] = {
    rule: (topic, n) for topic, (_, rules) in _TOPICS.items() for n, rule in enumerate(rules)
}


_WASTE = "IW-WASTE-"


def topic_of(rule: str) -> tuple[str, int] | None:
    """(topic, preference) of a rule id, or None for a rule that groups with no other."""
    if rule.startswith("secret/"):
        return _BY_RULE["secret/"]
    return _BY_RULE.get(rule)


def also(f: Finding) -> tuple[str, ...]:
    """The other rule ids grouped into ``f``."""
    return tuple(f.extra.get("also", ()))


def rules_of(f: Finding) -> tuple[str, ...]:
    """``f``'s rule and the rules grouped into it."""
    return (f.rule, *also(f))


def _dockerfile_line(f: Finding) -> int:
    line = f.extra.get("dockerfile_line")
    if line:
        return int(line)
    loc = f.location
    return loc.line if loc.file and not loc.path else 0


def _place(kind: str, f: Finding) -> Hashable | None:
    loc = f.location
    if kind == "image":
        return "image"
    if kind == "secret":
        if loc.path and not loc.path.startswith(("config.", "history[")):
            return ("file", loc.layer_index, loc.path.lstrip("/"))
        line = _dockerfile_line(f)
        if line:
            return ("line", line)
        return ("config", loc.path) if loc.path else None
    line = _dockerfile_line(f)  # a build step
    if line:
        return ("line", line)
    return ("layer", loc.layer_index) if loc.layer_index is not None else None


def group(findings: Iterable[Finding]) -> list[Finding]:
    """The findings with each group replaced by its first-ranked member, in input order; the
    kept finding lists the other members' rule ids in ``extra["also"]``."""
    items = list(findings)
    groups: dict[Hashable, list[int]] = {}
    for n, f in enumerate(items):
        t = topic_of(f.rule)
        if t is None:
            continue
        place = _place(_TOPICS[t[0]][0], f)
        if place is None:
            continue
        groups.setdefault((t[0], place), []).append(n)
    keep: dict[int, Finding] = {}
    dropped: set[int] = set()
    for members in groups.values():
        if len(members) == 1:
            continue
        best = min(members, key=lambda n: (topic_of(items[n].rule)[1], -items[n].severity, n))  # type: ignore[index]
        kept = items[best]
        others = [r for n in members if n != best for r in rules_of(items[n])]
        merged = tuple(dict.fromkeys(r for r in [*also(kept), *others] if r != kept.rule))
        waste = [items[n] for n in members if items[n].rule.startswith(_WASTE)]
        fixes = [kept.fix] + [w.fix for w in waste if w is not kept]
        keep[best] = kept.replace(
            severity=max(items[n].severity for n in members),
            bytes_saved=max(kept.bytes_saved, sum(w.bytes_saved for w in waste)),
            fix="; ".join(dict.fromkeys(f for f in fixes if f)),
            extra={**kept.extra, "also": list(merged)},
        )
        dropped.update(n for n in members if n != best)
    return [keep.get(n, f) for n, f in enumerate(items) if n not in dropped]
