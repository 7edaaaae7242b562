"""jsonstream.write gives json.dumps(indent=2)'s exact text with Lazy lists made while written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from imagewise.jsonstream import Lazy, dumps, write


def _plain(value: Any) -> Any:
    if isinstance(value, Lazy):
        return [_plain(v) for v in value.items]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


DOCS = [
    lambda: {"a": 1, "b": Lazy([]), "c": [1, {"x": Lazy([{"p": 1, "q": [1, 2]}, {"p": 2}])}]},
    lambda: Lazy([1, "two", None]),
    lambda: {"z": Lazy(iter([{"k": '\u00e9\n"', "e": {}, "l": []}])), "after": 2.5},
    lambda: {"s": "\0lazy:0\0", "t": Lazy(iter(range(3)))},  # a look-alike of a marker
    lambda: {"inefficient_files": Lazy({"path": f"/p{i}", "count": 2} for i in range(5))},
    lambda: {"x": [{"y": Lazy(({"p": f"/\u00e9{i}", "n": i * 0.5} for i in range(3)), flat=True)}]},
]


@pytest.mark.parametrize("make", DOCS)
def test_same_text_as_json_dumps(make: Any) -> None:
    assert dumps(make()) == json.dumps(_plain(make()), indent=2)


def test_items_are_made_one_at_a_time() -> None:
    made: list[int] = []

    def items() -> Any:
        for i in range(3):
            made.append(i)
            yield {"i": i}

    pieces: list[str] = []

    def out(text: str) -> None:
        pieces.append(text)
        if '"i": 0' in text:
            assert made == [0]  # the first item is written before the second is made

    write({"x": Lazy(items())}, out)
    assert made == [0, 1, 2]


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_flat = st.one_of(_scalar, st.dictionaries(st.text(max_size=6), _scalar, max_size=5))


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_flat, max_size=6),
    indent=st.integers(min_value=0, max_value=4),
    ensure_ascii=st.booleans(),
    depth=st.integers(min_value=0, max_value=2),
)
def test_flat_items_take_the_c_encoder_with_the_same_text(
    items: list[Any], indent: int, ensure_ascii: bool, depth: int
) -> None:
    """Items of a flat Lazy are written by the C encoder with indented separators; the text
    must be exactly json.dumps's at every indent, nesting depth and ensure_ascii setting."""
    doc: Any = Lazy(list(items), flat=True)
    plain: Any = list(items)
    for _ in range(depth):
        doc, plain = {"k": doc, "n": 1}, {"k": plain, "n": 1}
    pieces: list[str] = []
    write(doc, pieces.append, indent, ensure_ascii)
    assert "".join(pieces) == json.dumps(plain, indent=indent, ensure_ascii=ensure_ascii)


def test_flat_dicts_of_strings_and_integers_keep_json_dumps_text() -> None:
    """The %-template path: keys holding '%', escapes, non-ASCII, ints of every size, and dicts
    whose values leave it (a bool, a float, None) in the same list."""
    items: list[Any] = [
        {"path": "a/%s/b", "100%": 2, "w": -(2**80)},
        {"path": 'q"\\\n\u00e9\U0001f600', "100%": 0, "w": 7},
        {"w": 1, "path": "x", "100%": 3},  # another key order
        {"path": "y", "100%": True, "w": None},
        {"path": "z", "100%": 1.5, "w": float("inf")},
    ]
    for ensure_ascii in (True, False):
        for indent in (0, 2, 4):
            pieces: list[str] = []
            write({"files": Lazy(list(items), flat=True)}, pieces.append, indent, ensure_ascii)
            want = json.dumps({"files": items}, indent=indent, ensure_ascii=ensure_ascii)
            assert "".join(pieces) == want


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(alphabet='ab/"\\\n\u00e9\U0001f600%:', min_size=1, max_size=8)),
    indent=st.sampled_from([0, 2, 4]),
    ensure_ascii=st.booleans(),
    depth=st.integers(0, 2),
)
def test_rendered_items_keep_json_dumps_text(
    names: list[str], indent: int, ensure_ascii: bool, depth: int
) -> None:
    """A Lazy whose maker renders its items (dive's inefficient files, written a thousand at a
    time) gives json.dumps's text at every indent, depth and ensure_ascii setting; also with
    more than a thousand items."""
    from imagewise.analysis.dive import InefficientFiles

    rows = [(-(i * 7), -i, f"d/{n}", n, i % 5) for i, n in enumerate(names)]
    rows += [(-3, -(10**6) - i, "x", f"f{i}", 2) for i in range(len(names) * 150)]
    files = InefficientFiles(rows)
    doc: Any = Lazy(files.json_items(), flat=True, render=files.json_render)
    plain: Any = list(files.json_items())
    for _ in range(depth):
        doc, plain = {"k": doc, "n": 1}, {"k": plain, "n": 1}
    pieces: list[str] = []
    write(doc, pieces.append, indent, ensure_ascii)
    assert "".join(pieces) == json.dumps(plain, indent=indent, ensure_ascii=ensure_ascii)
    empty: list[str] = []
    write({"e": Lazy([], render=InefficientFiles([]).json_render)}, empty.append, indent)
    assert "".join(empty) == json.dumps({"e": []}, indent=indent)
