"""Custom lint rules declared in a file, without writing Python (or forking).

A rules file is YAML (or TOML) with a ``rules`` list; each rule declares a pattern on
instructions or on the shell commands of RUN::

    rules:
      - id: ACME001
        severity: warning            # error | warning | info | style
        title: Use npm ci instead of npm install
        rationale: npm ci installs exactly the lockfile.
        fix: Replace `npm install` with `npm ci`.
        command: npm                 # a command inside RUN (sh -c and heredocs included)
        args: [install]              # ... having all of these arguments
        without_args: [--global, -g] # ... and none of these
      - id: ACME002
        severity: error
        title: Only our base images
        instruction: FROM            # keyword(s) to look at
        not_match: '^registry\\.acme\\.example/'   # fires when the regex does NOT match
      - id: ACME003
        severity: info
        title: No curl piped to a shell
        instruction: RUN
        match: 'curl[^|]*\\|\\s*(ba)?sh'          # fires when the regex matches the arguments

Keys: ``instruction`` (keyword or list), ``command``, ``args``, ``without_args``, ``flags``
(present, like ``no-cache``), ``without_flags``, ``match``/``not_match`` (regex searched in the
instruction's arguments, or in the command line when ``command`` is given), ``final_stage_only``.
Files are named in the lint config (``custom-rules: [path, ...]``) or passed to
:func:`load_rules_file`; the rules then run with the built-in ones (same pragmas and overrides).
"""

from __future__ import annotations

import _thread
import os
import re
from collections.abc import Iterable, Iterator, Mapping

from imagewise.dockerfile.rules import Hit, Rule
from imagewise.dockerfile.shell import Command
from imagewise.errors import ConfigError
from imagewise.findings import RuleInfo, Severity
from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from imagewise.dockerfile.context import LintContext

_KEYS = frozenset(
    {
        "id",
        "severity",
        "title",
        "rationale",
        "fix",
        "area",
        "message",
        "instruction",
        "command",
        "args",
        "without_args",
        "flags",
        "without_flags",
        "match",
        "not_match",
        "final_stage_only",
    }
)
_ID = r"^[A-Za-z][A-Za-z0-9_-]*[0-9]+$"  # compiled (and cached by re) for a custom rule


class Pattern(Record):
    __slots__ = (
        "keywords",
        "command",
        "args",
        "without_args",
        "flags",
        "without_flags",
        "match",  # noqa: RUF023
        "not_match",
        "final_stage_only",
        "message",
    )
    keywords: frozenset[str]
    command: str | None
    args: tuple[str, ...]
    without_args: tuple[str, ...]
    flags: tuple[str, ...]
    without_flags: tuple[str, ...]
    match: re.Pattern[str] | None
    not_match: re.Pattern[str] | None
    final_stage_only: bool
    message: str

    def __init__(
        self,
        keywords: frozenset[str],
        command: str | None = None,
        args: tuple[str, ...] = (),
        without_args: tuple[str, ...] = (),
        flags: tuple[str, ...] = (),
        without_flags: tuple[str, ...] = (),
        match: re.Pattern[str] | None = None,
        not_match: re.Pattern[str] | None = None,
        final_stage_only: bool = False,
        message: str = "",
    ) -> None:
        self.keywords = keywords
        self.command = command
        self.args = args
        self.without_args = without_args
        self.flags = flags
        self.without_flags = without_flags
        self.match = match
        self.not_match = not_match
        self.final_stage_only = final_stage_only
        self.message = message

    def _text_ok(self, text: str) -> bool:
        if self.match is not None and not self.match.search(text):
            return False
        return not (self.not_match is not None and self.not_match.search(text))

    def command_matches(self, cmd: Command) -> bool:
        if cmd.name.rsplit("/", 1)[-1] != self.command:
            return False
        if not all(a in cmd.args for a in self.args):
            return False
        if any(a in cmd.args for a in self.without_args):
            return False
        if not all(cmd.has_flag(f) for f in self.flags):
            return False
        if any(cmd.has_flag(f) for f in self.without_flags):
            return False
        return self._text_ok(" ".join((cmd.name, *cmd.args)))

    def check(self, ctx: LintContext) -> Iterator[Hit]:
        last = len(ctx.dockerfile.stages) - 1
        if self.command is not None:
            for run in ctx.runs():
                if self.final_stage_only and run.stage_index != last:
                    continue
                if any(self.command_matches(c) for c in run.script.commands):
                    yield Hit(run.line, self.message)
            return
        for ins in ctx.dockerfile.instructions:
            eff = ins.effective
            if self.keywords and eff.keyword not in self.keywords:
                continue
            if self.final_stage_only and ins.stage_index != last:
                continue
            if self._text_ok(eff.args):
                yield Hit(ins.start_line, self.message)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a string or a list of strings")


def _regex(value: Any, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(str(value))
    except re.error as e:
        raise ConfigError(f"{where}: invalid regular expression: {e}") from e


def rule_from_mapping(data: Mapping[str, Any], where: str) -> Rule:
    """Build one rule from its declaration; raises ``ConfigError`` naming ``where``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: each rule must be a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    rid = str(data.get("id", ""))
    if not re.match(_ID, rid):
        raise ConfigError(f"{where}: rule id {rid!r} must look like ACME001")
    if not data.get("title"):
        raise ConfigError(f"{where}: rule {rid} needs a title")
    where = f"{where} ({rid})"
    keywords = frozenset(k.upper() for k in _strings(data.get("instruction"), where))
    command = data.get("command")
    if command is not None:
        keywords = keywords or frozenset({"RUN"})
        if keywords != {"RUN"}:
            raise ConfigError(f"{where}: `command` patterns apply to RUN only")
    if not keywords and command is None:
        raise ConfigError(f"{where}: declare `instruction` and/or `command`")
    pattern = Pattern(
        keywords=keywords,
        command=str(command) if command is not None else None,
        args=_strings(data.get("args"), where),
        without_args=_strings(data.get("without_args"), where),
        flags=_strings(data.get("flags"), where),
        without_flags=_strings(data.get("without_flags"), where),
        match=_regex(data.get("match"), where),
        not_match=_regex(data.get("not_match"), where),
        final_stage_only=bool(data.get("final_stage_only", False)),
        message=str(data.get("message", "")),
    )
    info = RuleInfo(
        rid.upper(),
        Severity.parse(str(data.get("severity", "warning"))),
        str(data["title"]),
        str(data.get("rationale", "")),
        str(data.get("fix", "")),
        str(data.get("area", "build")),
        "custom",
        "custom",
    )
    return Rule(info, pattern.check)


def load_rules_file(path: str | Path) -> tuple[Rule, ...]:
    """Read a YAML/TOML rules file into rules (not registered globally)."""
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read rules file: {e.strerror}") from e
    if p.suffix == ".toml":
        import tomllib

        try:
            doc: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML: {e}") from e
    else:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {str(e).splitlines()[0]}") from e
    rules = doc.get("rules") if isinstance(doc, Mapping) else None
    if not isinstance(rules, list):
        raise ConfigError(f"{p}: expected a top-level `rules` list")
    out = tuple(rule_from_mapping(r, f"{p}: rules[{i}]") for i, r in enumerate(rules))
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{p}: duplicate rule ids")
    return out


_CACHE: dict[str, tuple[tuple[int, int], tuple[Rule, ...]]] = {}
_CACHE_LOCK = _thread.allocate_lock()


def rules_from_files(paths: Iterable[str | Path]) -> tuple[Rule, ...]:
    """The rules of every file in ``paths`` (a config's ``custom_rule_files``), each file read
    once per version (size and mtime) and process, whatever thread asks."""
    out: list[Rule] = []
    for path in paths:
        key = os.path.abspath(path)
        try:
            st = os.stat(key)
            version = (st.st_mtime_ns, st.st_size)
        except OSError:
            version = (-1, -1)  # load_rules_file says why in words
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is None or hit[0] != version:
                hit = _CACHE[key] = (version, load_rules_file(path))
        out.extend(hit[1])
    return tuple(out)
