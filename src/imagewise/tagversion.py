"""Versions read from image tags, and version constraints (pure; no registry).

A tag is ``[v]NUMBERS[FLAVOUR]``: ``3.11-slim-bookworm`` is version (3, 11) of flavour
``-slim-bookworm``; ``1.27.3-alpine`` is (1, 27, 3) of ``-alpine``; ``20240101`` is (20240101,)
with no flavour (a date tag). Two tags are comparable when they have the same ``v`` prefix, the
same flavour and the same number of components (``3.11`` is compared with ``3.12``, never with
``3.12.1``: a tag's precision is part of what it promises). A flavour that starts like a
pre-release (``rc1``, ``-beta.2``, ``a1``, ``-dev``) marks a pre-release; those are never
offered as updates.

Constraints are npm-style: ``~3.11`` (>=3.11 <3.12), ``^3.11`` (>=3.11 <4), ``3.12.x``,
``>=3.11 <3.13`` (space-separated comparators: all must hold), ``=3.12`` and ``*``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from imagewise.errors import UsageError

_TAG = re.compile(r"^(v?)(\d{1,9}(?:\.\d{1,9}){0,3})(.*)$")
_PRE = re.compile(
    r"^[-._]?(?:a|alpha|b|beta|c|rc|pre|preview|dev|nightly|snapshot)\.?\d*(?:$|[-_.+])", re.I
)

LEVELS = ("patch", "minor", "major")


class TagVersion(NamedTuple):
    prefix: str  # "v" or ""
    numbers: tuple[int, ...]
    flavour: str
    pre: bool

    @property
    def kind(self) -> tuple[str, int, str]:
        """What must match for two tags to be comparable."""
        return (self.prefix, len(self.numbers), self.flavour)


def parse_tag(tag: str) -> TagVersion | None:
    """The version in ``tag``; None for a tag that does not start with one (``latest``,
    ``bookworm``)."""
    m = _TAG.match(tag)
    if m is None:
        return None
    flavour = m.group(3)
    if flavour and flavour[0].isdigit():
        return None  # "3.11.4.5.6" or "2024a": not a version we can order
    return TagVersion(
        m.group(1), tuple(int(x) for x in m.group(2).split(".")), flavour, bool(_PRE.match(flavour))
    )


def level(old: tuple[int, ...], new: tuple[int, ...]) -> str:
    """``major`` when the first number changed, ``minor`` the second, ``patch`` any later."""
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            return LEVELS[2 - min(i, 2)]
    return "patch"


def newer_tags(current: str, tags: list[str]) -> dict[str, list[str]]:
    """The tags newer than ``current`` and comparable with it, by level, newest first.
    Empty when ``current`` carries no version."""
    cur = parse_tag(current)
    out: dict[str, list[str]] = {lv: [] for lv in LEVELS}
    if cur is None:
        return out
    found = []
    for tag in tags:
        v = parse_tag(tag)
        if v is None or v.pre or v.kind != cur.kind or v.numbers <= cur.numbers:
            continue
        found.append((v.numbers, tag))
    for numbers, tag in sorted(found, reverse=True):
        out[level(cur.numbers, numbers)].append(tag)
    return out


# -- constraints -------------------------------------------------------------------------------

_CMP = re.compile(r"^(>=|<=|>|<|=|~|\^)?v?(\d+(?:\.(?:\d+|x|\*))*)$")


class Comparator(NamedTuple):
    op: str
    numbers: tuple[int, ...]


def _bound(numbers: tuple[int, ...], upto: int) -> tuple[int, ...]:
    """The exclusive upper bound after bumping component ``upto``: (3, 11), 0 -> (4,)."""
    head = list(numbers[: upto + 1]) or [0]
    head[-1] += 1
    return tuple(head)


def parse_constraint(text: str) -> tuple[Comparator, ...]:
    """Comparators that must all hold; UsageError naming the bad part."""
    text = text.strip()
    if text in ("*", "x", ""):
        return ()
    out: list[Comparator] = []
    for part in text.split():
        m = _CMP.match(part)
        if m is None:
            raise UsageError(f"bad version constraint {part!r} (e.g. ~3.11, ^3, >=3.11 <3.13)")
        op = m.group(1) or "="
        pieces = m.group(2).split(".")
        wild = next((i for i, p in enumerate(pieces) if p in ("x", "*")), None)
        numbers = tuple(int(p) for p in pieces[:wild])
        if wild is not None:
            if op != "=":
                raise UsageError(f"bad version constraint {part!r}: a wildcard takes no operator")
            out += [Comparator(">=", numbers)] + (
                [Comparator("<", _bound(numbers, len(numbers) - 1))] if numbers else []
            )
        elif op == "~":
            out += [
                Comparator(">=", numbers),
                Comparator("<", _bound(numbers, min(1, len(numbers) - 1))),
            ]
        elif op == "^":
            first = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
            out += [Comparator(">=", numbers), Comparator("<", _bound(numbers, first))]
        elif op == "=" and len(numbers) < 3:
            out += [Comparator(">=", numbers), Comparator("<", _bound(numbers, len(numbers) - 1))]
        else:
            out.append(Comparator(op, numbers))
    return tuple(out)


def _pad(a: tuple[int, ...], n: int) -> tuple[int, ...]:
    return a + (0,) * (n - len(a))


def satisfies(numbers: tuple[int, ...], constraint: tuple[Comparator, ...]) -> bool:
    for c in constraint:
        n = max(len(numbers), len(c.numbers))
        a, b = _pad(numbers, n), _pad(c.numbers, n)
        ok = {
            ">=": a >= b,
            "<=": a <= b,
            ">": a > b,
            "<": a < b,
            "=": a == b,
        }[c.op]
        if not ok:
            return False
    return True
