"""Lint configuration: ``.hadolint.yaml`` read as hadolint reads it, plus our own section.

Sources, later ones winning key by key:

1. the first hadolint config found: ``$PWD/.hadolint.yaml`` (or ``.yml``),
   ``$XDG_CONFIG_HOME/hadolint.yaml``, ``~/.config/hadolint.yaml``, ``~/.hadolint/hadolint.yaml``,
   ``~/hadolint/config.yaml``, ``~/.hadolint.yaml`` (or the file given explicitly);
2. ``[tool.imagewise.lint]`` in ``pyproject.toml`` or ``[lint]`` in ``imagewise.toml`` (in the
   project directory), with the same keys;
3. ``HADOLINT_*`` environment variables (``HADOLINT_IGNORE``, ``HADOLINT_FAILURE_THRESHOLD``,
   ``HADOLINT_TRUSTED_REGISTRIES``, ``HADOLINT_NOFAIL``, ``HADOLINT_STRICT_LABELS``,
   ``HADOLINT_REQUIRE_LABELS``, ``HADOLINT_OVERRIDE_{ERROR,WARNING,INFO,STYLE}``).

Keys: ``ignored``, ``override: {error,warning,info,style: [ids]}``, ``trustedRegistries``,
``label-schema: {name: text|url|semver|hash|rfc3339|spdx|email}``, ``strict-labels``,
``failure-threshold`` (error|warning|info|style|ignore|none), ``no-fail``,
``disable-ignore-pragma``, ``custom-rules`` (rules files, see :mod:`.custom`, relative to the
config file). Snake/kebab/camel spellings are all accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from imagewise.errors import ConfigError
from imagewise.findings import Finding, Severity
from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from imagewise.dockerfile.rules import Rule

LABEL_TYPES = frozenset({"text", "url", "semver", "hash", "rfc3339", "spdx", "email"})
_HADOLINT_FILES = (".hadolint.yaml", ".hadolint.yml")


class LintConfig(Record):
    __slots__ = (
        "ignored",
        "override",
        "trusted_registries",
        "default_registries",  # noqa: RUF023
        "label_schema",
        "strict_labels",
        "failure_threshold",
        "no_fail",
        "disable_ignore_pragma",
        "sources",
        "context_dir",
        "custom_rule_files",
        "deprecated_bases",
    )
    _unhashed = ("override", "label_schema")
    ignored: frozenset[str]
    override: dict[str, Severity]
    trusted_registries: tuple[str, ...]
    # IW102's allow-list when trusted_registries is empty (None: DEFAULT_REGISTRIES); `check`
    # sets it to its policy's allowed_registries, so one list judges the base image
    default_registries: tuple[str, ...] | None
    label_schema: dict[str, str]
    strict_labels: bool
    failure_threshold: Severity | None  # None: "none", never fail
    no_fail: bool
    disable_ignore_pragma: bool
    sources: tuple[str, ...]
    context_dir: str | None  # build context, for rules that look beside the Dockerfile
    custom_rule_files: tuple[str, ...]  # ``custom-rules`` files (absolute paths, see .custom)
    #: (image as the FROM names it, the deprecation's summary) found in the registries by
    #: ``lint --check-bases`` (``dockerfile.bases``), for IW113
    deprecated_bases: tuple[tuple[str, str], ...]

    def __init__(
        self,
        ignored: frozenset[str] = frozenset(),
        override: dict[str, Severity] | None = None,
        trusted_registries: tuple[str, ...] = (),
        default_registries: tuple[str, ...] | None = None,
        label_schema: dict[str, str] | None = None,
        strict_labels: bool = False,
        failure_threshold: Severity | None = Severity.INFO,
        no_fail: bool = False,
        disable_ignore_pragma: bool = False,
        sources: tuple[str, ...] = (),
        context_dir: str | None = None,
        custom_rule_files: tuple[str, ...] = (),
        deprecated_bases: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.ignored = ignored
        self.override = {} if override is None else override
        self.trusted_registries = trusted_registries
        self.default_registries = default_registries
        self.label_schema = {} if label_schema is None else label_schema
        self.strict_labels = strict_labels
        self.failure_threshold = failure_threshold
        self.no_fail = no_fail
        self.disable_ignore_pragma = disable_ignore_pragma
        self.sources = sources
        self.context_dir = context_dir
        self.custom_rule_files = custom_rule_files
        self.deprecated_bases = deprecated_bases

    @property
    def custom_rules(self) -> tuple[Rule, ...]:
        """The rules of :attr:`custom_rule_files`, built where lint runs (once per file and
        version, see :func:`imagewise.dockerfile.custom.rules_from_files`)."""
        if not self.custom_rule_files:
            return ()
        from imagewise.dockerfile.custom import rules_from_files

        return rules_from_files(self.custom_rule_files)

    def severity_for(self, rule: str, default: Severity) -> Severity:
        return self.override.get(rule, default)

    def fails(self, findings: Iterable[Finding]) -> bool:
        """True when the findings should fail the run (exit 1)."""
        if self.no_fail or self.failure_threshold is None:
            return False
        threshold = max(self.failure_threshold, Severity.STYLE)
        return any(f.severity >= threshold for f in findings)

    def merged(self, data: Mapping[str, Any], source: str = "") -> LintConfig:
        """A copy with the keys of ``data`` (a parsed config document) applied."""
        return _apply(self, data, source)


def _norm(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def _ids(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of rule ids")
    return frozenset(v.strip() for v in value if v.strip())


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _threshold(value: Any, where: str) -> Severity | None:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a severity name")
    if value.strip().lower() == "none":
        return None
    try:
        return Severity.parse(value)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e


def _apply(cfg: LintConfig, data: Mapping[str, Any], source: str) -> LintConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source or 'config'}: expected a mapping at the top level")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        k = _norm(str(key))
        where = f"{source}: {key}" if source else str(key)
        if k in ("ignored", "ignore"):
            changes["ignored"] = cfg.ignored | _ids(value, where)
        elif k == "override":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: expected a mapping of severity to rule ids")
            over = dict(cfg.override)
            for sev, ids in value.items():
                level = Severity.parse(str(sev))
                for rid in _ids(ids, f"{where}.{sev}"):
                    over[rid] = level
            changes["override"] = over
        elif k in ("trustedregistries", "trustedregistry", "allowedregistries"):
            regs = [value] if isinstance(value, str) else value
            if not isinstance(regs, list) or not all(isinstance(r, str) for r in regs):
                raise ConfigError(f"{where}: expected a list of registries")
            changes["trusted_registries"] = tuple(dict.fromkeys([*cfg.trusted_registries, *regs]))
        elif k in ("labelschema", "requirelabels", "requirelabel"):
            changes["label_schema"] = {**cfg.label_schema, **_schema(value, where)}
        elif k == "strictlabels":
            changes["strict_labels"] = _bool(value, where)
        elif k == "failurethreshold":
            changes["failure_threshold"] = _threshold(value, where)
        elif k == "nofail":
            changes["no_fail"] = _bool(value, where)
        elif k == "disableignorepragma":
            changes["disable_ignore_pragma"] = _bool(value, where)
        elif k in ("customrules", "rulesfile", "rulesfiles"):
            changes["custom_rule_files"] = cfg.custom_rule_files + _custom(value, where, source)
        elif k in ("format", "nocolor", "verbose", "filepathinreport", "color"):
            continue  # output options: the CLI's business
        else:
            raise ConfigError(f"{where}: unknown lint setting")
    if source:
        changes["sources"] = (*cfg.sources, source)
    return cfg.replace(**changes)


def _custom(value: Any, where: str, source: str) -> tuple[str, ...]:
    """The rules files named by ``value``, checked now (a broken file is a config error)."""
    from imagewise.dockerfile.custom import rules_from_files

    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"{where}: expected a list of rules files")
    base = (
        os.path.dirname(os.path.abspath(source))
        if source and os.path.isfile(source)
        else os.getcwd()
    )
    out = tuple(os.path.abspath(os.path.join(base, p)) for p in paths)
    rules_from_files(out)
    return out


def _schema(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, list):  # ["name:format", ...] as on hadolint's command line
        pairs = [str(v).partition(":") for v in value]
        value = {name: (kind or "text") for name, _, kind in pairs}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of label name to type")
    out: dict[str, str] = {}
    for name, kind in value.items():
        kind_s = str(kind).strip().lower()
        if kind_s not in LABEL_TYPES:
            raise ConfigError(
                f"{where}.{name}: unknown label type {kind!r}; expected one of "
                f"{', '.join(sorted(LABEL_TYPES))}"
            )
        out[str(name)] = kind_s
    return out


def _load_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from e
    return data or {}


def _load_toml(path: Path) -> Mapping[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e


def find_hadolint_config(cwd: str | Path, env: Mapping[str, str]) -> Path | None:
    # the search is made with os.path: pathlib (and the urllib.parse and ipaddress it imports)
    # is imported only when a file is found
    candidates = [os.path.join(cwd, name) for name in _HADOLINT_FILES]
    home = env["HOME"] if "HOME" in env else os.path.expanduser("~")
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        candidates.append(os.path.join(xdg, "hadolint.yaml"))
    candidates += [
        os.path.join(home, ".config", "hadolint.yaml"),
        os.path.join(home, ".hadolint", "hadolint.yaml"),
        os.path.join(home, "hadolint", "config.yaml"),
        os.path.join(home, ".hadolint.yaml"),
    ]
    found = next((p for p in candidates if _is_file(p)), None)
    return None if found is None else _path(found)


def _path(text: str) -> Path:
    from pathlib import Path

    return Path(text)


def _is_file(path: str) -> bool:
    """``Path(path).is_file()`` without importing pathlib: a missing file (or a path through a
    file or a loop) is no file; any other error (permission denied) is raised as pathlib does."""
    import errno
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            raise
        return False
    except ValueError:  # a NUL in the path
        return False


def _imagewise_section(cwd: str | Path) -> tuple[Mapping[str, Any], str] | None:
    if _is_file(os.path.join(cwd, "imagewise.toml")):
        own = _path(os.path.join(cwd, "imagewise.toml"))
        doc = _load_toml(own)
        section = doc.get("lint") or doc.get("tool", {}).get("imagewise", {}).get("lint")
        if section is not None:
            return section, str(own)
    if _is_file(os.path.join(cwd, "pyproject.toml")) and _mentions_imagewise(
        os.path.join(cwd, "pyproject.toml")
    ):
        py = _path(os.path.join(cwd, "pyproject.toml"))
        section = _load_toml(py).get("tool", {}).get("imagewise", {}).get("lint")
        if section is not None:
            return section, str(py)
    return None


def _mentions_imagewise(path: str | Path) -> bool:
    """Whether a pyproject.toml can have a ``tool.imagewise`` table (most projects' has none:
    then the TOML parser is not even imported). Unreadable files go on to the parser's error."""
    try:
        with open(path, "rb") as fh:
            return b"imagewise" in fh.read()
    except OSError:
        return True


def _from_env(cfg: LintConfig, env: Mapping[str, str]) -> LintConfig:
    data: dict[str, Any] = {}
    names = {
        "HADOLINT_IGNORE": "ignored",
        "HADOLINT_FAILURE_THRESHOLD": "failure-threshold",
        "HADOLINT_NOFAIL": "no-fail",
        "HADOLINT_STRICT_LABELS": "strict-labels",
        "HADOLINT_DISABLE_IGNORE_PRAGMA": "disable-ignore-pragma",
    }
    for var, key in names.items():
        if env.get(var):
            data[key] = env[var]
    if env.get("HADOLINT_TRUSTED_REGISTRIES"):
        data["trustedRegistries"] = [
            r.strip() for r in env["HADOLINT_TRUSTED_REGISTRIES"].split(",") if r.strip()
        ]
    if env.get("HADOLINT_REQUIRE_LABELS"):
        data["label-schema"] = [
            r.strip() for r in env["HADOLINT_REQUIRE_LABELS"].split(",") if r.strip()
        ]
    override = {
        lvl: env[f"HADOLINT_OVERRIDE_{lvl.upper()}"]
        for lvl in ("error", "warning", "info", "style")
        if env.get(f"HADOLINT_OVERRIDE_{lvl.upper()}")
    }
    if override:
        data["override"] = override
    return cfg.merged(data, "environment") if data else cfg


def load_config(
    config_file: str | Path | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LintConfig:
    """Load the lint configuration the way hadolint does, then ours, then the environment."""
    env = os.environ if env is None else env
    base = cwd if cwd is not None else os.getcwd()
    cfg = LintConfig()
    if config_file is not None:
        path = _path(os.fspath(config_file))
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        if path.suffix == ".toml":
            doc = _load_toml(path)
            section = doc.get("lint") or doc.get("tool", {}).get("imagewise", {}).get("lint", {})
            return _from_env(cfg.merged(section, str(path)), env)
        return _from_env(cfg.merged(_load_yaml(path), str(path)), env)
    found = find_hadolint_config(base, env)
    if found is not None:
        cfg = cfg.merged(_load_yaml(found), str(found))
    own = _imagewise_section(base)
    if own is not None:
        cfg = cfg.merged(*own)
    return _from_env(cfg, env)
