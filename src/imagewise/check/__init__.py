"""``imagewise check``: the whole product in one pass per layer and one verdict."""

from imagewise.check.run import CheckOptions, CheckResult, run_check

__all__ = ["CheckOptions", "CheckResult", "run_check"]
