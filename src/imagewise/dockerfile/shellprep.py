"""Rewrite shell constructs bashlex cannot parse into equivalent-enough ones of the SAME length.

bashlex (the bash parser behind :mod:`.shell`) does not implement ``case``, arithmetic
``$(( ))``, ``[[ ]]``, and fails on ``&&``/``||`` inside ``$( )``. Official images use all of
them. :func:`prepare` keeps every character position, so word positions found in the prepared
text still index the original text (where words are read from):

* ``case W in P) cmds ;; ... esac`` becomes a ``{ cmds ; ... }`` group (patterns blanked);
* ``$(( expr ))`` becomes a placeholder parameter ``$_____``;
* ``&&``/``||`` inside ``$( )`` become ``; `` (only commands are extracted, not control flow);
* ``[[``/``]]`` become ``[ ``/``] ``;
* ``$`` and backticks inside single quotes (literal there) become ``_``: bashlex never returns
  on an assignment like ``x='a${b'``.
"""

from __future__ import annotations

import re

_CASE = re.compile(r"(?:(?<=^)|(?<=[\s;&|({]))case\s+\S+\s+in(?=\s)")
_ESAC = re.compile(r"(?:(?<=^)|(?<=[\s;&|]))esac(?=$|[\s;&|)}])")


def prepare(text: str) -> str:
    """Same-length rewrite of ``text`` that bashlex can parse more often."""
    chars = list(text)
    _rewrite_substitutions(text, chars)
    out = "".join(chars)
    for _ in range(50):  # innermost (last) case first; bounded against pathological input
        rewritten = _decase(out)
        if rewritten is None:
            break
        out = rewritten
    return out


def _skip_single(text: str, i: int) -> int:
    end = text.find("'", i + 1)
    return len(text) if end < 0 else end + 1


def _arith_end(text: str, i: int) -> int:
    """Index after the ``))`` closing the ``$((`` at ``i`` (or -1)."""
    depth = 0
    j = i + 1
    while j < len(text):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1


def _blank_arith(text: str, chars: list[str], i: int) -> int:
    """Turn ``$(( expr ))`` at ``i`` into the parameter word ``$____``; returns the next index."""
    end = _arith_end(text, i)
    if end < 0:
        return i + 3
    chars[i + 1:end] = ["_"] * (end - i - 1)
    return end


def _double_bracket(text: str, i: int) -> bool:
    """``[[`` opening or ``]]`` closing a bash test at ``i``."""
    if text.startswith("[[", i):
        return i == 0 or text[i - 1] in " \t\n;&|("
    if text.startswith("]]", i):
        return i + 2 == len(text) or text[i + 2] in " \t\n;&|)"
    return False


def _rewrite_substitutions(text: str, chars: list[str]) -> None:
    stack: list[str] = []  # "dq", "sub", "paren"
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        top = stack[-1] if stack else ""
        if c == "\\":
            i += 2
            continue
        if top == "dq":
            if c == '"':
                stack.pop()
            elif text.startswith("$((", i):
                i = _blank_arith(text, chars, i)
                continue
            elif text.startswith("$(", i):
                stack.append("sub")
                i += 2
                continue
            i += 1
            continue
        if c == "'":
            end = _skip_single(text, i)
            for k in range(i + 1, end - 1):
                if chars[k] in "$`":
                    chars[k] = "_"  # literal anyway; bashlex loops forever on '${' in a value
            i = end
            continue
        if c == '"':
            stack.append("dq")
        elif text.startswith("$((", i):
            i = _blank_arith(text, chars, i)
            continue
        elif text.startswith("$(", i):
            stack.append("sub")
            i += 2
            continue
        elif c == "(":
            stack.append("paren")
        elif c == ")" and stack and stack[-1] in ("sub", "paren"):
            stack.pop()
        elif text.startswith(("&&", "||"), i) and "sub" in stack:
            chars[i], chars[i + 1] = ";", " "
            i += 2
            continue
        elif _double_bracket(text, i):
            chars[i + 1] = " "
        i += 1


def _decase(text: str) -> str | None:
    """Rewrite the last ``case`` statement of ``text`` into a ``{ ...; }`` group."""
    starts = list(_CASE.finditer(text))
    if not starts:
        return None
    m = starts[-1]
    end_m = _ESAC.search(text, m.end())
    if end_m is None:
        return None
    chars = list(text)
    chars[m.start()] = "{"
    for k in range(m.start() + 1, m.end()):
        chars[k] = " "
    i = m.end()
    esac = end_m.start()
    body_seen = False
    while i < esac:
        # a branch: optional spaces, "(pattern)" or "pattern)", then commands up to ";;"
        while i < esac and text[i] in " \t\n":
            i += 1
        if i >= esac:
            break
        close = _pattern_end(text, i, esac)
        if close < 0:
            return None
        for k in range(i, close + 1):
            chars[k] = " "
        i = close + 1
        stop = text.find(";;", i, esac)
        body_end = esac if stop < 0 else stop
        if not text[i:body_end].strip():
            chars[i if i < body_end else close] = ":"
        body_seen = True
        if stop < 0:
            i = esac
            break
        ended = "".join(chars[i:stop]).rstrip().endswith((";", "&", "{"))
        chars[stop], chars[stop + 1] = (" ", " ") if ended else (";", " ")
        i = stop + 2
        if i < esac and text[i] in "&":  # ;;& (bash) -> drop the &
            chars[i] = " "
            i += 1
    tail = "".join(chars[m.end():esac]).rstrip()
    needs_sep = body_seen and not tail.endswith((";", "{"))
    chars[esac:esac + 4] = list(";}  " if needs_sep else "}   ")
    return "".join(chars)


def _pattern_end(text: str, i: int, limit: int) -> int:
    """Index of the ``)`` ending the case pattern starting at ``i`` (quotes respected)."""
    j = i + 1 if text[i] == "(" else i
    while j < limit:
        c = text[j]
        if c == "'":
            j = _skip_single(text, j)
            continue
        if c == '"':
            end = text.find('"', j + 1)
            j = limit if end < 0 else end + 1
            continue
        if c == "\\":
            j += 2
            continue
        if c == ")":
            return j
        j += 1
    return -1
