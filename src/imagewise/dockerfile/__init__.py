"""Dockerfile parsing, shell analysis of RUN and hadolint-compatible linting.

``parse(text, filename) -> Dockerfile`` (see :mod:`.parser` and :mod:`.model`),
``parse_shell(script) -> Script`` (:mod:`.shell`), ``lint(text, filename, config)`` (:mod:`.lint`).
"""

from __future__ import annotations

from imagewise.lazy import exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from imagewise.dockerfile.model import (
        Dockerfile as Dockerfile,
        Heredoc as Heredoc,
        Instruction as Instruction,
        Stage as Stage,
    )
    from imagewise.dockerfile.parser import parse as parse, parse_file as parse_file

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Dockerfile": "imagewise.dockerfile.model",
        "Heredoc": "imagewise.dockerfile.model",
        "Instruction": "imagewise.dockerfile.model",
        "Stage": "imagewise.dockerfile.model",
        "parse": "imagewise.dockerfile.parser",
        "parse_file": "imagewise.dockerfile.parser",
    },
)
