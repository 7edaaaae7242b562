"""RUN bodies as shell: the simple commands a script runs, with their flags and arguments.

``parse_shell(text) -> Script`` parses with tree-sitter's bash grammar (an error-tolerant parser
in C: linear time, no input makes it hang, safe in any thread) and walks lists (``&&``, ``||``,
``;``), pipelines, subshells, compound commands (``if``/``for``/``while``/``case``, ``{ }``),
command and process substitutions and the scripts given to ``sh -c``/``bash -c`` (marked
``nested``). A script with a syntax error still yields the commands the parser recovered
(``Script.parsed`` is then False); it never raises. tree-sitter is imported at the first RUN
that needs analysis, not when this module is.

Flag conventions (as hadolint's shell model): ``--name=value`` is the flag ``name``; ``-abc`` is the
flags ``a``, ``b`` and ``c``; anything else is an argument.
"""

from __future__ import annotations

import _thread
import re
from functools import lru_cache

from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "ash",
        "dash",
        "zsh",
        "ksh",
        "/bin/sh",
        "/bin/bash",
        "/bin/ash",
        "/bin/dash",
        "/usr/bin/bash",
        "/usr/bin/env",
    }
)
_SHELL_NAMES = frozenset(s.rsplit("/", 1)[-1] for s in SHELLS) - {"env"}
#: scripts given to ``sh -c`` are analysed down to this depth
_MAX_NESTING = 3


class Command(Record):
    """One simple command: ``name`` and its ``args`` (quote-removed words after the name)."""

    __slots__ = ("name", "args", "nested")  # noqa: RUF023
    name: str
    args: tuple[str, ...]
    nested: bool

    def __init__(self, name: str, args: tuple[str, ...] = (), nested: bool = False) -> None:
        self.name = name
        self.args = args
        self.nested = nested

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


class Script(Record):
    """A parsed shell script: every simple command in order, and whether a pipe is used."""

    __slots__ = ("text", "commands", "has_pipe", "parsed")  # noqa: RUF023
    text: str
    commands: tuple[Command, ...]
    has_pipe: bool
    parsed: bool  # False when the script has a syntax error (commands are what was recovered)

    def __init__(
        self, text: str, commands: tuple[Command, ...], has_pipe: bool, parsed: bool
    ) -> None:
        self.text = text
        self.commands = commands
        self.has_pipe = has_pipe
        self.parsed = parsed

    def find(self, *names: str) -> list[Command]:
        return [c for c in self.commands if c.name in names]

    def uses(self, *names: str) -> bool:
        return any(c.name in names for c in self.commands)


@lru_cache(maxsize=4096)
def parse_shell(text: str) -> Script:
    """Parse ``text`` as a POSIX/bash script. Never raises."""
    out: list[Command] = []
    has_pipe, ok = _parse(text, 0, out)
    return Script(text, tuple(out), has_pipe, ok)


def script_from_argv(argv: tuple[str, ...]) -> Script:
    """The command of an exec-form RUN (``RUN ["apt-get", "install", "x"]``)."""
    if not argv:
        return Script("", (), False, True)
    out: list[Command] = []
    pipe = _add(list(argv), out, 0)
    return Script(" ".join(argv), tuple(out), pipe, True)


# -- tree-sitter ------------------------------------------------------------------------------

_local = _thread._local()  # threading.local: a tree-sitter Parser is not shared by threads
_language: list[Any] = []


def _parser() -> Any:
    parser = getattr(_local, "parser", None)
    if parser is None:
        tree_sitter = _tree_sitter()
        if not _language:
            _language.append(tree_sitter.Language(_bash_grammar()))
        parser = _local.parser = tree_sitter.Parser(_language[0])
    return parser


_LOAD_LOCK = _thread.allocate_lock()


def _tree_sitter() -> Any:
    """tree-sitter's extension module (``Parser``, ``Language``): the package's ``__init__``
    imports ``typing`` for a Protocol we never use (with ``contextlib`` and ``warnings``, the
    largest import left in a lint run)."""
    module = _extension("tree_sitter")
    if module is None:  # laid out otherwise: the ordinary import
        import tree_sitter

        return tree_sitter
    return module


def _bash_grammar() -> Any:
    """tree-sitter-bash's compiled grammar (a language pointer), read from the package's
    extension module directly: the package's ``__init__`` imports ``importlib.resources`` for
    highlight queries we never use, which cost more than the rest of a lint run's imports."""
    module = _extension("tree_sitter_bash")
    if module is None:  # laid out otherwise: the ordinary import
        import tree_sitter_bash

        return tree_sitter_bash.language()
    return module.language()


def _extension(package: str) -> Any:
    """``package._binding``, the package's compiled extension module, loaded without running
    the package's ``__init__``; None when the package is laid out otherwise (or found by
    another finder than the path's). The module is registered under its own name: a later
    ``import package`` takes this very module."""
    import sys
    from importlib.machinery import ExtensionFileLoader, PathFinder

    name = package + "._binding"
    with _LOAD_LOCK:
        module = sys.modules.get(name)
        if module is not None:
            return module
        outer = PathFinder.find_spec(package)
        where = outer.submodule_search_locations if outer is not None else None
        spec = PathFinder.find_spec(name, where) if where else None
        if spec is None or not isinstance(spec.loader, ExtensionFileLoader):
            return None
        module = spec.loader.create_module(spec)
        # what importlib.util.module_from_spec adds (importlib.util imports contextlib)
        module.__spec__, module.__loader__, module.__package__ = spec, spec.loader, package
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module


def _parse(text: str, depth: int, out: list[Command]) -> tuple[bool, bool]:
    """Append the commands of ``text`` to ``out``; returns (has a pipe, parsed without error)."""
    clean = text.replace("\\\r\n", " ").replace("\\\n", " ")
    if "\\ " in clean or "\\\t" in clean:
        clean = _quote_escaped_blanks(clean)
    # the parser sees ASCII only: every other character becomes the word character "a" (bash
    # splits words on ASCII blanks and operators alone), so byte offsets are character offsets
    # into ``clean`` and words are read from there. tree-sitter-bash 0.25 reads out of bounds
    # (SIGSEGV on Linux) on a 4-byte UTF-8 character after "{": tree-sitter-bash issue 337
    ascii = clean if clean.isascii() else _NON_ASCII.sub("a", clean)
    root = _parser().parse(ascii.encode("ascii")).root_node
    has_pipe = _walk(root, clean, depth, out)
    return has_pipe, not root.has_error


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _quote_escaped_blanks(text: str) -> str:
    """``\\ `` starting a word is the word " " to bash; the grammar takes it for a blank."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                out.append(text[i : i + 2])
                i += 2
                continue
        elif c in "'\"":
            quote = c
        elif c == "\\" and i + 1 < n:
            if text[i + 1] in " \t" and (i == 0 or text[i - 1] in " \t\n;&|()"):
                out.append(f"'{text[i + 1]}'")
            else:
                out.append(text[i : i + 2])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


#: nodes whose words are no commands and hold no command substitution worth a visit
_SKIP = frozenset(
    {
        "comment",
        "heredoc_content",
        "heredoc_start",
        "heredoc_end",
        "file_descriptor",
        "variable_name",
        "test_operator",
        "regex",
        "extglob_pattern",
    }
)
_DECLARATIONS = frozenset({"declaration_command", "unset_command"})


def _walk(root: Any, source: str, depth: int, out: list[Command]) -> bool:
    """Every simple command under ``root`` in source order (iterative: nesting depth is the
    input's to choose). Returns whether a pipeline with ``|``/``|&`` was seen."""
    has_pipe = False
    extras: dict[tuple[int, int], list[Any]] = {}  # command span -> words misread as redirects
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind == "command":
            words = _command_words(node, source, extras.get((node.start_byte, node.end_byte), ()))
            if words:
                has_pipe = _add(words, out, depth) or has_pipe
        elif kind in _DECLARATIONS:  # export/declare/local/readonly/typeset/unset A=1 ...
            parts = _words([c for c in node.children if c.is_named], source)
            name = node.children[0].type if node.children else ""
            out.append(Command(name, tuple(parts), depth > 0))
        elif kind == "test_command":  # `[ -f x ]` (the command `[`) and `[[ ... ]]`
            words = _test_words(node, source)
            if words:
                out.append(Command(words[0], tuple(words[1:]), depth > 0))
        elif kind == "redirected_statement":
            # `cmd >file arg`: the grammar reads `arg` as a second destination of the redirect
            # (bash passes it to the command); `a && b >&2 arg` even binds the redirect to the
            # whole list: the words go to the command the redirect follows
            target = _last_command(node.child_by_field_name("body"))
            if target is not None:
                extra = [
                    d
                    for i, c in enumerate(node.children)
                    if node.field_name_for_child(i) == "redirect" and c.type == "file_redirect"
                    for d in _destinations(c)[1:]
                ]
                if extra:
                    key = (target.start_byte, target.end_byte)
                    extras[key] = [*extras.get(key, ()), *extra]
        elif kind == "pipeline":
            if any(c.type in ("|", "|&") for c in node.children):
                has_pipe = True
        elif kind in _SKIP:
            continue
        stack.extend(reversed(node.children))
    return has_pipe


def _last_command(node: Any) -> Any:
    while node is not None and node.type in ("list", "pipeline", "negated_command"):
        named = [c for c in node.children if c.is_named and c.type != "comment"]
        node = named[-1] if named else None
    return node if node is not None and node.type == "command" else None


def _command_words(node: Any, source: str, extra: Any) -> list[str]:
    parts: list[Any] = []
    for child in node.children:
        kind = child.type
        if kind == "command_name" or (
            parts and kind not in ("file_redirect", "herestring_redirect", "comment")
        ):
            parts.append(child)
        elif kind == "file_redirect" and parts:
            parts.extend(_destinations(child)[1:])
    words = _words([*parts, *extra], source)
    if words and words[0] == "time":  # the `time` keyword before a pipeline
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[1:]
        words = rest
    return words


def _words(nodes: list[Any], source: str) -> list[str]:
    """Quote-removed words of ``nodes``; nodes that touch form one word (the grammar splits
    ``a/b-$V/c`` after the ``$V``: bash separates words by blanks only)."""
    out: list[str] = []
    end = -1
    for n in nodes:
        text = _text(n, source)
        if n.start_byte == end and out:
            out[-1] += text
        else:
            out.append(text)
        end = n.end_byte
    return [_unquote(w) for w in out]


def _test_words(node: Any, source: str) -> list[str]:
    words: list[Any] = []
    todo = [node]
    while todo:
        n = todo.pop()
        if n is node or n.type.endswith("_expression"):
            todo.extend(reversed(n.children))
        else:
            words.append(n)
    return _words(words, source)


def _destinations(redirect: Any) -> list[Any]:
    return [
        c
        for i, c in enumerate(redirect.children)
        if redirect.field_name_for_child(i) == "destination"
    ]


def _text(node: Any, source: str) -> str:
    return source[node.start_byte : node.end_byte]


def _add(words: list[str], out: list[Command], depth: int) -> bool:
    """Append the command ``words`` (and what its ``sh -c`` script runs); True if that script
    uses a pipe."""
    cmd = Command(words[0], tuple(words[1:]), depth > 0)
    out.append(cmd)
    script = _inline_script(cmd)
    if script is not None and depth < _MAX_NESTING:
        return _parse(script, depth + 1, out)[0]
    return False


def _inline_script(cmd: Command) -> str | None:
    """The script of ``sh -c '...'`` (also ``-ec``, ``-xc``), else None."""
    if cmd.name.rsplit("/", 1)[-1] not in _SHELL_NAMES:
        return None
    for i, a in enumerate(cmd.args):
        if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
            return cmd.args[i + 1] if i + 1 < len(cmd.args) else None
    return None


def unquote_shell(raw: str) -> str:
    """POSIX quote removal of one word (backslashes inside double quotes stay unless they escape
    one of ``$ ` " \\``); parameters and substitutions are kept as written."""
    if "'" not in raw and '"' not in raw and "\\" not in raw:
        return raw
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


_unquote = unquote_shell
