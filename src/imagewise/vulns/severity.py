"""Severity of a record: computed from its CVSS v4/v3/v2 vectors (``cvss`` library) or, when it has
none, taken from its own rating (``database_specific.severity``, ``ecosystem_specific.severity``).
"""

from __future__ import annotations

from typing import Any

from imagewise.record import Record

#: levels in increasing order; ``--fail-on`` takes one of the last four
LEVELS = ("unknown", "negligible", "low", "medium", "high", "critical")
_WORDS = {
    "none": "negligible",
    "negligible": "negligible",
    "unimportant": "negligible",
    "low": "low",
    "minor": "low",
    "medium": "medium",
    "moderate": "medium",
    "high": "high",
    "important": "high",
    "major": "high",
    "critical": "critical",
}


def level_rank(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        return 0


def level_from_score(score: float) -> str:
    """CVSS v3/v4 qualitative rating scale."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "negligible"


class Rating(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "level",  # one of LEVELS
        "score",
        "vector",
        "source",  # "CVSS_V3", "CVSS_V4", "CVSS_V2", "database_specific", ...
    )

    def __init__(
        self,
        level: str,
        score: float | None = None,
        vector: str = "",
        source: str = "",
    ) -> None:
        self.level = level
        self.score = score
        self.vector = vector
        self.source = source

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "score": self.score,
            "vector": self.vector,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rating:
        return cls(
            d.get("level", "unknown"), d.get("score"), d.get("vector", ""), d.get("source", "")
        )


def _cvss(kind: str, vector: str) -> Rating | None:
    import cvss

    try:
        if kind == "CVSS_V4":
            c4 = cvss.CVSS4(vector)
            score = float(c4.base_score)
        elif kind == "CVSS_V3":
            score = float(cvss.CVSS3(vector).base_score)
        elif kind == "CVSS_V2":
            v2 = cvss.CVSS2(vector)
            score = float(v2.base_score)
            # CVSS v2 has no "critical"; NVD's v2 bands: low < 4, medium < 7, high >= 7
            lvl = "high" if score >= 7.0 else "medium" if score >= 4.0 else "low"
            return Rating(lvl, score, vector, kind)
        else:
            return None
    except Exception:  # noqa: BLE001 - the cvss library raises assorted types on bad vectors
        return None
    return Rating(level_from_score(score), score, vector, kind)


def _word(value: Any, source: str) -> Rating | None:
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        return Rating(_WORDS[value.strip().lower()], None, "", source)
    return None


def rate(
    severity: Any, ecosystem_specific: Any = None, database_specific: Any = None
) -> Rating | None:
    """The best rating from an OSV ``severity`` list and the record's own rating fields."""
    best: Rating | None = None
    prio = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}
    for s in severity or ():
        if not isinstance(s, dict):
            continue
        kind, score = str(s.get("type") or ""), str(s.get("score") or "")
        if kind in ("Ubuntu", "Debian"):
            r = _word(score, kind)
        else:
            r = _cvss(kind, score)
        if r is None:
            continue
        if best is None or prio.get(r.source, 0) > prio.get(best.source, 0):
            best = r
    if best is not None:
        return best
    for field, where in (
        (ecosystem_specific, "ecosystem_specific"),
        (database_specific, "database_specific"),
    ):
        if isinstance(field, dict):
            for key in ("severity", "urgency", "priority"):
                r = _word(field.get(key), where)
                if r is not None:
                    return r
    return None
