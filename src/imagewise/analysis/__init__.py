"""Layer efficiency: dive-exact figures, reclaimable bytes, leftovers, attribution and fixes.

``analyze(image)`` reads every layer once and returns an :class:`ImageAnalysis`;
``EfficiencyVisitors`` lets another command (``check``) run the same visitors in its own pass.
Implementation modules are private; import from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.analysis.model import ImageAnalysis as ImageAnalysis
    from imagewise.analysis.run import EfficiencyVisitors as EfficiencyVisitors, analyze as analyze

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "EfficiencyVisitors": "imagewise.analysis.run",
        "analyze": "imagewise.analysis.run",
        "ImageAnalysis": "imagewise.analysis.model",
    },
)
