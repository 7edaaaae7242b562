"""Declaring commands: decorators that describe a command's arguments, read by ``argparse``.

A command is a function whose parameters are its options; the decorators above it (read top to
bottom) say how each is spelled on the command line::

    @command("analyze")
    @argument("image")
    @option("--format", "fmt", choices=("table", "json"), default="table", show_default=True)
    @option("--verify", flag=True, help="...")
    def analyze_cmd(image: str, fmt: str, verify: bool) -> None:
        \"\"\"One line for ``imagewise --help``.

        More text for ``imagewise analyze --help``.\"\"\"

The parser is built only when the command runs (``Command.main``), and only the command asked
for is imported (``cli.main``). Why not click: importing click costs ~20 ms, a tenth of a whole
``imagewise analyze`` run, and ``argparse`` gives the same parsing, errors (exit status 2) and
``--help``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

PROG = "imagewise"


class Param:
    """One argument or option, as ``argparse.add_argument`` takes it."""

    __slots__ = ("dest", "envvar", "flags", "kwargs", "multiple", "negatable")

    def __init__(
        self,
        flags: Sequence[str],
        dest: str,
        kwargs: dict[str, Any],
        envvar: str | None = None,
        multiple: bool = False,
        negatable: bool = False,
    ) -> None:
        self.flags, self.dest, self.kwargs = tuple(flags), dest, kwargs
        self.envvar, self.multiple = envvar, multiple
        self.negatable = negatable  # --color/--no-color (argparse.BooleanOptionalAction)

    @property
    def is_option(self) -> bool:
        return bool(self.flags) and self.flags[0].startswith("-")


def _params(fn: Any) -> list[Param]:
    if not hasattr(fn, "__cli_params__"):
        fn.__cli_params__ = []
    return fn.__cli_params__  # type: ignore[no-any-return]


def argument(
    name: str,
    *,
    nargs: str | None = None,
    metavar: str | None = None,
    type: Callable[[str], Any] | None = None,
    default: Any = None,
    help: str | None = None,
) -> Callable[[Any], Any]:
    """A positional argument; ``nargs="*"``/``"+"`` collects a tuple, ``"?"`` takes ``default``."""
    kwargs: dict[str, Any] = {
        "metavar": metavar or name.upper(),
        "help": help.replace("%", "%%") if help else help,
    }
    if nargs is not None:
        kwargs["nargs"] = nargs
    if type is not None:
        kwargs["type"] = type
    if nargs == "?":
        kwargs["default"] = default

    def deco(fn: F) -> F:
        _params(fn).insert(0, Param([name], name, kwargs))
        return fn

    return deco


def option(
    *decls: str,
    flag: bool = False,
    choices: Sequence[str] | None = None,
    default: Any = None,
    multiple: bool = False,
    metavar: str | None = None,
    help: str | None = None,
    type: Callable[[str], Any] | None = None,
    show_default: bool = False,
    envvar: str | None = None,
) -> Callable[[F], F]:
    """An option: ``("-o", "--output")``, with an optional bare name for the parameter
    (``("--format", "fmt")``). ``"--color/--no-color"`` is an on/off pair (default ``None``).
    ``flag``: takes no value; ``multiple``: repeatable, collected in a tuple; ``envvar``: read
    from the environment when not given."""
    names = [d for d in decls if d.startswith("-")]
    bare = [d for d in decls if not d.startswith("-")]
    kwargs: dict[str, Any] = {}
    negatable = len(names) == 1 and "/" in names[0]
    if negatable:  # --color/--no-color: argparse.BooleanOptionalAction, set in Command.parser
        names = [names[0].split("/", 1)[0]]
    elif flag:
        kwargs["action"] = "store_true"
    elif multiple:
        kwargs["action"] = "append"
    longest = max(names, key=len)
    dest = bare[0] if bare else longest.lstrip("-").replace("-", "_")
    if choices is not None:
        kwargs["choices"] = tuple(choices)
    if metavar is None and type is not None and not flag:
        metavar = getattr(type, "metavar", None)  # FILE, DIR, PATH, N from our argument types
    if metavar is not None:
        kwargs["metavar"] = metavar
    if type is not None:
        kwargs["type"] = type
    if show_default and default is not None:
        help = f"{help + ' ' if help else ''}[default: {default}]"
    kwargs["help"] = help.replace("%", "%%") if help else help  # argparse %-formats help
    kwargs["default"] = default if not flag else bool(default)

    def deco(fn: F) -> F:
        _params(fn).insert(0, Param(names, dest, kwargs, envvar, multiple, negatable))
        return fn

    return deco


def _doc(fn: Any) -> tuple[str, str]:
    """(summary, description) from a docstring: descriptions are printed as written; the
    summary is the first paragraph on one line."""
    lines = (fn.__doc__ or "").expandtabs().splitlines()
    if not lines:
        return "", ""
    rest = lines[1:]
    indent = min((len(x) - len(x.lstrip()) for x in rest if x.strip()), default=0)
    body = [lines[0].strip()] + [x[indent:].rstrip() for x in rest]
    text = "\n".join(body).strip()
    summary = " ".join(text.split("\n\n", 1)[0].split())
    if len(summary) > 90:
        summary = summary[:87].rsplit(" ", 1)[0] + "..."
    return summary, text


def _formatter(prog: str) -> Any:
    """Help as written in the docstrings, at most 100 columns wide. The width is found here with
    ``os`` because argparse's own default imports ``shutil`` (and with it bz2 and lzma) for every
    parser it builds, help or not."""
    import argparse

    try:
        columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(2).columns
    except (OSError, ValueError):
        columns = 80
    return argparse.RawDescriptionHelpFormatter(prog, width=min(columns, 100) - 2)


def _parser_class() -> Any:
    """argparse's parser, whose error for an unknown option suggests the closest known ones
    (``--form`` -> ``--format``), as a mistyped command already does."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            prefix = "unrecognized arguments: "
            if message.startswith(prefix):
                import difflib

                known = [s for a in self._actions for s in a.option_strings]
                hints = []
                for word in message[len(prefix) :].split():
                    if word.startswith("-"):
                        close = difflib.get_close_matches(word.split("=", 1)[0], known, n=2)
                        if close:
                            hints.append(f"{word}: did you mean {' or '.join(close)}?")
                if hints:
                    message += " (" + "; ".join(hints) + ")"
            super().error(message)

    return Parser


class Command:
    """A declared command: ``main(argv)`` parses, calls the function, and returns its status."""

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.fn = fn
        self.params: list[Param] = list(getattr(fn, "__cli_params__", []))
        self.summary, self.description = _doc(fn)
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def parser(self, prog: str) -> Any:
        import argparse

        # no abbreviated long options: a script using one would break when a longer option
        # with the same start is added
        parser = _parser_class()(
            prog=prog, description=self.description, formatter_class=_formatter, allow_abbrev=False
        )
        for p in self.params:
            kwargs = dict(p.kwargs)
            if p.is_option:
                if p.envvar and os.environ.get(p.envvar):
                    kwargs["default"] = os.environ[p.envvar]
                if p.negatable:
                    kwargs["action"] = argparse.BooleanOptionalAction
                parser.add_argument(*p.flags, dest=p.dest, **kwargs)
            else:
                parser.add_argument(p.dest, **kwargs)
        return parser

    def main(self, argv: Sequence[str], prog: str = PROG) -> int:
        args = list(argv)
        ns = _plain_parse(self.params, args)
        if ns is None:  # help, an error, or a spelling the plain reader leaves to argparse
            ns = vars(self.parser(prog).parse_args(args))
        for p in self.params:
            value = ns.get(p.dest)
            if p.multiple or p.kwargs.get("nargs") in ("*", "+"):
                ns[p.dest] = tuple(value or ())
        result = self.fn(**ns)
        return result if isinstance(result, int) else 0


def _plain_parse(params: Sequence[Param], args: list[str]) -> dict[str, Any] | None:
    """What ``argparse`` makes of a plain command line, without importing it: argparse (with
    the gettext and locale it pulls in) and building the parser cost more than linting a small
    Dockerfile. Plain: every option spelled in full (``-f json``, ``--format json``,
    ``--format=json``), values that do not start with ``-`` (``-`` itself is one), the
    positionals side by side, and every value accepted by its type and choices. Anything else
    (``--help``, ``--``, ``-fjson``, an unknown option, a bad value, positionals on both sides of
    an option) returns None: argparse parses it then, with its own messages. The result is
    argparse's namespace as a dict (tests/test_cli_args.py holds the two side by side)."""
    by_flag: dict[str, tuple[Param, Any]] = {}
    positionals: list[Param] = []
    for p in params:
        if not p.is_option:
            positionals.append(p)
            continue
        for f in p.flags:
            by_flag[f] = (p, True if p.negatable else None)
            if p.negatable and f.startswith("--"):
                by_flag["--no-" + f[2:]] = (p, False)
    ns: dict[str, Any] = {}
    given: set[str] = set()
    run: list[str] = []
    run_ended = False
    i, n = 0, len(args)
    while i < n:
        tok = args[i]
        i += 1
        if tok[:1] != "-" or tok == "-":
            if run_ended:
                return None  # argparse: "unrecognized arguments"
            run.append(tok)
            continue
        if run:
            run_ended = True
        value: str | None = None
        found = by_flag.get(tok)
        if found is None and tok.startswith("--") and "=" in tok:
            name, value = tok.split("=", 1)
            found = by_flag.get(name)
        if found is None:
            return None
        p, switch = found
        if p.negatable or p.kwargs.get("action") == "store_true":
            if value is not None:
                return None
            ns[p.dest] = switch if p.negatable else True
            given.add(p.dest)
            continue
        if value is None:
            if i >= n or (args[i][:1] == "-" and args[i] != "-"):
                return None  # argparse: "expected one argument"
            value = args[i]
            i += 1
        converted = _plain_value(p, value)
        if converted is _BAD:
            return None
        if p.kwargs.get("action") == "append":
            if p.dest not in given:
                if p.kwargs.get("default") is not None:
                    return None
                ns[p.dest] = []
            ns[p.dest].append(converted)
        else:
            ns[p.dest] = converted
        given.add(p.dest)
    # the positionals, as argparse's greedy pattern match deals them out of one run
    rest = len(run)
    for k, p in enumerate(positionals):
        nargs = p.kwargs.get("nargs")
        least = sum(0 if q.kwargs.get("nargs") in ("?", "*") else 1 for q in positionals[k + 1 :])
        avail = rest - least  # what this one may take and still leave the later ones theirs
        if avail < (1 if nargs in (None, "+") else 0):
            return None  # argparse: "the following arguments are required"
        take = avail if nargs in ("*", "+") else min(1, avail)
        words, run, rest = run[:take], run[take:], rest - take
        if nargs in ("*", "+"):
            values = [_plain_value(p, w) for w in words]
            if _BAD in values or (not values and p.kwargs.get("choices") is not None):
                return None
            ns[p.dest] = (
                values if values or p.kwargs.get("default") is None else p.kwargs["default"]
            )
        elif words:
            ns[p.dest] = _plain_value(p, words[0])
            if ns[p.dest] is _BAD:
                return None
        else:  # "?" left empty: its default, through type and choices when a string
            default = p.kwargs.get("default")
            ns[p.dest] = _plain_value(p, default) if isinstance(default, str) else default
            if ns[p.dest] is _BAD:
                return None
    if run:
        return None  # argparse: "unrecognized arguments"
    for p in params:
        if p.is_option and p.dest not in given:
            default = p.kwargs.get("default")
            if p.envvar and os.environ.get(p.envvar):
                default = os.environ[p.envvar]
            ns[p.dest] = _plain_default(p, default)
            if ns[p.dest] is _BAD:
                return None
    return ns


_BAD = object()


def _plain_value(p: Param, text: str) -> Any:
    """A command-line word through the param's type and choices, as argparse checks it
    (``_BAD`` when argparse would report an error)."""
    convert = p.kwargs.get("type")
    try:
        value = convert(text) if convert is not None else text
    except Exception:  # noqa: BLE001 - argparse turns these into its error message
        return _BAD
    choices = p.kwargs.get("choices")
    if choices is not None and value not in choices:
        return _BAD
    return value


def _plain_default(p: Param, default: Any) -> Any:
    """argparse converts a string default with the param's type (not checked against choices)."""
    convert = p.kwargs.get("type")
    if not isinstance(default, str) or convert is None:
        return default
    try:
        return convert(default)
    except Exception:  # noqa: BLE001 - argparse reports it
        return _BAD


class Group:
    """A command with subcommands (``imagewise db update``)."""

    def __init__(self, name: str, fn: Callable[..., Any], default: str | None = None) -> None:
        self.name = name
        self.summary, self.description = _doc(fn)
        self.commands: dict[str, Command] = {}
        self.__doc__ = fn.__doc__
        #: the subcommand that gets the arguments when the first is no subcommand's name
        #: (``imagewise tags REPO`` is ``imagewise tags list REPO``)
        self.default = default

    def command(self, name: str) -> Callable[[Callable[..., Any]], Command]:
        def deco(fn: Callable[..., Any]) -> Command:
            cmd = Command(name, fn)
            self.commands[name] = cmd
            return cmd

        return deco

    def help(self, prog: str) -> str:
        width = max((len(n) for n in self.commands), default=0)
        rows = [f"  {n:<{width}}  {c.summary}" for n, c in sorted(self.commands.items())]
        return (
            f"usage: {prog} COMMAND [ARGS]...\n\n{self.description}\n\n"
            "commands:\n" + "\n".join(rows) + "\n"
        )

    def main(self, argv: Sequence[str], prog: str = PROG) -> int:
        if not argv or argv[0] in ("-h", "--help"):
            sys.stdout.write(self.help(prog))
            return 0 if argv else 2
        cmd = self.commands.get(argv[0])
        if cmd is None and self.default is not None:
            return self.commands[self.default].main(argv, f"{prog} {self.default}")
        if cmd is None:
            import difflib

            close = difflib.get_close_matches(argv[0], list(self.commands), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            sys.stderr.write(
                f"{self.help(prog)}\n{prog}: error: no such command {argv[0]!r}{hint}\n"
            )
            return 2
        return cmd.main(argv[1:], f"{prog} {argv[0]}")


def command(name: str) -> Callable[[Callable[..., Any]], Command]:
    def deco(fn: Callable[..., Any]) -> Command:
        return Command(name, fn)

    return deco


def group(name: str, default: str | None = None) -> Callable[[Callable[..., Any]], Group]:
    def deco(fn: Callable[..., Any]) -> Group:
        return Group(name, fn, default)

    return deco


def echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    """Write a line to standard output (``err``: standard error)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    if err:
        stream.flush()


def path_type(
    exists: bool = False, dir_okay: bool = True, file_okay: bool = True, as_path: bool = False
) -> Callable[[str], Any]:
    """An argument type for paths: checks what is asked for, gives ``str`` or ``Path``."""

    def convert(text: str) -> Any:
        if exists and not os.path.exists(text):
            raise _type_error(f"path {text!r} does not exist")
        if not dir_okay and os.path.isdir(text):
            raise _type_error(f"{text!r} is a directory")
        if not file_okay and os.path.exists(text) and not os.path.isdir(text):
            raise _type_error(f"{text!r} is not a directory")
        if as_path:
            from pathlib import Path

            return Path(text)
        return text

    convert.__name__ = "directory" if not file_okay else "path"
    convert.metavar = "DIR" if not file_okay else "FILE" if not dir_okay else "PATH"  # type: ignore[attr-defined]
    return convert


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argument type for integers within ``[low, high]``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _type_error(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low if low is not None else ''}..{high if high is not None else ''}"
            raise _type_error(f"{value} is not in the range {span}")
        return value

    convert.__name__ = "integer"
    convert.metavar = "N"  # type: ignore[attr-defined]
    return convert


def _type_error(message: str) -> Exception:
    """argparse's error for a bad value (argparse imported only then: a good value is read
    without it)."""
    import argparse

    return argparse.ArgumentTypeError(message)
