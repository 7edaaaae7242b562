"""Image audit: CIS Docker Benchmark / dockle checks and imagewise's own, on config and final filesystem."""

from imagewise.audit.checks import CHECKS, AuditContext, run_checks, rule_infos
from imagewise.audit.filesystem import AuditVisitor

__all__ = ["CHECKS", "AuditContext", "AuditVisitor", "rule_infos", "run_checks"]
