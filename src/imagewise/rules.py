"""The one rule table: every declared rule and check, of every kind, as :class:`RuleInfo`.

Each kind is declared where its checks live, in the one :class:`~imagewise.findings.RuleInfo`
shape (id, severity, title, rationale, fix, area, source, kind, fixer):

* ``dockerfile``: DL and IW rules, the ``@rule``/``@hadolint`` table of
  :mod:`imagewise.dockerfile.rules` (plugins included), which loads under its own lock;
* ``custom``: the rules files a :class:`~imagewise.dockerfile.config.LintConfig` names;
* ``audit``: image checks (:data:`imagewise.audit.checks.CHECKS`);
* ``waste``: layer waste (:data:`imagewise.analysis.attribution.RULES`);
* ``secret``: secret detectors (:data:`imagewise.secrets.rules.RULES`, ids ``secret/<id>``);
* ``tag``: a repository's tags (:data:`imagewise.release.tags_lint.RULES`, ``tags lint``).

:func:`catalog` lists them; ``imagewise rules``, ``imagewise explain``, ``docs/rules.md``
(:mod:`imagewise.cli.docs_gen`) and SARIF ``tool.driver.rules`` all read it. A kind's table is
imported only when a caller asks for that kind: ``imagewise lint`` asks for ``dockerfile`` and
``custom`` only, so the image tables stay unloaded.
"""

from __future__ import annotations

import _thread
import importlib
from collections.abc import Callable, Iterable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.dockerfile.config import LintConfig
    from imagewise.findings import RuleInfo

#: every kind, in listing order
KINDS = ("dockerfile", "custom", "audit", "waste", "secret", "tag")
#: the kinds a Dockerfile lint reports
LINT_KINDS = ("dockerfile", "custom")

#: the static tables of the image kinds: kind -> "module:attribute" (a dict or sequence of
#: RuleInfo, or of objects with an ``info`` RuleInfo)
TABLES = {
    "audit": "imagewise.audit.checks:CHECKS",
    "waste": "imagewise.analysis.attribution:RULES",
    "secret": "imagewise.secrets.rules:RULES",
    "tag": "imagewise.release.tags_lint:RULES",
}

_LOCK = _thread.allocate_lock()
_STATIC: dict[str, tuple[RuleInfo, ...]] = {}


def _dockerfile(_cfg: LintConfig | None) -> tuple[RuleInfo, ...]:
    from imagewise.dockerfile.rules import all_rules

    return tuple(r.info for r in all_rules())  # read each time: plugins may register later


def _custom(cfg: LintConfig | None) -> tuple[RuleInfo, ...]:
    return tuple(r.info for r in cfg.custom_rules) if cfg is not None else ()


def _static(kind: str) -> Callable[[LintConfig | None], tuple[RuleInfo, ...]]:
    def load(_cfg: LintConfig | None) -> tuple[RuleInfo, ...]:
        got = _STATIC.get(kind)
        if got is None:
            with _LOCK:
                got = _STATIC.get(kind)
                if got is None:
                    got = _STATIC[kind] = _read_table(TABLES[kind], kind)
        return got

    return load


def _read_table(target: str, kind: str) -> tuple[RuleInfo, ...]:
    from imagewise.findings import RuleInfo

    module, _, attr = target.partition(":")
    table = getattr(importlib.import_module(module), attr)
    items = table.values() if isinstance(table, dict) else table
    infos = [item if isinstance(item, RuleInfo) else item.info for item in items]
    return tuple(i if i.kind else i.replace(kind=kind) for i in infos)


_LOADERS: dict[str, Callable[[LintConfig | None], tuple[RuleInfo, ...]]] = {
    "dockerfile": _dockerfile,
    "custom": _custom,
    **{kind: _static(kind) for kind in TABLES},
}


def catalog(config: LintConfig | None = None, kinds: Iterable[str] | None = None) -> list[RuleInfo]:
    """Every declared rule of ``kinds`` (default: all of :data:`KINDS`), in listing order:
    by kind, then by id. ``config`` adds its custom rules (kind ``custom``)."""
    wanted = KINDS if kinds is None else tuple(kinds)
    unknown = set(wanted) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown rule kind(s): {', '.join(sorted(unknown))}")
    out: list[RuleInfo] = []
    for kind in KINDS:
        if kind in wanted:
            out.extend(sorted(_LOADERS[kind](config), key=_id_key))
    return out


def _id_key(info: RuleInfo) -> str:
    return info.id


def rule_table(
    config: LintConfig | None = None, kinds: Iterable[str] | None = None
) -> dict[str, RuleInfo]:
    """:func:`catalog` by id (a later kind never replaces an earlier one's id)."""
    out: dict[str, RuleInfo] = {}
    for info in catalog(config, kinds):
        out.setdefault(info.id, info)
    return out


def lookup(rule_id: str, config: LintConfig | None = None) -> RuleInfo | None:
    """One declared rule by id (case as declared, or upper case), or None."""
    table = rule_table(config)
    return table.get(rule_id) or table.get(rule_id.upper())


def rules_json(infos: list[RuleInfo]) -> dict[str, object]:
    return {"rules": [i.to_json() for i in infos]}


def rules_table(infos: list[RuleInfo]) -> str:
    width = max((len(i.id) for i in infos), default=6)
    return "".join(
        f"{i.id:<{width}}  {i.severity!s:<7}  {i.area or '-':<11}  {i.title}\n" for i in infos
    )


def find_rule(rule_id: str, config: LintConfig | None = None) -> RuleInfo:
    """The rule or check ``rule_id`` (any case); UsageError naming the closest ids if none."""
    import difflib

    from imagewise.errors import UsageError

    table = rule_table(config)
    info = table.get(rule_id) or table.get(rule_id.upper())
    if info is None:
        close = difflib.get_close_matches(rule_id.upper(), list(table), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown rule {rule_id!r}{hint} (`imagewise rules` lists them all)")
    return info


def explain_text(info: RuleInfo) -> str:
    """What ``imagewise explain`` prints: the rule, why it matters, how to fix it, its docs."""
    lines = [
        f"{info.id}: {info.title}",
        f"severity: {info.severity}   area: {info.area or '-'}   source: {info.source or '-'}",
    ]
    if info.rationale:
        lines.append(f"\nWhy:\n  {info.rationale}")
    if info.fix:
        lines.append(f"\nFix:\n  {info.fix}")
    if info.fixer:
        lines.append("\nAutofix: `imagewise lint --fix` (or `--diff` to see it first)")
    lines.append(f"\nDocs: {info.docs}")
    return "".join(line + "\n" for line in lines)
