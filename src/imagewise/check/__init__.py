"""``imagewise check``: the whole product in one pass per layer and one verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.check.run import (
        CheckOptions as CheckOptions,
        CheckResult as CheckResult,
        run_check as run_check,
    )

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CheckOptions": "imagewise.check.run",
        "CheckResult": "imagewise.check.run",
        "run_check": "imagewise.check.run",
    },
)
