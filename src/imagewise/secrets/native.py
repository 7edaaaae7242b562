"""Whether the secret scan's literal prefilter is compiled (``_literals.c``, built by
``pip install`` where a C compiler exists). Without it, or with ``IMAGEWISE_PURE=1``, every rule's
regex runs over every text, with the same hits (``tests/test_secrets_native.py``).
Kept tiny: ``imagewise --version`` imports it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def literal_finder() -> Any:
    """``_literals`` (``compile`` and ``find``), or ``None`` when it is not built or
    ``IMAGEWISE_PURE`` is set."""
    if os.environ.get("IMAGEWISE_PURE"):
        return None
    try:
        from imagewise.secrets import _literals
    except ImportError:
        return None
    return _literals


def describe() -> str:
    """One line for ``imagewise --version``: how the secret scan picks the rules to run."""
    if literal_finder() is not None:
        return "native (C literal prefilter)"
    if os.environ.get("IMAGEWISE_PURE"):
        return "pure Python (IMAGEWISE_PURE is set)"
    return "pure Python (the C extension was not built: no C compiler at install time)"
