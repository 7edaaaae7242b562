"""The policy file: the guide's baselines as typed, validated gates.

A policy is YAML in the shape of the guide's blocks (``security_baseline``, ``optimization``,
``labels``, ``tags``) plus ``rules:`` mapping any rule id to ``error``/``warning``/``off``.
Unknown keys and wrong types are errors that name the key path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from imagewise.errors import ConfigError, UsageError
from imagewise.policy.retention import Retention, parse_retention
from imagewise.record import Record
from imagewise.units import parse_size

SEVERITIES = ("low", "medium", "high", "critical")
RULE_LEVELS = ("error", "warning", "info", "off")


class Section(Record):
    """A policy section: ``_defaults`` names its fields, in order (a subclass sets
    ``__slots__ = tuple(_defaults)``), and gives each one's value when the policy does not set
    it (a class there is called for a fresh value: ``dict`` or a nested section). Records, not
    dataclasses: every command that reads a policy imports this module, and generating a dozen
    frozen dataclasses (with ``dataclasses`` and ``inspect``) cost ~15 ms of start-up (see
    :mod:`imagewise.record`)."""

    __slots__ = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **values: Any) -> None:
        for name in self._fields:
            if name in values:
                value = values.pop(name)
            else:
                value = self._defaults[name]
                if isinstance(value, type):
                    value = value()
            setattr(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__} has no field {sorted(values)[0]!r}")


# The field defaults are "no gate": they are what ``extends: none`` starts from. The default
# policy's values all come from default.yaml.
class SecurityBaseline(Section):
    _defaults: ClassVar[dict[str, Any]] = {
        "allowed_registries": (),
        "require_pinned_base": False,
        "require_non_root": False,
        "forbid_secrets": False,
        "max_vulnerability_severity": None,
        "unknown_severity": "high",  # the rank of a vulnerability whose record gives none
        "only_fixable": False,
        "max_ignore_days": None,
    }
    __slots__ = tuple(_defaults)
    allowed_registries: tuple[str, ...]
    require_pinned_base: bool
    require_non_root: bool
    forbid_secrets: bool
    max_vulnerability_severity: str | None
    unknown_severity: str
    only_fixable: bool
    max_ignore_days: int | None


class Optimization(Section):
    _defaults: ClassVar[dict[str, Any]] = {
        "max_size": None,
        "max_layers": None,
        "min_efficiency": None,
        "max_reclaimable_bytes": None,
        "forbid_caches": False,
    }
    __slots__ = tuple(_defaults)
    max_size: int | None
    max_layers: int | None
    min_efficiency: float | None
    max_reclaimable_bytes: int | None
    forbid_caches: bool


class Labels(Section):
    _defaults: ClassVar[dict[str, Any]] = {"required": ()}
    __slots__ = tuple(_defaults)
    required: tuple[str, ...]


class Tags(Section):
    _defaults: ClassVar[dict[str, Any]] = {"forbid_latest": False, "allowed_patterns": ()}
    __slots__ = tuple(_defaults)
    forbid_latest: bool
    allowed_patterns: tuple[str, ...]


TAG_KINDS = ("semver", "env", "timestamp", "git_sha")


class Tagging(Section):
    """``version_management.tagging``: the tag convention ``tag`` applies and ``tags lint``
    checks."""

    _defaults: ClassVar[dict[str, Any]] = {
        "required": (),
        "env_tags": (),
        "immutable": (),
        "timestamp_format": "%Y%m%d-%H%M%S",
    }
    __slots__ = tuple(_defaults)
    required: tuple[str, ...]  # kinds every released digest carries (TAG_KINDS)
    env_tags: tuple[str, ...]  # the environment tags (moved by promote and rollback)
    immutable: tuple[str, ...]  # patterns of tags that must never move once pushed
    timestamp_format: str  # strftime (UTC) of `imagewise tag --timestamp`


class Promotion(Section):
    """``version_management.promotion``: what ``promote`` refuses."""

    _defaults: ClassVar[dict[str, Any]] = {"order": (), "require_check": False}
    __slots__ = tuple(_defaults)
    order: tuple[str, ...]  # env k takes only the digest now on env k-1
    require_check: bool  # the image must pass ``check`` under this policy


UPDATE_LEVELS = ("patch", "minor", "major")


class Updates(Section):
    """``version_management.updates``: how far ``outdated --fix`` may move a base image."""

    _defaults: ClassVar[dict[str, Any]] = {"max": "minor", "allow": dict}
    __slots__ = tuple(_defaults)
    _unhashed = ("allow",)
    max: str  # the largest jump without a constraint: patch | minor | major
    #: repository (``python``, ``library/python``, ``docker.io/library/python``) -> constraint
    #: (``~3.11``, ``^3``, ``>=3.11 <3.13``, ``3.12.x``, ``*``)
    allow: dict[str, str]


class VersionManagement(Section):
    _defaults: ClassVar[dict[str, Any]] = {
        "tagging": Tagging,
        "promotion": Promotion,
        "updates": Updates,
    }
    __slots__ = tuple(_defaults)
    tagging: Tagging
    promotion: Promotion
    updates: Updates


class StorageManagement(Section):
    """``storage_management``: retention rules (see :mod:`imagewise.policy.retention`)."""

    _defaults: ClassVar[dict[str, Any]] = {"retention": Retention}
    __slots__ = tuple(_defaults)
    retention: Retention


class Policy(Section):
    _defaults: ClassVar[dict[str, Any]] = {
        "security_baseline": SecurityBaseline,
        "optimization": Optimization,
        "labels": Labels,
        "tags": Tags,
        "version_management": VersionManagement,
        "storage_management": StorageManagement,
        "rules": dict,
        "source": "<default>",
    }
    __slots__ = tuple(_defaults)
    _unhashed = ("rules",)
    security_baseline: SecurityBaseline
    optimization: Optimization
    labels: Labels
    tags: Tags
    version_management: VersionManagement
    storage_management: StorageManagement
    rules: dict[str, str]
    source: str

    def level(self, rule_id: str) -> str | None:
        """The configured level for a rule id, or None when the policy does not say."""
        return self.rules.get(rule_id)


def default_text() -> str:
    """The default policy's YAML (read beside this module; through importlib.resources only
    when the package is not on a file system, e.g. zipped: that import costs ~5 ms)."""
    try:
        return Path(__file__).with_name("default.yaml").read_text("utf-8")
    except OSError:
        from importlib import resources

        return str(resources.files("imagewise.policy").joinpath("default.yaml").read_text("utf-8"))


def _default_doc() -> dict[str, Any]:
    """The default policy's document, from ``default.json``: default.yaml's twin, kept equal by
    a test (``tests/test_policy.py`` says how to write it again), so that a command that reads
    no policy file does not start YAML's parser (~10 ms of start-up)."""
    import json

    try:
        doc = json.loads(Path(__file__).with_name("default.json").read_text("utf-8"))
    except (OSError, ValueError):
        return _load_doc(default_text(), "<default policy>")
    return dict(doc)


def default_policy() -> Policy:
    return _from_doc(_default_doc(), "<default policy>", base=False)


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return default_policy()
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise UsageError(f"policy file not found: {p}") from None
    except OSError as e:
        raise ConfigError(f"cannot read policy {p}: {e.strerror}") from e
    return parse_policy(text, str(p))


def _expect(cond: bool, where: str, what: str, got: Any) -> None:
    if not cond:
        raise ConfigError(f"policy {where}: expected {what}, got {got!r}")


def _section(cls: type[Section], data: Any, where: str, src: str) -> Any:
    if data is None:
        return cls()
    _expect(isinstance(data, dict), f"{src}: {where}", "a mapping", data)
    known = cls._defaults
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"policy {src}: unknown key {where}.{unknown[0]} (known: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for key, raw in data.items():
        here = f"{src}: {where}.{key}"
        default = known[key]
        if key.startswith("max_size") or key.endswith("_bytes"):
            if raw is None:
                values[key] = None
                continue
            try:
                values[key] = parse_size(raw)
            except UsageError:
                raise ConfigError(
                    f"policy {here}: expected a size like 500MB, got {raw!r}"
                ) from None
        elif key == "min_efficiency":
            _expect(
                raw is None
                or (isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 <= raw <= 1),
                here,
                "a number from 0 to 1",
                raw,
            )
            values[key] = None if raw is None else float(raw)
        elif key == "timestamp_format":
            _expect(
                isinstance(raw, str)
                and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", _strftime_probe(raw))
                is not None,
                here,
                "a strftime format giving a valid tag (e.g. %Y%m%d-%H%M%S)",
                raw,
            )
            values[key] = raw
        elif isinstance(default, bool):
            _expect(isinstance(raw, bool), here, "true or false", raw)
            values[key] = raw
        elif key in ("max_layers", "max_ignore_days"):
            _expect(
                raw is None or (isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0),
                here,
                "a whole number",
                raw,
            )
            values[key] = raw
        elif key in ("max_vulnerability_severity", "unknown_severity"):
            if raw is None and key == "max_vulnerability_severity":
                values[key] = None  # no vulnerability gate
                continue
            _expect(
                isinstance(raw, str) and raw.lower() in SEVERITIES,
                here,
                "one of " + "|".join(SEVERITIES),
                raw,
            )
            values[key] = raw.lower()
        else:  # lists of strings
            _expect(
                isinstance(raw, list) and all(isinstance(x, str) for x in raw),
                here,
                "a list of strings",
                raw,
            )
            if cls is Tagging and key == "required":
                bad = [k for k in raw if k not in TAG_KINDS]
                _expect(not bad, here, "kinds among " + "|".join(TAG_KINDS), bad)
            if key in ("allowed_patterns", "immutable"):
                for pat in raw:
                    try:
                        re.compile(pat)
                    except re.error as e:
                        raise ConfigError(
                            f"policy {here}: bad regular expression {pat!r}: {e}"
                        ) from None
            values[key] = tuple(raw)
    return cls(**values)


def _load_doc(text: str, src: str) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"policy {src}:{line} is not valid YAML") from e
    if doc is None:
        doc = {}
    _expect(isinstance(doc, dict), src, "a mapping at the top level", type(doc).__name__)
    allowed = {"version", "extends", *Policy._fields} - {"source"}  # where it was read, not a key
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(
            f"policy {src}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )
    return dict(doc)


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: sections (and sections in sections) merge key by key, everything
    else is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _overlay(base[key], value)
        else:
            out[key] = value
    return out


def _storage_management(data: Any, src: str) -> StorageManagement:
    if data is None:
        return StorageManagement()
    _expect(isinstance(data, dict), f"{src}: storage_management", "a mapping", data)
    unknown = sorted(set(data) - {"retention"})
    if unknown:
        raise ConfigError(
            f"policy {src}: unknown key storage_management.{unknown[0]} (known: retention)"
        )
    return StorageManagement(retention=parse_retention(data.get("retention"), src))


def _strftime_probe(fmt: str) -> str:
    from datetime import datetime, timezone

    try:
        return datetime(2026, 12, 4, 5, 6, 7, tzinfo=timezone.utc).strftime(fmt)
    except ValueError:
        return ""


def _version_management(data: Any, src: str) -> VersionManagement:
    if data is None:
        return VersionManagement()
    _expect(isinstance(data, dict), f"{src}: version_management", "a mapping", data)
    unknown = sorted(set(data) - {"tagging", "promotion", "updates"})
    if unknown:
        raise ConfigError(
            f"policy {src}: unknown key version_management.{unknown[0]} "
            "(known: promotion, tagging, updates)"
        )
    return VersionManagement(
        tagging=_section(Tagging, data.get("tagging"), "version_management.tagging", src),
        promotion=_section(Promotion, data.get("promotion"), "version_management.promotion", src),
        updates=_updates(data.get("updates"), src),
    )


def _updates(data: Any, src: str) -> Updates:
    where = f"{src}: version_management.updates"
    if data is None:
        return Updates()
    _expect(isinstance(data, dict), where, "a mapping", data)
    unknown = sorted(set(data) - {"max", "allow"})
    if unknown:
        raise ConfigError(
            f"policy {src}: unknown key version_management.updates.{unknown[0]} (known: allow, max)"
        )
    level = data.get("max", "minor")
    _expect(level in UPDATE_LEVELS, f"{where}.max", "one of " + "|".join(UPDATE_LEVELS), level)
    allow = data.get("allow") or {}
    _expect(
        isinstance(allow, dict) and all(isinstance(v, str) for v in allow.values()),
        f"{where}.allow",
        "a mapping of repository to constraint",
        allow,
    )
    from imagewise.tagversion import parse_constraint

    for repo, text in allow.items():
        try:
            parse_constraint(text)
        except UsageError as e:
            raise ConfigError(f"policy {where}.allow.{repo}: {e}") from None
    return Updates(max=level, allow={str(k): v for k, v in allow.items()})


def parse_policy(text: str, src: str = "<policy>", *, base: bool = True) -> Policy:
    """A policy read on top of the default one (``extends: default``, the default) or on its
    own (``extends: none``)."""
    return _from_doc(_load_doc(text, src), src, base=base)


def _from_doc(doc: dict[str, Any], src: str, *, base: bool) -> Policy:
    extends = doc.pop("extends", "default")
    _expect(extends in ("default", "none"), f"{src}: extends", "default or none", extends)
    if base and extends == "default":
        doc = _overlay(_default_doc(), doc)
    if doc.get("version", 1) != 1:
        raise ConfigError(f"policy {src}: unsupported version {doc.get('version')!r}; expected 1")
    rules = doc.get("rules") or {}
    _expect(isinstance(rules, dict), f"{src}: rules", "a mapping of rule id to level", rules)
    levels: dict[str, str] = {}
    for rid, level in rules.items():
        if level is False:
            level = "off"
        _expect(
            isinstance(level, str) and level.lower() in RULE_LEVELS,
            f"{src}: rules.{rid}",
            "one of " + "|".join(RULE_LEVELS),
            level,
        )
        levels[str(rid)] = level.lower()
    return Policy(
        security_baseline=_section(
            SecurityBaseline, doc.get("security_baseline"), "security_baseline", src
        ),
        optimization=_section(Optimization, doc.get("optimization"), "optimization", src),
        labels=_section(Labels, doc.get("labels"), "labels", src),
        tags=_section(Tags, doc.get("tags"), "tags", src),
        version_management=_version_management(doc.get("version_management"), src),
        storage_management=_storage_management(doc.get("storage_management"), src),
        rules=levels,
        source=src,
    )
