"""Which compiled helpers this install has: the C parser of plain tar headers (``_tarhead.c``;
the secret scan's own is chosen by ``secrets/native.py``).

Built by ``pip install`` where a C compiler exists (``setup.py``: an optional extension); where
none does, or with ``IMAGEWISE_PURE=1`` (the test suite runs both ways), the pure-Python walk
parses every header itself, with the same results (``tests/test_walk_native.py``).
Kept tiny: ``imagewise --version`` imports it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def header_parser() -> Callable[[Any, int], tuple[Any, ...] | None] | None:
    """``_tarhead.header``, or ``None`` when it is not built or ``IMAGEWISE_PURE`` is set."""
    return _tarhead("header")  # type: ignore[no-any-return]


def batch_scanner() -> Callable[..., tuple[Any, ...] | None] | None:
    """``_tarhead.scan`` (runs of plain headers as columns), or ``None`` as for
    :func:`header_parser`."""
    return _tarhead("scan")  # type: ignore[no-any-return]


def _tarhead(name: str) -> Any:
    if os.environ.get("IMAGEWISE_PURE"):
        return None
    import importlib

    try:
        module = importlib.import_module("imagewise.archive._tarhead")
    except ImportError:
        return None
    return getattr(module, name)


def describe() -> str:
    """One line for ``imagewise --version``: which tar walk runs here."""
    if header_parser() is not None:
        return "native (C tar headers)"
    if os.environ.get("IMAGEWISE_PURE"):
        return "pure Python (IMAGEWISE_PURE is set)"
    return "pure Python (the C extension was not built: no C compiler at install time)"
