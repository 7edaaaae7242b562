"""The one finding model: lint, audit, secrets and policy all emit ``Finding``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that ``>=`` compares seriousness. Names match hadolint's levels."""

    IGNORE = 0
    STYLE = 1
    INFO = 2
    WARNING = 3
    ERROR = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            from imagewise.errors import ConfigError

            names = ", ".join(s.name.lower() for s in cls)
            raise ConfigError(f"unknown severity {text!r}; expected one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is: a file and line (Dockerfile) or a layer and path (image), or a config field."""

    file: str = ""
    line: int = 0
    column: int = 0
    end_line: int = 0
    layer: str = ""  # layer digest or diff_id
    layer_index: int | None = None
    path: str = ""  # path inside the image filesystem, or config field like "config.Env"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (
            ("file", self.file), ("line", self.line), ("column", self.column),
            ("end_line", self.end_line), ("layer", self.layer),
            ("layer_index", self.layer_index), ("path", self.path),
        ) if v not in ("", 0, None) or (k == "layer_index" and v == 0)}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    title: str
    message: str
    location: Location = field(default_factory=Location)
    fix: str = ""
    bytes_saved: int = 0
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": str(self.severity),
            "title": self.title,
            "message": self.message,
            **self.location.to_json(),
        }
        if self.fix:
            out["fix"] = self.fix
        if self.bytes_saved:
            out["bytes_saved"] = self.bytes_saved
        return out


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A declared rule or check, as listed by ``imagewise rules`` and ``imagewise explain``."""

    id: str
    severity: Severity
    title: str
    rationale: str = ""
    fix: str = ""
    area: str = ""  # build | security | performance | operations
    source: str = ""  # "hadolint", "dockle", "imagewise", ...
