"""Variable expansion as BuildKit's shell lexer does it for Dockerfile instructions.

``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}``, ``${VAR+alt}``,
``${VAR:?msg}``, ``${VAR#pat}``/``##``/``%``/``%%`` and ``${VAR/pat/repl}``. Single quotes keep
their content literal, the escape character (``\\`` or a backtick) escapes the next character.
Unset variables expand to the empty string. ``remove_quotes`` also performs quote removal, which
BuildKit does for FROM, COPY, WORKDIR, USER, ENV values and the like.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def expand(
    text: str, env: Mapping[str, str | None], escape: str = "\\", remove_quotes: bool = False
) -> str:
    """Expand ``$VAR`` forms in ``text`` with ``env``; never raises on odd input."""
    out: list[str] = []
    i, n = 0, len(text)
    quote = ""
    while i < n:
        c = text[i]
        if c == escape and quote != "'":
            if i + 1 < n:
                nxt = text[i + 1]
                if remove_quotes or nxt == "$":
                    out.append(nxt)
                else:
                    out.append(c + nxt)
                i += 2
            else:
                out.append(c)
                i += 1
            continue
        if c in "'\"" and (not quote or quote == c):
            quote = "" if quote else c
            if not remove_quotes:
                out.append(c)
            i += 1
            continue
        if c == "$" and quote != "'":
            value, i = _dollar(text, i, env, escape)
            out.append(value)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _lookup(env: Mapping[str, str | None], name: str) -> str | None:
    return env.get(name)


def _dollar(text: str, i: int, env: Mapping[str, str | None], escape: str) -> tuple[str, int]:
    """Expand the ``$`` form starting at ``text[i]``; returns (value, next index)."""
    n = len(text)
    if i + 1 >= n:
        return "$", i + 1
    nxt = text[i + 1]
    if nxt != "{":
        m = _NAME.match(text, i + 1)
        if not m:
            if nxt.isdigit() or nxt in "@*#?$!-":
                return "", i + 2
            return "$", i + 1
        return _lookup(env, m.group()) or "", m.end()
    end = _matching_brace(text, i + 2)
    if end < 0:
        return text[i:], n
    inner = text[i + 2 : end]
    return _brace(inner, env, escape), end + 1


def _matching_brace(text: str, start: int) -> int:
    depth = 1
    j = start
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _brace(inner: str, env: Mapping[str, str | None], escape: str) -> str:
    if inner.startswith("#"):
        return str(len(_lookup(env, inner[1:]) or ""))
    m = _NAME.match(inner)
    if not m:
        return ""
    name, rest = m.group(), inner[m.end() :]
    value = _lookup(env, name)
    if not rest:
        return value or ""
    for op in (":-", ":+", ":?", ":=", "-", "+", "?", "="):
        if rest.startswith(op):
            word = expand(rest[len(op) :], env, escape)
            is_set = value is not None and (value != "" or ":" not in op)
            if op in (":-", "-", ":=", "="):
                return value or "" if is_set else word
            if op in (":+", "+"):
                return word if is_set else ""
            return value or ""
    if rest.startswith(("##", "#", "%%", "%")):
        op = rest[:2] if rest[:2] in ("##", "%%") else rest[0]
        pattern = expand(rest[len(op) :], env, escape)
        return _trim(value or "", op, pattern)
    if rest.startswith("/"):
        parts = rest[1:].split("/", 1)
        pat = expand(parts[0], env, escape)
        repl = expand(parts[1], env, escape) if len(parts) > 1 else ""
        return (value or "").replace(pat, repl, 1) if pat else value or ""
    return value or ""


def _trim(value: str, op: str, pattern: str) -> str:
    sizes = range(len(value) + 1)
    if op in ("#", "##"):
        order = sizes if op == "#" else reversed(sizes)
        for k in order:
            if fnmatch.fnmatchcase(value[:k], pattern):
                return value[k:]
        return value
    order = reversed(sizes) if op == "%" else sizes
    for k in order:
        if fnmatch.fnmatchcase(value[k:], pattern):
            return value[:k]
    return value
