"""Dockerfile parser: ``parse(text, filename="Dockerfile") -> Dockerfile``.

The model (immutable records in :mod:`imagewise.dockerfile.model`):

* ``Dockerfile``: ``filename``, ``text``, ``instructions`` (all, in order), ``stages``,
  ``preamble`` (instructions before the first FROM, normally global ARGs), ``directives``
  (``{"syntax": ..., "escape": ...}``), ``escape`` (``\\`` or a backtick), ``global_args``
  (their defaults, expanded), ``comments`` (every ``(line, text)`` comment, for pragmas).
* ``Instruction``: ``keyword`` (upper-case), ``original`` (exact source text, continuation and
  heredoc lines included), ``start_line``/``end_line`` (1-based, inclusive), ``flags``
  (``{"--mount": ("type=cache,target=/x", ...)}``, repeated flags kept in order; ``flag()``,
  ``has_flag()``), ``args`` (text after the flags, continuations joined, inner comment lines
  dropped), ``arguments`` (that text, or a tuple for the JSON exec form; ``is_exec_form``),
  ``heredocs`` (``Heredoc(name, body, strip_tabs, expand, start_line, end_line)``, several per
  instruction), ``pairs`` (ENV/LABEL/ARG key-value pairs, quotes removed), ``comments`` and
  ``comment_lines`` (the comment lines just before it), ``inner`` (the instruction an ONBUILD
  wraps; ``effective`` gives it), ``stage_index`` (-1 before the first FROM), ``shell_script``
  (what a shell runs for RUN, heredoc bodies included).
* ``Stage``: ``index``, ``base_image`` (expanded with the global ARGs like BuildKit:
  ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:+alt}``, see :mod:`.expand`),
  ``base_image_raw``, ``alias``, ``platform``, ``from_instruction``/``from_line``,
  ``instructions`` (after the FROM).

Grammar, following BuildKit: parser directives at the top (``# syntax=``, ``# escape=`` with a
backtick escape for Windows files, ``# check=``); comment lines (``#`` as first non-blank
character); line continuations with the escape character (comment and blank lines inside a
continuation are skipped); heredocs for RUN/COPY/ADD (a whole word ``<<EOF``, ``<<-EOF``,
``<<"EOF"``, several per instruction); leading ``--flags``; exec (JSON) and shell forms; ONBUILD
wrapping an inner instruction (even ONBUILD/FROM, which rule DL3043 reports); stages with ``AS``
aliases and ``--platform``. Errors are :class:`~imagewise.errors.DockerfileSyntaxError` with the
file and line (unknown instruction, unterminated heredoc, FROM without an image, bad escape);
nothing else escapes ``parse``.
"""

from __future__ import annotations

import json
import re

from imagewise.dockerfile.expand import expand
from imagewise.dockerfile.model import Dockerfile, Heredoc, Instruction, Stage
from imagewise.dockerfile.words import parse_pairs, split_words, unquote
from imagewise.errors import DockerfileSyntaxError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO

KEYWORDS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
FLAG_KEYWORDS = frozenset({"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"})
EXEC_KEYWORDS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC = re.compile(r"^(\d*)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\3$")


#: the largest Dockerfile lint and fix accept, in bytes (``parse`` counts characters). Real ones
#: are tens of KB; lint's time and memory grow linearly with the size (benchmarks/lint_scale.py
#: measures them), so a bigger file is refused at once rather than after minutes of work.
MAX_DOCKERFILE_BYTES = 8 << 20


def check_size(size: int, filename: str) -> None:
    """Raise :class:`DockerfileSyntaxError` when ``size`` is over :data:`MAX_DOCKERFILE_BYTES`."""
    if size > MAX_DOCKERFILE_BYTES:
        raise DockerfileSyntaxError(
            f"larger than {MAX_DOCKERFILE_BYTES >> 20} MiB, the most imagewise reads as a "
            "Dockerfile (is it the right file?)",
            filename,
        )


def read_limited(stream: IO[bytes]) -> bytes:
    """Read a Dockerfile's bytes, stopping one byte past the limit (:func:`check_size` then
    refuses it): a huge file or endless stdin is never read whole."""
    chunks: list[bytes] = []
    total = 0
    while total <= MAX_DOCKERFILE_BYTES:
        chunk = stream.read(min(1 << 20, MAX_DOCKERFILE_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class _Cursor:
    __slots__ = ("lines", "filename", "escape", "i", "comments")  # noqa: RUF023

    def __init__(self, lines: list[str], filename: str, escape: str = "\\", i: int = 0) -> None:
        self.lines = lines
        self.filename = filename
        self.escape = escape
        self.i = i
        self.comments: list[tuple[int, str]] = []


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``; raises ``DockerfileSyntaxError`` (with line) on bad input
    and when ``text`` is over :data:`MAX_DOCKERFILE_BYTES` characters."""
    check_size(len(text), filename)
    text = text.removeprefix("\ufeff")
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines.pop()
    directives, first = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileSyntaxError(f"invalid escape token {escape!r}", filename, first or 1)
    cur = _Cursor(lines, filename, escape, first)
    instructions: list[Instruction] = []
    all_comments: list[tuple[int, str]] = []
    stage_index = -1
    while cur.i < len(lines):
        stripped = lines[cur.i].strip()
        if not stripped:
            cur.i += 1
            continue
        if stripped.startswith("#"):
            cur.comments.append((cur.i + 1, stripped[1:].strip()))
            all_comments.append(cur.comments[-1])
            cur.i += 1
            continue
        if stripped.split(None, 1)[0].upper() == "FROM":
            stage_index += 1
        ins = _instruction(cur, stage_index)
        _check_arity(ins.inner or ins, filename, cur.escape)
        instructions.append(ins)
        cur.comments = []
    df = _assemble(text, filename, instructions, directives, escape, cur.comments)
    return df.replace(comments=tuple(all_comments))


#: fewest arguments an instruction takes, as BuildKit enforces it
_MIN_ARGS = {
    "COPY": 2,
    "ADD": 2,
    "RUN": 1,
    "WORKDIR": 1,
    "USER": 1,
    "ENV": 1,
    "LABEL": 1,
    "ARG": 1,
    "EXPOSE": 1,
    "VOLUME": 1,
    "STOPSIGNAL": 1,
    "SHELL": 1,
    "ONBUILD": 1,
}


def _check_arity(ins: Instruction, filename: str, escape: str) -> None:
    need = _MIN_ARGS.get(ins.keyword)
    if need is None:
        return
    got = (
        len(ins.arguments)
        if isinstance(ins.arguments, tuple)
        else len(split_words(ins.args, escape))
    )
    if got < need:
        what = "one argument" if need == 1 else f"{need} arguments"
        raise DockerfileSyntaxError(
            f"{ins.keyword} requires at least {what}", filename, ins.start_line
        )


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].strip())
        if not m:
            break
        key = m.group(1).lower()
        if key in _KNOWN_DIRECTIVES:
            if key in found:
                break
            found[key] = m.group(2)
        i += 1
    return found, i


def _logical_line(cur: _Cursor) -> tuple[str, int, int]:
    """Join a physical line and its continuations; returns (text, first index, last index)."""
    start = cur.i
    parts: list[str] = []
    line = cur.lines[cur.i]
    while True:
        body = line.rstrip(" \t")
        if body.endswith(cur.escape):
            parts.append(body[:-1])
            cur.i += 1
            # skip comment and blank lines inside the continuation
            while cur.i < len(cur.lines) and (
                not cur.lines[cur.i].strip() or cur.lines[cur.i].lstrip().startswith("#")
            ):
                cur.i += 1
            if cur.i >= len(cur.lines):
                return "".join(parts), start, cur.i - 1
            line = cur.lines[cur.i]
            continue
        parts.append(line)
        last = cur.i
        cur.i += 1
        return "".join(parts), start, last


def _instruction(cur: _Cursor, stage_index: int) -> Instruction:
    text, first, last = _logical_line(cur)
    line_no = first + 1
    stripped = text.strip()
    m = re.match(r"(\S+)\s*(.*)", stripped, re.DOTALL)
    keyword, rest = (m.group(1), m.group(2)) if m else (stripped, "")
    upper = keyword.upper()
    if upper not in KEYWORDS:
        raise DockerfileSyntaxError(f"unknown instruction: {keyword}", cur.filename, line_no)
    rest = rest.strip()
    inner: Instruction | None = None
    heredoc_kw = upper
    if upper == "ONBUILD":
        inner_kw = rest.split(None, 1)[0].upper() if rest else ""
        if not inner_kw:
            raise DockerfileSyntaxError("ONBUILD requires an instruction", cur.filename, line_no)
        if inner_kw not in KEYWORDS:
            raise DockerfileSyntaxError(
                f"unknown instruction in ONBUILD: {rest.split(None, 1)[0]}", cur.filename, line_no
            )
        heredoc_kw = inner_kw
    heredocs: tuple[Heredoc, ...] = ()
    if heredoc_kw in HEREDOC_KEYWORDS and "<<" in rest:
        heredocs = _read_heredocs(cur, rest)
        if heredocs:
            last = heredocs[-1].end_line - 1
    original = "\n".join(cur.lines[first : last + 1])
    comments = tuple(c for _, c in cur.comments)
    comment_lines = tuple(n for n, _ in cur.comments)
    base = _build(upper, rest, cur, line_no, last + 1, original, heredocs, stage_index)
    if upper == "ONBUILD":
        im = re.match(r"(\S+)\s*(.*)", rest, re.DOTALL)
        inner_kw, inner_rest = (im.group(1), im.group(2)) if im else (rest, "")
        inner = _build(
            inner_kw.upper(),
            inner_rest.strip(),
            cur,
            line_no,
            last + 1,
            original,
            heredocs,
            stage_index,
        )
        base = base.replace(inner=inner)
    return base.replace(comments=comments, comment_lines=comment_lines)


def _build(
    keyword: str,
    rest: str,
    cur: _Cursor,
    start: int,
    end: int,
    original: str,
    heredocs: tuple[Heredoc, ...],
    stage_index: int,
) -> Instruction:
    flag_list: list[tuple[str, str]] = []
    if keyword in FLAG_KEYWORDS:
        flag_list, rest = _flags(rest, cur.escape)
    flags: dict[str, tuple[str, ...]] = {}
    for name, value in flag_list:
        flags[name] = flags.get(name, ()) + (value,)
    arguments: str | tuple[str, ...] = rest
    if keyword in EXEC_KEYWORDS:
        arguments = _exec_form(rest)
    elif keyword == "HEALTHCHECK":
        head, _, cmd = rest.partition(" ")
        if head.upper() == "CMD":
            arguments = _exec_form(cmd.strip())
    pairs: tuple[tuple[str, str | None], ...] = ()
    if keyword in ("ENV", "LABEL", "ARG"):
        pairs = parse_pairs(keyword, rest, cur.escape)
    return Instruction(
        keyword=keyword,
        original=original,
        start_line=start,
        end_line=end,
        args=rest,
        arguments=arguments,
        flags=flags,
        flag_list=tuple(flag_list),
        heredocs=heredocs,
        pairs=pairs,
        stage_index=stage_index,
    )


def _flags(rest: str, escape: str) -> tuple[list[tuple[str, str]], str]:
    out: list[tuple[str, str]] = []
    while True:
        rest = rest.lstrip()
        if not rest.startswith("--") or rest.startswith("-- ") or rest == "--":
            return out, rest
        words = split_words(rest, escape)
        token = words[0] if words else rest
        idx = rest.find(token)
        rest = rest[idx + len(token) :]
        name, eq, value = token.partition("=")
        out.append((name.lower(), unquote(value, escape) if eq else ""))


def _exec_form(rest: str) -> str | tuple[str, ...]:
    if not rest.startswith("["):
        return rest
    try:
        value = json.loads(rest)
    except ValueError:
        return rest
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return rest


def _heredoc_markers(rest: str, escape: str) -> list[tuple[str, bool, bool]]:
    """(name, strip_tabs, expand) for each heredoc word, as BuildKit finds them: a whole word
    ``[n]<<[-]NAME`` with NAME optionally quoted (quoted: no expansion in the body)."""
    found: list[tuple[str, bool, bool]] = []
    for word in split_words(rest, escape):
        m = _HEREDOC.match(word)
        if m:
            found.append((m.group(4), m.group(2) == "-", not m.group(3)))
    return found


def _read_heredocs(cur: _Cursor, rest: str) -> tuple[Heredoc, ...]:
    out: list[Heredoc] = []
    for name, strip_tabs, do_expand in _heredoc_markers(rest, cur.escape):
        start = cur.i
        body: list[str] = []
        while True:
            if cur.i >= len(cur.lines):
                raise DockerfileSyntaxError(f"unterminated heredoc {name!r}", cur.filename, start)
            line = cur.lines[cur.i]
            cur.i += 1
            candidate = line.lstrip("\t") if strip_tabs else line
            if candidate == name:
                break
            body.append(candidate)
        text = "\n".join(body) + ("\n" if body else "")
        out.append(Heredoc(name, text, strip_tabs, do_expand, start + 1, cur.i))
    return tuple(out)


def _assemble(
    text: str,
    filename: str,
    instructions: list[Instruction],
    directives: dict[str, str],
    escape: str,
    trailing: list[tuple[int, str]],
) -> Dockerfile:
    preamble = tuple(i for i in instructions if i.stage_index < 0)
    global_args: dict[str, str | None] = {}
    for ins in preamble:
        if ins.keyword == "ARG":
            for key, value in ins.pairs:
                global_args[key] = None if value is None else expand(value, global_args, escape)
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            stages.append(_stage(ins, len(stages), global_args, escape, filename))
    by_stage: dict[int, list[Instruction]] = {}
    for ins in instructions:
        if ins.stage_index >= 0 and ins.keyword != "FROM":
            by_stage.setdefault(ins.stage_index, []).append(ins)
    stages = [s.replace(instructions=tuple(by_stage.get(s.index, ()))) for s in stages]
    return Dockerfile(
        filename=filename,
        text=text,
        instructions=tuple(instructions),
        stages=tuple(stages),
        preamble=preamble,
        directives=directives,
        escape=escape,
        global_args=global_args,
        trailing_comments=tuple(c for _, c in trailing),
    )


def _stage(
    ins: Instruction, index: int, global_args: dict[str, str | None], escape: str, filename: str
) -> Stage:
    words = split_words(ins.args, escape)
    if not words:
        raise DockerfileSyntaxError("FROM requires an image", filename, ins.start_line)
    alias: str | None = None
    if len(words) >= 3 and words[1].lower() == "as":
        alias = unquote(words[2], escape)
    elif len(words) != 1:
        raise DockerfileSyntaxError(
            "FROM requires either one or three arguments (image [AS name])",
            filename,
            ins.start_line,
        )
    raw = words[0]
    platform = ins.flag("--platform")
    return Stage(
        index=index,
        base_image=expand(raw, global_args, escape, remove_quotes=True),
        base_image_raw=raw,
        alias=alias,
        platform=platform,
        from_instruction=ins,
        instructions=(),
    )


def parse_file(path: str) -> Dockerfile:
    """Read and parse a Dockerfile from disk (UTF-8, undecodable bytes replaced)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse(fh.read(), path)
