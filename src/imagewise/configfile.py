"""YAML configuration files read the same way everywhere: a missing file is a usage error
(exit 2, "NAME not found: PATH"), unreadable or malformed YAML a configuration error, and an
unknown key is named with the keys that are known."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagewise.errors import ConfigError, UsageError


def load_yaml(path: str | Path, what: str) -> Any:
    """The document in the YAML file ``path``; ``what`` names it in errors ("sync config")."""
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {p}") from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{what} {p}: {e}") from None


def reject_unknown_keys(doc: dict[str, Any], known: Iterable[str], where: str) -> None:
    """ConfigError naming the first key of ``doc`` (sorted) that is not ``known``."""
    known = set(known)
    bad = sorted(set(doc) - known)
    if bad:
        raise ConfigError(f"{where}: unknown key {bad[0]} (known: {', '.join(sorted(known))})")
