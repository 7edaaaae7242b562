"""Ignore pragmas in Dockerfile comments, with hadolint's grammar.

* ``# hadolint ignore=DL3008,DL3009`` (or ``# imagewise ignore=...``) on the line directly before
  an instruction ignores those rules for that instruction; a trailing ``# reason`` is allowed;
* ``# hadolint global ignore=...`` ignores them in the whole file;
* ``# hadolint stage ignore=...`` ignores them in one stage: the stage the next instruction
  belongs to (the one a following FROM opens, or the current one).

A list with anything that is not a rule id (``ignore=crazy,DL3002``) is not a pragma at all,
as in hadolint.
"""

from __future__ import annotations

import re

from imagewise.dockerfile.model import Dockerfile
from imagewise.record import Record

# compiled on the first comment with a "=" in it (most Dockerfiles have no pragma)
_PRAGMA = r"^\s*(hadolint|imagewise)\s+(?:(global|stage)\s+)?ignore\s*=\s*(.*)$"
_RULE_ID = r"^[A-Za-z]{1,10}[0-9]{1,6}$"
_COMPILED: list[re.Pattern[str]] = []  # [_PRAGMA, _RULE_ID]


class Pragmas(Record):
    __slots__ = ("line_ignores", "global_ignores", "stage_ignores", "inline_lines")  # noqa: RUF023
    _unhashed = ("line_ignores",)
    line_ignores: dict[int, frozenset[str]]
    global_ignores: frozenset[str]
    stage_ignores: tuple[tuple[int, int, frozenset[str]], ...]
    inline_lines: tuple[int, ...]  # lines of ``ignore=`` pragmas (for DL1001)

    def __init__(
        self,
        line_ignores: dict[int, frozenset[str]] | None = None,
        global_ignores: frozenset[str] = frozenset(),
        stage_ignores: tuple[tuple[int, int, frozenset[str]], ...] = (),
        inline_lines: tuple[int, ...] = (),
    ) -> None:
        self.line_ignores = {} if line_ignores is None else line_ignores
        self.global_ignores = global_ignores
        self.stage_ignores = stage_ignores
        self.inline_lines = inline_lines

    def ignores(self, rule: str, line: int) -> bool:
        if rule in self.global_ignores:
            return True
        if rule in self.line_ignores.get(line, frozenset()):
            return True
        return any(lo <= line <= hi and rule in ids for lo, hi, ids in self.stage_ignores)


def parse_ignore(comment: str) -> tuple[str, list[str]] | None:
    """``(scope, ids)`` for a pragma comment (text after ``#``); scope is ``""``, ``global`` or
    ``stage``. None when the comment is not a valid ignore pragma."""
    if "=" not in comment:  # the pattern needs one
        return None
    if not _COMPILED:
        _COMPILED[:] = [re.compile(_PRAGMA, re.IGNORECASE), re.compile(_RULE_ID)]
    m = _COMPILED[0].match(comment)
    if not m:
        return None
    body = m.group(3).split("#", 1)[0]
    ids = [p.strip() for p in body.split(",")]
    if not ids or not all(_COMPILED[1].match(i) for i in ids):
        return None
    return (m.group(2) or "").lower(), [i.upper() for i in ids]


def parse_pragmas(df: Dockerfile) -> Pragmas:
    line_ignores: dict[int, frozenset[str]] = {}
    global_ids: set[str] = set()
    stages: list[tuple[int, int, frozenset[str]]] = []
    inline: list[int] = []
    from_lines = [s.from_line for s in df.stages]
    last_line = max(len(df.text.splitlines()), 1)
    for line, text in df.comments:
        parsed = parse_ignore(text)
        if parsed is None:
            continue
        scope, ids = parsed
        if scope == "global":
            global_ids.update(ids)
        elif scope == "stage":
            stages.append((*_stage_range(df, line, from_lines, last_line), frozenset(ids)))
        else:
            inline.append(line)
            line_ignores[line + 1] = line_ignores.get(line + 1, frozenset()) | frozenset(ids)
    return Pragmas(line_ignores, frozenset(global_ids), tuple(stages), tuple(inline))


def _stage_range(
    df: Dockerfile, line: int, from_lines: list[int], last_line: int
) -> tuple[int, int]:
    following = [i for i in df.instructions if i.start_line > line]
    start = line
    if following and following[0].keyword == "FROM":
        start = following[0].start_line
    later = [f for f in from_lines if f > start]
    return start, (later[0] - 1 if later else last_line)
