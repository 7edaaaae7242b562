"""Layer efficiency: dive-exact figures, reclaimable bytes, leftovers, attribution and fixes.

``analyze(image)`` reads every layer once and returns an :class:`ImageAnalysis`;
``EfficiencyVisitors`` lets another command (``check``) run the same visitors in its own pass.
Implementation modules are private; import from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagewise.analysis.model import ImageAnalysis
    from imagewise.analysis.run import EfficiencyVisitors, analyze

__all__ = ["EfficiencyVisitors", "ImageAnalysis", "analyze"]


def __getattr__(name: str) -> Any:  # lazy: importing the package stays cheap
    if name in ("analyze", "EfficiencyVisitors"):
        from imagewise.analysis import run

        return getattr(run, name)
    if name == "ImageAnalysis":
        from imagewise.analysis.model import ImageAnalysis

        return ImageAnalysis
    raise AttributeError(name)
