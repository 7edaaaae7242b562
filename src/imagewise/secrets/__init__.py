"""Secrets in image layers and config: a curated rule set with entropy and allowlists.

``SecretsVisitor`` joins the single pass over the layers (every file of every layer, including
files deleted later); ``scan_config(config, image)`` checks Env, Labels and history. Both return
``imagewise.findings.Finding`` with masked values only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RULES", "SecretsVisitor", "scan_config"]

_EXPORTS = {"SecretsVisitor": "imagewise.secrets.visitor", "scan_config": "imagewise.secrets.visitor",
            "RULES": "imagewise.secrets.rules"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagewise.secrets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
