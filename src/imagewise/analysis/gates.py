"""CI gates over an analysis, compatible with dive's ``--ci`` rules and ``.dive-ci`` files.

dive's three rules (fail when ``efficiency < lowest``, ``wasted_bytes > highest``,
``user_wasted_percent > highest``) plus ours, ``max-reclaimable-bytes``. Rule values are strings
as in dive: ``""``, ``disabled``, ``off`` and ``false`` switch a rule off; ratios must lie in
0..1 (``90%`` is accepted as 0.9); byte sizes read like ``20MB``, ``20MiB``, ``20Mi``, ``512``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from imagewise.analysis.model import ImageAnalysis
from imagewise.errors import ConfigError, UsageError
from imagewise.record import Record
from imagewise.units import format_size, parse_size

EFFICIENCY = "lowest-efficiency"
WASTED = "highest-wasted-bytes"
USER_PERCENT = "highest-user-wasted-percent"
RECLAIMABLE = "highest-reclaimable-bytes"
ORDER = (EFFICIENCY, WASTED, USER_PERCENT, RECLAIMABLE)

#: every spelling dive (old and new) accepts, plus ours, mapped to the canonical rule name
KEYS: dict[str, str] = {
    "lowestefficiency": EFFICIENCY,
    "lowest-efficiency": EFFICIENCY,
    "lowest-efficiency-threshold": EFFICIENCY,
    "lowest_efficiency": EFFICIENCY,
    "highestwastedbytes": WASTED,
    "highest-wasted-bytes": WASTED,
    "highest_wasted_bytes": WASTED,
    "highestuserwastedpercent": USER_PERCENT,
    "highest-user-wasted-percent": USER_PERCENT,
    "highest_user_wasted_percent": USER_PERCENT,
    "highestreclaimablebytes": RECLAIMABLE,
    "highest-reclaimable-bytes": RECLAIMABLE,
    "max-reclaimable-bytes": RECLAIMABLE,
    "highest_reclaimable_bytes": RECLAIMABLE,
}

#: dive's defaults under ``--ci``
DIVE_DEFAULTS = {EFFICIENCY: "0.9", WASTED: "disabled", USER_PERCENT: "0.1"}

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


class Gate(Record):
    __slots__ = ("rule", "threshold", "text")

    def __init__(self, rule: str, threshold: float | int | None, text: str) -> None:
        self.rule = rule
        self.threshold = threshold  # None = disabled
        self.text = text  # the value as given

    def evaluate(self, a: ImageAnalysis) -> GateResult:
        if self.threshold is None:
            return GateResult(self.rule, SKIP, self.text, "rule disabled")
        check, describe = _CHECKS[self.rule]
        failed = check(a, self.threshold)
        return GateResult(
            self.rule, FAIL if failed else PASS, self.text, describe(a, self.threshold, failed)
        )


class GateResult(Record):
    __slots__ = ("rule", "status", "threshold", "message")  # noqa: RUF023 - in field order

    def __init__(self, rule: str, status: str, threshold: str, message: str) -> None:
        self.rule = rule
        self.status = status
        self.threshold = threshold
        self.message = message

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        return f"{self.status}  {self.rule} ({self.threshold}): {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status.lower(),
            "threshold": self.threshold,
            "message": self.message,
        }


def _disabled(text: str) -> bool:
    return text.strip().lower() in ("", "disabled", "off", "false", "none")


def parse_ratio(text: str, rule: str) -> float:
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ConfigError(
            f"invalid {rule} value {text!r}: expected a ratio between 0 and 1"
        ) from None
    if not 0 <= value <= 1 or math.isnan(value):
        raise ConfigError(f"{rule} value {text!r} is outside the allowed range 0-1")
    return value


def parse_bytes(text: str, rule: str) -> int:
    t = text.strip()
    low = t.lower()
    for short, full in (("ki", "kib"), ("mi", "mib"), ("gi", "gib"), ("ti", "tib")):
        if low.endswith(short):
            t = t[: -len(short)] + full
            break
    try:
        return parse_size(t)
    except UsageError:
        raise ConfigError(f"invalid {rule} value {text!r}: expected a size like 20MB") from None


def make_gate(rule: str, value: object) -> Gate:
    text = "" if value is None else str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    if _disabled(text):
        return Gate(rule, None, "disabled")
    if rule in (EFFICIENCY, USER_PERCENT):
        return Gate(rule, parse_ratio(text, rule), text)
    return Gate(rule, parse_bytes(text, rule), text)


def load_dive_ci(path: str) -> dict[str, str]:
    """Rule values from a ``.dive-ci`` YAML file (``rules:`` mapping, either key spelling)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f.read())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such CI config file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not a valid CI config: {e}".splitlines()[0]) from e
    if doc is None:
        return {}
    rules = doc.get("rules", doc) if isinstance(doc, dict) else None
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: expected a 'rules:' mapping")
    out: dict[str, str] = {}
    for key, value in rules.items():
        rule = KEYS.get(str(key).strip().lower())
        if rule is None:
            raise ConfigError(f"{path}: unknown rule {key!r}; known: {', '.join(ORDER)}")
        out[rule] = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
    return out


def gates_for(
    *,
    ci: bool = False,
    ci_config: str | None = None,
    efficiency: str | None = None,
    wasted: str | None = None,
    user_percent: str | None = None,
    reclaimable: str | None = None,
) -> list[Gate]:
    """The gates a run asks for, with dive's precedence: its defaults (``ci``) < a ``.dive-ci``
    file (``ci_config``, or ``./.dive-ci`` with ``ci``) < the values given here."""
    import os

    values: dict[str, object] = dict(DIVE_DEFAULTS) if ci else {}
    path = ci_config or (".dive-ci" if ci and os.path.isfile(".dive-ci") else None)
    if path:
        values.update(load_dive_ci(path))
    flags = (efficiency, wasted, user_percent, reclaimable)
    keys = (EFFICIENCY, WASTED, USER_PERCENT, RECLAIMABLE)
    values.update({k: v for k, v in zip(keys, flags, strict=True) if v is not None})
    return build_gates(values)


def build_gates(values: dict[str, object]) -> list[Gate]:
    return [make_gate(rule, values[rule]) for rule in ORDER if rule in values]


def evaluate(gates: list[Gate], a: ImageAnalysis) -> list[GateResult]:
    return [g.evaluate(a) for g in gates]


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else "inf" if math.isinf(x) else f"{x * 100:.2f} %"


_CHECKS: dict[
    str, tuple[Callable[[ImageAnalysis, Any], bool], Callable[[ImageAnalysis, Any, bool], str]]
] = {
    EFFICIENCY: (
        lambda a, t: t > a.dive.efficiency,
        lambda a, t, f: f"efficiency {_pct(a.dive.efficiency)} {'<' if f else '>='} {_pct(t)}",
    ),
    WASTED: (
        lambda a, t: a.dive.wasted_bytes > t,
        lambda a, t, f: (
            f"wasted bytes {a.dive.wasted_bytes} ({format_size(a.dive.wasted_bytes)}) "
            f"{'>' if f else '<='} {t}"
        ),
    ),
    USER_PERCENT: (
        lambda a, t: a.dive.user_wasted_percent > t,  # NaN compares False, like dive
        lambda a, t, f: (
            f"user wasted {_pct(a.dive.user_wasted_percent)} {'>' if f else '<='} {_pct(t)}"
        ),
    ),
    RECLAIMABLE: (
        lambda a, t: a.reclaimable_bytes > t,
        lambda a, t, f: (
            f"reclaimable {a.reclaimable_bytes} ({format_size(a.reclaimable_bytes)}) "
            f"{'>' if f else '<='} {t}"
        ),
    ),
}


def analysis_json(
    a: ImageAnalysis, gates: list[GateResult] | tuple[GateResult, ...] = (), lazy: bool = False
) -> dict[str, Any]:
    """The body of ``analyze``'s JSON document: the analysis, plus the gates' outcomes and
    whether they all passed when gates were asked for (``lazy``: see ``ImageAnalysis.to_json``)."""
    doc = a.to_json(lazy=lazy)
    if gates:
        doc["gates"] = [r.to_json() for r in gates]
        doc["passed"] = not any(r.failed for r in gates)
    return doc
