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

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x80:
        return f"\\x{c:02x}"
    if 0xDC80 <= c <= 0xDCFF:  # a byte surrogateescape kept: show the byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\u{c:04x}"


def safe(text: str, lines: bool = False) -> str:
    """``text`` with every control character (``lines``: but newline and tab) escaped."""
    pattern = _UNSAFE_IN_LINES if lines else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)
