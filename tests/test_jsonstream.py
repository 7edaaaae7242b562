"""jsonstream.write gives json.dumps(indent=2)'s exact text with Lazy lists made while written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagewise.jsonstream import Lazy, dumps


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
    from imagewise.jsonstream import write

    def out(text: str) -> None:
        pieces.append(text)
        if '"i": 0' in text:
            assert made == [0]  # the first item is written before the second is made

    write({"x": Lazy(items())}, out)
    assert made == [0, 1, 2]
