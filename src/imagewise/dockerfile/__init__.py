"""Dockerfile parsing, shell analysis of RUN and hadolint-compatible linting.

``parse(text, filename) -> Dockerfile`` (see :mod:`.parser` and :mod:`.model`),
``parse_shell(script) -> Script`` (:mod:`.shell`), ``lint(text, filename, config)`` (:mod:`.lint`).
"""

from __future__ import annotations

from imagewise.dockerfile.model import Dockerfile, Heredoc, Instruction, Stage
from imagewise.dockerfile.parser import parse, parse_file

__all__ = ["Dockerfile", "Heredoc", "Instruction", "Stage", "parse", "parse_file"]
