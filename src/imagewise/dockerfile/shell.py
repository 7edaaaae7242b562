"""RUN bodies as shell: the simple commands a script runs, with their flags and arguments.

``parse_shell(text) -> Script`` uses bashlex (a real bash parser) and walks lists (``&&``, ``||``,
``;``), pipelines, subshells, compound commands (``if``/``for``/``while``, ``{ }``), command
substitutions and the scripts given to ``sh -c``/``bash -c`` (marked ``nested``). When bashlex
cannot parse the text it falls back to a tolerant splitter on unquoted operators; it never raises.

Flag conventions (as hadolint's shell model): ``--name=value`` is the flag ``name``; ``-abc`` is the
flags ``a``, ``b`` and ``c``; anything else is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/bin/ash",
                    "/bin/dash", "/usr/bin/bash", "/usr/bin/env"})
_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for",
                       "case", "esac", "in", "!", "{", "}", "function", "select", "time"})
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: ``name`` and its ``args`` (quote-removed words after the name)."""

    name: str
    args: tuple[str, ...] = ()
    nested: bool = False

    @property
    def flags(self) -> frozenset[str]:
        out: set[str] = set()
        for a in self.args:
            out.update(_arg_flags(a))
        return frozenset(out)

    def without_flag_values(self, *names: str) -> Command:
        """Drop the argument that follows each of the flags ``names`` (``-t release``)."""
        wanted = {n.lstrip("-") for n in names}
        out: list[str] = []
        skip = False
        for a in self.args:
            if skip:
                skip = False
                if not a.startswith("-"):
                    continue
            out.append(a)
            if wanted & _arg_flags(a) and "=" not in a:
                skip = True
        return Command(self.name, tuple(out), self.nested)

    def has_flag(self, *names: str) -> bool:
        """True when any of ``names`` (``"y"``, ``"yes"``, ``"--yes"``, ``"-y"``) is given."""
        have = self.flags
        return any(n.lstrip("-") in have for n in names)

    def has_arg(self, *words: str) -> bool:
        return any(w in self.args for w in words)

    @property
    def args_no_flags(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if not a.startswith("-"))

    def flag_value(self, *names: str) -> str | None:
        """Value of ``--name=value``, ``--name value`` or ``-n value`` (first match)."""
        for i, a in enumerate(self.args):
            for n in names:
                dashed = ("--" if len(n.lstrip("-")) > 1 else "-") + n.lstrip("-")
                if a.startswith(dashed + "="):
                    return a[len(dashed) + 1 :]
                if a == dashed and i + 1 < len(self.args):
                    return self.args[i + 1]
        return None

    @property
    def subcommand(self) -> str | None:
        """First argument that is not a flag (``install`` in ``apt-get -y install x``)."""
        rest = self.args_no_flags
        return rest[0] if rest else None


def _arg_flags(arg: str) -> set[str]:
    if arg in ("-", "--") or not arg.startswith("-"):
        return set()
    if arg.startswith("--"):
        return {arg[2:].split("=", 1)[0]}
    return set(arg[1:])


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed shell script: every simple command in order, and whether a pipe is used."""

    text: str
    commands: tuple[Command, ...]
    has_pipe: bool
    parsed: bool  # True when bashlex parsed it; False when the tolerant splitter was used

    def find(self, *names: str) -> list[Command]:
        return [c for c in self.commands if c.name in names]

    def uses(self, *names: str) -> bool:
        return any(c.name in names for c in self.commands)


@lru_cache(maxsize=4096)
def parse_shell(text: str) -> Script:
    """Parse ``text`` as a POSIX/bash script. Never raises."""
    commands, has_pipe, ok = _parse(text, 0)
    return Script(text, tuple(commands), has_pipe, ok)


def script_from_argv(argv: tuple[str, ...]) -> Script:
    """The command of an exec-form RUN (``RUN ["apt-get", "install", "x"]``)."""
    if not argv:
        return Script("", (), False, True)
    out: list[Command] = []
    pipe = [False]
    _add(list(argv), out, pipe, 0)
    return Script(" ".join(argv), tuple(out), pipe[0], True)


class _ParseTimeout(Exception):
    pass


def _bounded(parse: Any, text: str, seconds: float = 2.0) -> Any:
    """Run bashlex with a deadline when that is safe (main thread, SIGALRM unused): bashlex has
    inputs it never returns on; then the tolerant splitter takes over."""
    import signal
    import threading

    if (threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
            or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0)
            or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None)):
        return parse(text)

    def expire(signum: int, frame: Any) -> None:
        raise _ParseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return parse(text)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _parse(text: str, depth: int) -> tuple[list[Command], bool, bool]:
    clean = text.replace("\\\r\n", " ").replace("\\\n", " ")
    try:
        import bashlex

        from imagewise.dockerfile.shellprep import prepare

        prepared = prepare(clean)
        nodes = _bounded(bashlex.parse, prepared)
        commands: list[Command] = []
        pipe = [False]
        for node in nodes:
            _walk(node, commands, pipe, depth, _Source(clean, prepared))
        return commands, pipe[0], True
    except Exception:  # noqa: BLE001 - bashlex raises many kinds; use the tolerant splitter
        cmds, pipe_flag = _fallback(clean, depth)
        return cmds, pipe_flag, False


@dataclass(frozen=True, slots=True)
class _Source:
    original: str
    prepared: str  # same length, see .shellprep


def _word(part: Any, src: _Source) -> str:
    """The word with POSIX quote removal from its source text (bashlex drops backslashes inside
    double quotes, which POSIX keeps unless they escape one of $ ` " \\)."""
    try:
        start, end = part.pos
        raw = src.original[start:end]
    except (AttributeError, TypeError, ValueError):
        return str(part.word)
    if not raw.strip():  # a word the preparation synthesized (":" for an empty case branch)
        raw = src.prepared[start:end]
    return unquote_shell(raw) if raw else str(part.word)


def unquote_shell(raw: str) -> str:
    out: list[str] = []
    quote = ""
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
        elif c == "\\" and i + 1 < n:
            nxt = raw[i + 1]
            if quote == '"' and nxt not in '$`"\\\n':
                out.append(c)
            if nxt != "\n":
                out.append(nxt)
            i += 2
            continue
        elif quote == '"':
            if c == '"':
                quote = ""
            else:
                out.append(c)
        elif c in "'\"":
            quote = c
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _walk(node: Any, out: list[Command], pipe: list[bool], depth: int, src: _Source) -> None:
    kind = getattr(node, "kind", "")
    if kind == "command":
        words: list[str] = []
        subs: list[Any] = []
        for part in node.parts:
            pk = getattr(part, "kind", "")
            if pk == "word" or (pk == "assignment" and words):
                words.append(_word(part, src))
            subs.extend(_substitutions(part))
        if words:
            _add(words, out, pipe, depth)
        for sub in subs:
            _walk(sub, out, pipe, depth, src)
        return
    if kind == "pipeline" and any(getattr(p, "kind", "") == "pipe" for p in node.parts):
        pipe[0] = True
    for attr in ("parts", "list"):
        children = getattr(node, attr, None)
        if isinstance(children, list):
            for child in children:
                _walk(child, out, pipe, depth, src)
    command = getattr(node, "command", None)
    if command is not None:
        _walk(command, out, pipe, depth, src)


def _substitutions(part: Any) -> Iterable[Any]:
    for sub in getattr(part, "parts", None) or ():
        if getattr(sub, "kind", "") in ("commandsubstitution", "processsubstitution"):
            yield sub.command
        else:
            yield from _substitutions(sub)


def _add(words: list[str], out: list[Command], pipe: list[bool], depth: int) -> None:
    cmd = Command(words[0], tuple(words[1:]), depth > 0)
    out.append(cmd)
    script = _inline_script(cmd)
    if script is not None and depth < 3:
        nested, nested_pipe, _ = _parse(script, depth + 1)
        out.extend(nested)
        pipe[0] = pipe[0] or nested_pipe


def _inline_script(cmd: Command) -> str | None:
    """The script of ``sh -c '...'`` (also ``-ec``, ``-xc``), else None."""
    if cmd.name.rsplit("/", 1)[-1] not in {s.rsplit("/", 1)[-1] for s in SHELLS} - {"env"}:
        return None
    for i, a in enumerate(cmd.args):
        if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
            return cmd.args[i + 1] if i + 1 < len(cmd.args) else None
    return None


def _fallback(text: str, depth: int) -> tuple[list[Command], bool]:
    segments, has_pipe = _split_segments(text)
    out: list[Command] = []
    pipe = [has_pipe]
    for seg in segments:
        words = [w for w in _tolerant_words(seg)]
        while words and (words[0] in _KEYWORDS or _ASSIGN.match(words[0])):
            if words[0] in ("for", "case", "select"):
                words = []
                break
            words = words[1:]
        if words:
            _add(words, out, pipe, depth)
    return out, pipe[0]


def _split_segments(text: str) -> tuple[list[str], bool]:
    segments: list[str] = []
    cur: list[str] = []
    quote = ""
    has_pipe = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < n:
                cur.append(text[i : i + 2])
                i += 2
                continue
            if c == quote:
                quote = ""
            cur.append(c)
        elif c == "\\" and i + 1 < n:
            cur.append(text[i : i + 2])
            i += 2
            continue
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c == "#" and (not cur or cur[-1].isspace()):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in ";&|\n(){}`" or (c == "$" and text.startswith("$(", i)):
            if c == "|" and not text.startswith("||", i) and (i == 0 or text[i - 1] != "|"):
                has_pipe = True
            if c == "$":
                i += 1
            segments.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    segments.append("".join(cur))
    return [s for s in segments if s.strip()], has_pipe


def _tolerant_words(segment: str) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(segment):
        c = segment[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(segment):
                cur.append(segment[i + 1])
                i += 1
            else:
                cur.append(c)
        elif c == "\\" and i + 1 < len(segment):
            cur.append(segment[i + 1])
            in_word = True
            i += 1
        elif c in "'\"":
            quote = c
            in_word = True
        elif c.isspace() or c in "<>":
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
