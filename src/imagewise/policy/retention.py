"""``storage_management.retention`` of the policy: Harbor-style retention rules, as data (the
plan and its application: :mod:`imagewise.storage.retention`)."""

from __future__ import annotations

import re
from typing import Any

from imagewise.configfile import reject_unknown_keys
from imagewise.errors import ConfigError, UsageError
from imagewise.tagversion import parse_constraint


class RetentionRule:
    __slots__ = (  # noqa: RUF023
        "repositories",
        "exclude_repositories",
        "tags",
        "exclude_tags",
        "keep_latest",
        "keep_days",
        "always",
        "name",
    )

    def __init__(
        self,
        repositories: tuple[str, ...] = ("**",),
        exclude_repositories: tuple[str, ...] = (),
        tags: tuple[str, ...] = ("**",),
        exclude_tags: tuple[str, ...] = (),
        keep_latest: int | None = None,
        keep_days: int | None = None,
        always: bool = False,
        name: str = "",
    ) -> None:
        self.repositories, self.exclude_repositories = repositories, exclude_repositories
        self.tags, self.exclude_tags = tags, exclude_tags
        self.keep_latest, self.keep_days, self.always = keep_latest, keep_days, always
        self.name = name

    def describe(self) -> str:
        if self.always:
            what = "always"
        elif self.keep_latest is not None:
            what = f"keep_latest {self.keep_latest}"
        else:
            what = f"keep_days {self.keep_days}"
        return f"{self.name} ({what})"


class Retention:
    """``storage_management.retention`` of the policy."""

    def __init__(
        self,
        rules: tuple[RetentionRule, ...] = (),
        keep_env_tags: bool = True,
        keep_promoted_days: int | None = 30,
        untagged_hours: int | None = None,
    ) -> None:
        self.rules = rules
        self.keep_env_tags = keep_env_tags
        self.keep_promoted_days = keep_promoted_days
        #: delete untagged manifests pushed more than this many hours ago (None: keep them)
        self.untagged_hours = untagged_hours


def parse_retention(data: Any, src: str) -> Retention:
    """``storage_management.retention`` as written in a policy file (ConfigError naming the
    key path on any mistake)."""
    where = f"policy {src}: storage_management.retention"
    if data is None:
        return Retention()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    reject_unknown_keys(
        data, {"rules", "keep_env_tags", "keep_promoted_days", "delete_untagged_after_hours"}, where
    )
    untagged = data.get("delete_untagged_after_hours")
    if untagged is not None and (
        not isinstance(untagged, int) or isinstance(untagged, bool) or untagged < 0
    ):
        raise ConfigError(
            f"{where}.delete_untagged_after_hours: expected a whole number of hours, "
            f"got {untagged!r}"
        )
    keep_env = data.get("keep_env_tags", True)
    if not isinstance(keep_env, bool):
        raise ConfigError(f"{where}.keep_env_tags: expected true or false, got {keep_env!r}")
    days = data.get("keep_promoted_days", 30)
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
        raise ConfigError(f"{where}.keep_promoted_days: expected a whole number, got {days!r}")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{where}.rules: expected a list of rules, got {raw_rules!r}")
    rules = []
    for i, raw in enumerate(raw_rules):
        here = f"{where}.rules[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{here}: expected a mapping, got {raw!r}")
        known = {
            "repositories",
            "exclude_repositories",
            "tags",
            "exclude_tags",
            "keep_latest",
            "keep_days",
            "always",
        }
        reject_unknown_keys(raw, known, here)
        lists = {}
        for key in ("repositories", "exclude_repositories", "tags", "exclude_tags"):
            value = raw.get(key, ["**"] if key in ("repositories", "tags") else [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ConfigError(f"{here}.{key}: expected a list of patterns, got {value!r}")
            for pat in value:
                _check_pattern(pat, f"{here}.{key}")
            lists[key] = tuple(value)
        conditions = [k for k in ("keep_latest", "keep_days", "always") if raw.get(k) is not None]
        if len(conditions) != 1:
            raise ConfigError(
                f"{here}: give exactly one of keep_latest: N, keep_days: N, always: true"
            )
        for key in ("keep_latest", "keep_days"):
            n = raw.get(key)
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                raise ConfigError(f"{here}.{key}: expected a whole number, got {n!r}")
        if "always" in raw and raw["always"] is not True:
            raise ConfigError(f"{here}.always: expected true, got {raw['always']!r}")
        rules.append(
            RetentionRule(
                lists["repositories"],
                lists["exclude_repositories"],
                lists["tags"],
                lists["exclude_tags"],
                raw.get("keep_latest"),
                raw.get("keep_days"),
                bool(raw.get("always")),
                name=f"rules[{i}]",
            )
        )
    return Retention(tuple(rules), keep_env, days, untagged)


def _check_pattern(pattern: str, where: str) -> None:
    try:
        if pattern.startswith("re:"):
            re.compile(pattern[3:])
        elif pattern.startswith("semver:"):
            parse_constraint(pattern[7:])
    except (re.error, UsageError) as e:
        raise ConfigError(f"{where}: bad pattern {pattern!r}: {e}") from None
