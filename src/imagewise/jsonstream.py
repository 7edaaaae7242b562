"""JSON documents written as they are encoded, so that a long list never becomes one string.

``write(doc, out)`` writes exactly what ``json.dumps(doc, indent=2)`` would, except that a
:class:`Lazy` value (an iterable of JSON-able items, anywhere in the document) is rendered as a
list one item at a time: an image with a million inefficient files never holds a million dicts,
nor the encoder's list of every piece of the text.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


class Lazy:
    """A JSON list whose items are made while it is written (read once)."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def _swap(value: Any, found: list[Lazy], tag: str) -> Any:
    """A copy of the containers of ``value`` with each Lazy replaced by a marker string."""
    if isinstance(value, Lazy):
        found.append(value)
        return f"\0{tag}:{len(found) - 1}\0"
    if isinstance(value, dict):
        return {k: _swap(v, found, tag) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_swap(v, found, tag) for v in value]
    return value


def write(
    doc: Any, out: Callable[[str], object], indent: int = 2, ensure_ascii: bool = True
) -> None:
    """Call ``out`` with consecutive pieces of ``json.dumps(doc, indent=indent,
    ensure_ascii=ensure_ascii)``."""
    found: list[Lazy] = []
    tag = os.urandom(8).hex()  # no string of the document can fake a marker
    text = json.dumps(_swap(doc, found, tag), indent=indent, ensure_ascii=ensure_ascii)
    pos = 0
    for m in re.finditer(r'"\\u0000' + tag + r':(\d+)\\u0000"', text):
        head = text[pos : m.start()]
        out(head)
        line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
        base = " " * (len(line) - len(line.lstrip(" ")))
        pad = base + " " * indent
        first = True
        for item in found[int(m.group(1))].items:
            piece = json.dumps(item, indent=indent, ensure_ascii=ensure_ascii).replace(
                "\n", "\n" + pad
            )
            out(("[\n" if first else ",\n") + pad + piece)
            first = False
        out("[]" if first else f"\n{base}]")
        pos = m.end()
    out(text[pos:])


def dumps(doc: Any, indent: int = 2) -> str:
    """The whole text (for callers that need a string)."""
    parts: list[str] = []
    write(doc, parts.append, indent)
    return "".join(parts)
