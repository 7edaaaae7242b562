"""JSON documents written as they are encoded, so that a long list never becomes one string.

``write(doc, out)`` writes exactly what ``json.dumps(doc, indent=2)`` would, except that a
:class:`Lazy` value (an iterable of JSON-able items, anywhere in the document) is rendered as a
list one item at a time: an image with a million inefficient files never holds a million dicts,
nor the encoder's list of every piece of the text.

Speed: ``json.dumps`` with ``indent`` runs the pure-Python encoder (CPython uses its C encoder
only without ``indent``), which made writing the 100,000 inefficient files of a many-file image
cost a third of ``analyze``. The items of a ``Lazy(..., flat=True)`` (scalars, or dicts of
scalars) are encoded by the C encoder instead, with the indented form's separators given to it
directly; a dict of strings and integers alone (an inefficient file, a package row) goes
through a %-template made once per key order, its strings escaped by the C escaper. The text
is the same every way (tested).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Iterable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


class Lazy:
    """A JSON list whose items are made while it is written (read once). ``flat``: the maker
    promises every item is a scalar or a dict of scalars, which lets the C encoder write them.
    ``render``: the maker writes the items' text itself, given the indent of an item (``pad``),
    that of its keys and the string escaper: ``render(pad, inner, esc)`` yields each item's text
    exactly as ``json.dumps(item, indent=...)`` gives it at that indent (``items`` is then only
    what the list holds, for readers other than ``write``)."""

    __slots__ = ("flat", "items", "render")

    def __init__(
        self,
        items: Iterable[Any],
        flat: bool = False,
        render: Callable[[str, str, Callable[[str], str]], Iterable[str]] | None = None,
    ) -> None:
        self.items = items
        self.flat = flat
        self.render = render


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


def _flat_encoder(pad: str, indent: int, ensure_ascii: bool) -> Callable[[Any], str] | None:
    """An encoder for flat items of a list whose items sit at ``pad``: ``json.dumps(item,
    indent=indent)``'s text re-indented by ``pad`` (``None`` without the C encoder)."""
    from json import encoder as je

    make = je.c_make_encoder  # type: ignore[attr-defined]  # not in the stubs
    if make is None:  # pragma: no cover - CPython always has it
        return None
    inner = pad + " " * indent  # a dict's keys: one level deeper than the dict
    esc = je.encode_basestring_ascii if ensure_ascii else je.encode_basestring  # the C ones
    enc = make(None, None, esc, None, ": ", ",\n" + inner, False, False, True)

    templates: dict[tuple[str, ...], str] = {}

    def encode(item: Any) -> str:
        if isinstance(item, dict):
            if not item:
                return "{}"
            # the common case, a dict of strings and integers: one %-template per key order
            # (two and a half times the C encoder's speed over 100,000 inefficient files)
            values = []
            for v in item.values():
                kind = type(v)
                if kind is str:
                    values.append(esc(v))
                elif kind is int:
                    values.append(int.__repr__(v))
                else:
                    break
            else:
                keys = tuple(item)
                template = templates.get(keys)
                if template is None:
                    fields = (esc(k).replace("%", "%%") + ": %s" for k in keys)
                    template = "{\n" + inner + (",\n" + inner).join(fields) + "\n" + pad + "}"
                    templates[keys] = template
                return template % tuple(values)
            text = "".join(enc(item, 0))
            return "{\n" + inner + text[1:-1] + "\n" + pad + "}"
        return "".join(enc(item, 0))

    return encode


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
        lazy = found[int(m.group(1))]
        if lazy.render is not None:  # the items' own text, written a thousand at a time
            from json import encoder as je

            esc = je.encode_basestring_ascii if ensure_ascii else je.encode_basestring
            sep = ",\n" + pad
            texts = iter(lazy.render(pad, pad + " " * indent, esc))
            while chunk := list(itertools.islice(texts, 1024)):
                out(("[\n" + pad if first else sep) + sep.join(chunk))
                first = False
            out("[]" if first else f"\n{base}]")
            pos = m.end()
            continue
        flat = _flat_encoder(pad, indent, ensure_ascii) if lazy.flat else None
        for item in lazy.items:
            if flat is not None:
                piece = flat(item)
            else:
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
