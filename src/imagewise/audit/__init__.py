"""Image audit: CIS Docker Benchmark / dockle checks and imagewise's own, on config and final filesystem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.audit.checks import (
        CHECKS as CHECKS,
        AuditContext as AuditContext,
        rule_infos as rule_infos,
        run_checks as run_checks,
    )
    from imagewise.audit.filesystem import AuditVisitor as AuditVisitor

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CHECKS": "imagewise.audit.checks",
        "AuditContext": "imagewise.audit.checks",
        "rule_infos": "imagewise.audit.checks",
        "run_checks": "imagewise.audit.checks",
        "AuditVisitor": "imagewise.audit.filesystem",
    },
)
