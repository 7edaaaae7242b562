"""Word splitting and quote removal the way BuildKit treats instruction arguments."""

from __future__ import annotations


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes inside the words (raw words)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i, n = 0, len(text)
    in_word = False
    while i < n:
        c = text[i]
        if c == escape and quote != "'" and i + 1 < n:
            cur.append(c + text[i + 1])
            in_word = True
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            cur.append(c)
        elif c in "'\"":
            quote = c
            cur.append(c)
            in_word = True
        elif c.isspace():
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words


def unquote(word: str, escape: str = "\\") -> str:
    """Remove quotes and escapes from one raw word without expanding variables."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        if c == escape and quote != "'" and i + 1 < n:
            nxt = word[i + 1]
            if quote == '"' and nxt not in ('"', escape, "$") or nxt == "$":
                out.append(c)
            out.append(nxt)
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                out.append(c)
        elif c in "'\"":
            quote = c
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_pairs(keyword: str, text: str, escape: str = "\\") -> tuple[tuple[str, str | None], ...]:
    """Key/value pairs of ENV, LABEL (``k=v ...`` or legacy ``k v``) and ARG (``name[=default]``)."""
    words = split_words(text, escape)
    if not words:
        return ()
    if keyword == "ARG":
        out: list[tuple[str, str | None]] = []
        for w in words:
            if "=" in w:
                k, v = w.split("=", 1)
                out.append((unquote(k, escape), unquote(v, escape)))
            else:
                out.append((unquote(w, escape), None))
        return tuple(out)
    if "=" not in words[0]:
        key = unquote(words[0], escape)
        rest = text.strip()[len(words[0]) :].strip()
        return ((key, unquote(rest, escape)),)
    pairs: list[tuple[str, str | None]] = []
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            pairs.append((unquote(k, escape), unquote(v, escape)))
        else:
            pairs.append((unquote(w, escape), ""))
    return tuple(pairs)
