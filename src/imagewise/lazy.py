"""The one mechanism behind every package facade: a table of public names, each resolved from
its module the first time it is used, so importing a package costs nothing until a name of it
is needed (start-up is part of every command's time).

A package's ``__init__`` says::

    __getattr__, __dir__, __all__ = exports(__name__, {"analyze": "imagewise.analysis.run", ...})

with ``"module:attribute"`` where the public name differs from the module's own. Importing a
module is thread-safe (the import system locks per module), so facades may be used from several
threads at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` publishing the names of ``table``."""

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(module), attr or name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__, sorted(table)
