"""Image audit: CIS Docker Benchmark / dockle checks and imagewise's own, on config and final filesystem."""

from imagewise.audit.checks import CHECKS, AuditContext, rule_infos, run_checks
from imagewise.audit.filesystem import AuditVisitor

__all__ = ["CHECKS", "AuditContext", "AuditVisitor", "rule_infos", "run_checks"]
