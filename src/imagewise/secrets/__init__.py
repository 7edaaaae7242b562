"""Secrets in image layers and config: a curated rule set with entropy and allowlists.

``SecretsVisitor`` joins the single pass over the layers (every file of every layer, including
files deleted later); ``scan_config(config, image)`` checks Env, Labels and history. Both return
``imagewise.findings.Finding`` with masked values only.
"""

from __future__ import annotations

from imagewise.lazy import exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.secrets.rules import RULES as RULES
    from imagewise.secrets.visitor import (
        SecretsVisitor as SecretsVisitor,
        scan_config as scan_config,
    )

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "SecretsVisitor": "imagewise.secrets.visitor",
        "scan_config": "imagewise.secrets.visitor",
        "RULES": "imagewise.secrets.rules",
    },
)
