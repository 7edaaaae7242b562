"""Text from images and files, made safe to print on a terminal.

File names, Dockerfile lines, labels and package names come from whoever built the image; a
terminal acts on the control characters in them (``ESC ] 0 ; title BEL`` retitles the window,
``ESC [ 2 J`` clears the screen, C1 ``CSI`` does the same in one character). Every human (tty,
table, text) renderer passes such text through :func:`safe` before it composes its own layout
and colours; machine formats (JSON, SARIF, SBOMs) keep the exact text, escaped by their encoder.

What :func:`safe` shows instead: a C0 control character or DEL as ``\\xNN``, a C1 control
character as ``\\u0080``..``\\u009f``, a byte that was not UTF-8 (kept by ``surrogateescape``) as
``\\xNN`` and any other lone surrogate as ``\\udXXX``. ``lines=True`` keeps newlines and tabs
(for a text that is already laid out line by line). Printable text is returned as it is.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence

#: compiled on first use (compiling them costs more than some whole commands' own work): most
#: text is printable (``str.isprintable``: no control character, no surrogate) and needs neither
_UNSAFE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff]"
_UNSAFE_IN_LINES = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"
_COMPILED: list[re.Pattern[str]] = []  # [_UNSAFE, _UNSAFE_IN_LINES]


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x80:
        return f"\\x{c:02x}"
    if 0xDC80 <= c <= 0xDCFF:  # a byte surrogateescape kept: show the byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\u{c:04x}"


def safe(text: str, lines: bool = False) -> str:
    """``text`` with every control character (``lines``: but newline and tab) escaped."""
    if text.isprintable():  # nothing to escape (and nothing to compile)
        return text
    if not _COMPILED:
        _COMPILED[:] = [re.compile(_UNSAFE), re.compile(_UNSAFE_IN_LINES)]
    pattern = _COMPILED[1 if lines else 0]
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def aligned(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` as lines of columns two spaces apart, each as wide as its widest cell (in
    terminal cells: an East Asian wide character takes two), without trailing spaces."""
    widths = [max(map(_cells, column)) for column in zip(*rows, strict=True)] if rows else []
    lines = []
    for row in rows:
        parts = [c + " " * (w - _cells(c)) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip() + "\n")
    return "".join(lines)


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes (it is :func:`safe` already: no control characters)."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(
        0 if combining(ch) else 2 if east_asian_width(ch) in ("W", "F") else 1 for ch in text
    )
