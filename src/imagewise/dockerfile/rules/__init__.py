"""The one table of Dockerfile lint rules.

A rule is a declared object: :class:`Rule` = a :class:`~imagewise.findings.RuleInfo` (id,
default severity, title, rationale, fix, area, source) plus ``check(ctx) -> Iterable[Hit]``,
where ``ctx`` is a :class:`~imagewise.dockerfile.context.LintContext`. A :class:`Hit` is a line
(and optional message, column, end line); the engine in :mod:`imagewise.dockerfile.lint` turns
hits into findings, applying the config (ignored rules, severity overrides) and pragmas.

Adding rules (the IW rules, plugins):

* ``register(rule)`` adds one ``Rule`` (an id can be registered once);
* the ``@rule(...)`` decorator declares and registers a check function in one step::

      @rule("IW001", Severity.WARNING, "Base image not pinned", rationale="...", fix="...")
      def iw001(ctx: LintContext) -> Iterator[Hit]: ...

* modules listed in ``RULE_MODULES`` are imported by :func:`all_rules` (ours, and
  ``imagewise.dockerfile.iw_rules`` when it exists), then every object exposed under the entry
  point group ``imagewise.lint_rules`` (a ``Rule``, an iterable of rules, or a module whose import
  registers them).
"""

from __future__ import annotations

import _thread
import importlib
from collections.abc import Callable, Iterable

from imagewise.findings import RuleInfo, Severity
from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.dockerfile.context import LintContext

ENTRY_POINT_GROUP = "imagewise.lint_rules"
RULE_MODULES = [
    "imagewise.dockerfile.rules.instructions",
    "imagewise.dockerfile.rules.stages",
    "imagewise.dockerfile.rules.packages",
    "imagewise.dockerfile.rules.rpm",
    "imagewise.dockerfile.rules.commands",
    "imagewise.dockerfile.rules.labels",
]
OPTIONAL_MODULES = ["imagewise.dockerfile.iw_rules"]


class Hit(Record):
    __slots__ = ("line", "message", "column", "end_line")  # noqa: RUF023
    line: int
    message: str
    column: int
    end_line: int

    def __init__(self, line: int, message: str = "", column: int = 1, end_line: int = 0) -> None:
        self.line = line
        self.message = message
        self.column = column
        self.end_line = end_line


class Rule(Record):
    __slots__ = ("info", "check")  # noqa: RUF023
    info: RuleInfo
    check: Callable[[LintContext], Iterable[Hit]]

    def __init__(self, info: RuleInfo, check: Callable[[LintContext], Iterable[Hit]]) -> None:
        self.info = info
        self.check = check

    @property
    def id(self) -> str:
        return self.info.id


REGISTRY: dict[str, Rule] = {}
_loaded = False
_LOAD_LOCK = _thread.RLock()  # threading.RLock: re-entrant: a plugin's import may ask for the table


def register(new: Rule) -> Rule:
    """Add a rule to the table; registering the same id twice is an error."""
    existing = REGISTRY.get(new.id)
    if existing is not None and existing is not new:
        raise ValueError(f"lint rule {new.id} is already registered")
    REGISTRY[new.id] = new
    return new


def rule(
    rule_id: str,
    severity: Severity,
    title: str,
    *,
    rationale: str = "",
    fix: str = "",
    area: str = "build",
    source: str = "imagewise",
    fixer: str = "",
) -> Callable[[Callable[[LintContext], Iterable[Hit]]], Callable[[LintContext], Iterable[Hit]]]:
    """Decorator: declare a check function as a rule and register it. ``fixer`` names the
    autofix that answers the rule, as ``"module:function"`` (see :mod:`imagewise.dockerfile.fix`),
    imported only when ``imagewise lint --fix`` runs."""

    def wrap(fn: Callable[[LintContext], Iterable[Hit]]) -> Callable[[LintContext], Iterable[Hit]]:
        info = RuleInfo(rule_id, severity, title, rationale, fix, area, source, "dockerfile", fixer)
        register(Rule(info, fn))
        return fn

    return wrap


def hadolint(
    rule_id: str,
    severity: Severity,
    title: str,
    *,
    rationale: str = "",
    fix: str = "",
    area: str = "build",
    fixer: str = "",
) -> Callable[[Callable[[LintContext], Iterable[Hit]]], Callable[[LintContext], Iterable[Hit]]]:
    """``@rule`` for the hadolint-compatible rules (source ``hadolint``)."""
    return rule(
        rule_id,
        severity,
        title,
        rationale=rationale,
        fix=fix,
        area=area,
        source="hadolint",
        fixer=fixer,
    )


def all_rules() -> list[Rule]:
    """Every registered rule, loading the built-in modules and plugins on first use."""
    global _loaded
    if not _loaded:
        with _LOAD_LOCK:  # another thread may be loading: wait until the table is whole
            if not _loaded:
                for name in RULE_MODULES:
                    importlib.import_module(name)
                for name in OPTIONAL_MODULES:
                    try:
                        importlib.import_module(name)
                    except ModuleNotFoundError as e:
                        if e.name != name:
                            raise
                _load_entry_points()
                _loaded = True
    return sorted(REGISTRY.values(), key=lambda r: r.id)


def get_rule(rule_id: str) -> Rule | None:
    all_rules()
    return REGISTRY.get(rule_id.upper())


def _load_entry_points() -> None:
    if not _group_declared(ENTRY_POINT_GROUP):
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, Rule):
            register(obj)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                if isinstance(item, Rule):
                    register(item)


def _group_declared(group: str) -> bool:
    """Whether any distribution on ``sys.path`` names entry point ``group`` in its
    ``entry_points.txt``: reading those few files costs far less than importing
    ``importlib.metadata`` (a tenth of a lint run), which reads them all again when one does.
    A superset test: any mention of the group's name sends the question on to importlib."""
    import os
    import sys

    needle = group.encode()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = [e.path for e in it if e.name.endswith((".dist-info", ".egg-info"))]
            if entry.endswith(".egg"):  # an unzipped egg on the path
                names.append(os.path.join(entry, "EGG-INFO"))
        except OSError:  # a missing path, or a zip file: importlib.metadata looks inside that
            if os.path.isfile(entry):
                return True
            continue
        for dist in names:
            try:
                with open(os.path.join(dist, "entry_points.txt"), "rb") as fh:
                    if needle in fh.read():
                        return True
            except OSError:
                continue
    return False
