"""The one finding model: lint, audit, secrets and policy all emit ``Finding``."""

from __future__ import annotations

import enum

from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
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


class Location(Record):
    """Where a finding is: a file and line (Dockerfile) or a layer and path (image), or a config field."""

    __slots__ = (  # noqa: RUF023 - in field order
        "file",
        "line",
        "column",
        "end_line",
        "layer",  # layer digest or diff_id
        "layer_index",
        "path",  # path inside the image filesystem, or config field like "config.Env"
    )

    def __init__(
        self,
        file: str = "",
        line: int = 0,
        column: int = 0,
        end_line: int = 0,
        layer: str = "",
        layer_index: int | None = None,
        path: str = "",
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.end_line = end_line
        self.layer = layer
        self.layer_index = layer_index
        self.path = path

    def to_json(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("file", self.file),
                ("line", self.line),
                ("column", self.column),
                ("end_line", self.end_line),
                ("layer", self.layer),
                ("layer_index", self.layer_index),
                ("path", self.path),
            )
            if v not in ("", 0, None) or (k == "layer_index" and v == 0)
        }


class Finding(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "rule",
        "severity",
        "title",
        "message",
        "location",
        "fix",
        "bytes_saved",
        "extra",
    )
    _uncompared = ("extra",)

    def __init__(
        self,
        rule: str,
        severity: Severity,
        title: str,
        message: str,
        location: Location | None = None,
        fix: str = "",
        bytes_saved: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.rule = rule
        self.severity = severity
        self.title = title
        self.message = message
        self.location = Location() if location is None else location
        self.fix = fix
        self.bytes_saved = bytes_saved
        self.extra: dict[str, Any] = {} if extra is None else extra

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


class RuleInfo(Record):
    """A declared rule or check, the one shape of every rule kind: the entries of
    :func:`imagewise.rules.catalog`, listed by ``imagewise rules``, ``imagewise explain``,
    ``docs/rules.md`` and SARIF ``tool.driver.rules``."""

    __slots__ = (  # noqa: RUF023 - in field order
        "id",
        "severity",
        "title",
        "rationale",
        "fix",
        "area",  # build | security | performance | operations
        "source",  # "hadolint", "dockle", "imagewise", ...
        "kind",  # dockerfile | custom | audit | waste | secret (see imagewise.rules.KINDS)
        "fixer",  # "module:function" of the autofix that answers it (imagewise.dockerfile.fix)
    )

    def __init__(
        self,
        id: str,
        severity: Severity,
        title: str,
        rationale: str = "",
        fix: str = "",
        area: str = "",
        source: str = "",
        kind: str = "",
        fixer: str = "",
    ) -> None:
        self.id = id
        self.severity = severity
        self.title = title
        self.rationale = rationale
        self.fix = fix
        self.area = area
        self.source = source
        self.kind = kind
        self.fixer = fixer

    @property
    def docs(self) -> str:
        """Where the rule is documented: its section of ``docs/rules.md``."""
        return f"{DOCS_PAGE}#{rule_anchor(self.id)}"

    def to_json(self) -> dict[str, Any]:
        """The rule as ``imagewise rules --format json`` lists it."""
        return {
            "id": self.id,
            "severity": str(self.severity),
            "title": self.title,
            "area": self.area,
            "source": self.source,
            "rationale": self.rationale,
            "fix": self.fix,
            "kind": self.kind,
            "fixable": bool(self.fixer),
            "docs": self.docs,
        }


#: the rule reference page, relative to the repository root
DOCS_PAGE = "docs/rules.md"


def rule_anchor(rule_id: str) -> str:
    """The HTML anchor of a rule's section in ``docs/rules.md``."""
    import re

    return re.sub(r"[^a-z0-9-]+", "-", rule_id.lower()).strip("-")
