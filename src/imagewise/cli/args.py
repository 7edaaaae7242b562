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
from typing import Any, TypeVar

PROG = "imagewise"

F = TypeVar("F", bound=Callable[..., Any])


class Param:
    """One argument or option, as ``argparse.add_argument`` takes it."""

    __slots__ = ("dest", "envvar", "flags", "kwargs", "multiple")

    def __init__(self, flags: Sequence[str], dest: str, kwargs: dict[str, Any],
                 envvar: str | None = None, multiple: bool = False) -> None:
        self.flags, self.dest, self.kwargs = tuple(flags), dest, kwargs
        self.envvar, self.multiple = envvar, multiple

    @property
    def is_option(self) -> bool:
        return bool(self.flags) and self.flags[0].startswith("-")


def _params(fn: Any) -> list[Param]:
    if not hasattr(fn, "__cli_params__"):
        fn.__cli_params__ = []
    return fn.__cli_params__  # type: ignore[no-any-return]


def argument(name: str, *, nargs: str | None = None, metavar: str | None = None,
             type: Callable[[str], Any] | None = None,
             default: Any = None, help: str | None = None,
             ) -> Callable[[Any], Any]:
    """A positional argument; ``nargs="*"``/``"+"`` collects a tuple, ``"?"`` takes ``default``."""
    kwargs: dict[str, Any] = {"metavar": metavar or name.upper(),
                              "help": help.replace("%", "%%") if help else help}
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


def option(*decls: str, flag: bool = False, choices: Sequence[str] | None = None,
           default: Any = None, multiple: bool = False, metavar: str | None = None,
           help: str | None = None, type: Callable[[str], Any] | None = None,
           show_default: bool = False, envvar: str | None = None) -> Callable[[F], F]:
    """An option: ``("-o", "--output")``, with an optional bare name for the parameter
    (``("--format", "fmt")``). ``"--color/--no-color"`` is an on/off pair (default ``None``).
    ``flag``: takes no value; ``multiple``: repeatable, collected in a tuple; ``envvar``: read
    from the environment when not given."""
    names = [d for d in decls if d.startswith("-")]
    bare = [d for d in decls if not d.startswith("-")]
    kwargs: dict[str, Any] = {}
    if len(names) == 1 and "/" in names[0]:  # --color/--no-color
        import argparse

        names = [names[0].split("/", 1)[0]]
        kwargs["action"] = argparse.BooleanOptionalAction
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
        _params(fn).insert(0, Param(names, dest, kwargs, envvar, multiple))
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
                for word in message[len(prefix):].split():
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
        parser = _parser_class()(prog=prog, description=self.description,
                                 formatter_class=_formatter, allow_abbrev=False)
        for p in self.params:
            kwargs = dict(p.kwargs)
            if p.is_option:
                if p.envvar and os.environ.get(p.envvar):
                    kwargs["default"] = os.environ[p.envvar]
                parser.add_argument(*p.flags, dest=p.dest, **kwargs)
            else:
                parser.add_argument(p.dest, **kwargs)
        return parser

    def main(self, argv: Sequence[str], prog: str = PROG) -> int:
        ns = vars(self.parser(prog).parse_args(list(argv)))
        for p in self.params:
            value = ns.get(p.dest)
            if p.multiple or p.kwargs.get("nargs") in ("*", "+"):
                ns[p.dest] = tuple(value or ())
        result = self.fn(**ns)
        return result if isinstance(result, int) else 0


class Group:
    """A command with subcommands (``imagewise db update``)."""

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.summary, self.description = _doc(fn)
        self.commands: dict[str, Command] = {}
        self.__doc__ = fn.__doc__

    def command(self, name: str) -> Callable[[Callable[..., Any]], Command]:
        def deco(fn: Callable[..., Any]) -> Command:
            cmd = Command(name, fn)
            self.commands[name] = cmd
            return cmd

        return deco

    def help(self, prog: str) -> str:
        width = max((len(n) for n in self.commands), default=0)
        rows = [f"  {n:<{width}}  {c.summary}" for n, c in sorted(self.commands.items())]
        return (f"usage: {prog} COMMAND [ARGS]...\n\n{self.description}\n\n"
                "commands:\n" + "\n".join(rows) + "\n")

    def main(self, argv: Sequence[str], prog: str = PROG) -> int:
        if not argv or argv[0] in ("-h", "--help"):
            sys.stdout.write(self.help(prog))
            return 0 if argv else 2
        cmd = self.commands.get(argv[0])
        if cmd is None:
            import difflib

            close = difflib.get_close_matches(argv[0], list(self.commands), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            sys.stderr.write(f"{self.help(prog)}\n{prog}: error: no such command "
                             f"{argv[0]!r}{hint}\n")
            return 2
        return cmd.main(argv[1:], f"{prog} {argv[0]}")


def command(name: str) -> Callable[[Callable[..., Any]], Command]:
    def deco(fn: Callable[..., Any]) -> Command:
        return Command(name, fn)

    return deco


def group(name: str) -> Callable[[Callable[..., Any]], Group]:
    def deco(fn: Callable[..., Any]) -> Group:
        return Group(name, fn)

    return deco


def echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    """Write a line to standard output (``err``: standard error)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    if err:
        stream.flush()


def path_type(exists: bool = False, dir_okay: bool = True, file_okay: bool = True,
         as_path: bool = False) -> Callable[[str], Any]:
    """An argument type for paths: checks what is asked for, gives ``str`` or ``Path``."""

    def convert(text: str) -> Any:
        import argparse

        if exists and not os.path.exists(text):
            raise argparse.ArgumentTypeError(f"path {text!r} does not exist")
        if not dir_okay and os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"{text!r} is a directory")
        if not file_okay and os.path.exists(text) and not os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
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
        import argparse

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low if low is not None else ''}..{high if high is not None else ''}"
            raise argparse.ArgumentTypeError(f"{value} is not in the range {span}")
        return value

    convert.__name__ = "integer"
    convert.metavar = "N"  # type: ignore[attr-defined]
    return convert
