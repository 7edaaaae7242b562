"""Immutable model of a parsed Dockerfile (see :mod:`imagewise.dockerfile.parser`)."""

from __future__ import annotations

from collections.abc import Iterator

from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

_SHELLS = ("sh", "bash", "ash", "dash", "zsh", "ksh")


class Heredoc(Record):
    """One here-document attached to an instruction (``RUN <<EOF``, ``COPY <<-"EOT" /dst``).

    ``body`` ends with a newline (as BuildKit writes it); with ``strip_tabs`` (``<<-``) leading tabs
    are already removed from every body line. ``expand`` is False when the delimiter was quoted.
    ``start_line``/``end_line`` cover the body lines and the terminator line.
    """

    __slots__ = ("name", "body", "strip_tabs", "expand", "start_line", "end_line")  # noqa: RUF023
    name: str
    body: str
    strip_tabs: bool
    expand: bool
    start_line: int
    end_line: int

    def __init__(
        self,
        name: str,
        body: str,
        strip_tabs: bool = False,
        expand: bool = True,
        start_line: int = 0,
        end_line: int = 0,
    ) -> None:
        self.name = name
        self.body = body
        self.strip_tabs = strip_tabs
        self.expand = expand
        self.start_line = start_line
        self.end_line = end_line


class Instruction(Record):
    """One instruction with its exact source span.

    ``keyword`` is upper-case (``RUN``); ``original`` is the exact source text of all its lines
    (continuations and heredoc bodies included). ``flags`` maps a flag name with its dashes
    (``--mount``) to every value it was given, in order (``--link`` alone gives ``("",)``).
    ``args`` is the text after the flags with line continuations joined and comment lines dropped.
    ``arguments`` is that text for the shell form, or the JSON list (a tuple) for the exec form.
    ``pairs`` holds the key/value pairs of ENV, LABEL and ARG (value None for ``ARG name``),
    with quotes removed as BuildKit does. ``comments`` are the comment lines directly before the
    instruction (since the previous instruction), stripped of the leading ``#`` and whitespace.
    ``inner`` is the wrapped instruction of an ``ONBUILD``.
    """

    __slots__ = (
        "keyword",
        "original",
        "start_line",
        "end_line",
        "args",
        "arguments",
        "flags",  # noqa: RUF023
        "flag_list",
        "heredocs",
        "comments",
        "comment_lines",
        "pairs",
        "inner",
        "stage_index",
        "script_memo",
    )
    _uncompared = _unshown = ("script_memo",)
    _unhashed = ("flags",)
    keyword: str
    original: str
    start_line: int
    end_line: int
    args: str
    arguments: str | tuple[str, ...]
    flags: dict[str, tuple[str, ...]]
    flag_list: tuple[tuple[str, str], ...]
    heredocs: tuple[Heredoc, ...]
    comments: tuple[str, ...]
    comment_lines: tuple[int, ...]
    pairs: tuple[tuple[str, str | None], ...]
    inner: Instruction | None
    stage_index: int
    #: the shell model of a RUN once :func:`iw_rules.script_of` parsed it (one parse per RUN
    #: however many rules ask; not part of the value, and never carried into a copy)
    script_memo: Any

    def __init__(
        self,
        keyword: str,
        original: str,
        start_line: int,
        end_line: int,
        args: str = "",
        arguments: str | tuple[str, ...] = "",
        flags: dict[str, tuple[str, ...]] | None = None,
        flag_list: tuple[tuple[str, str], ...] = (),
        heredocs: tuple[Heredoc, ...] = (),
        comments: tuple[str, ...] = (),
        comment_lines: tuple[int, ...] = (),
        pairs: tuple[tuple[str, str | None], ...] = (),
        inner: Instruction | None = None,
        stage_index: int = -1,
        script_memo: Any = None,
    ) -> None:
        self.keyword = keyword
        self.original = original
        self.start_line = start_line
        self.end_line = end_line
        self.args = args
        self.arguments = arguments
        self.flags = {} if flags is None else flags
        self.flag_list = flag_list
        self.heredocs = heredocs
        self.comments = comments
        self.comment_lines = comment_lines
        self.pairs = pairs
        self.inner = inner
        self.stage_index = stage_index
        self.script_memo = None  # a copy (``replace``) may change the script: parse it again

    @property
    def is_exec_form(self) -> bool:
        return isinstance(self.arguments, tuple)

    def flag(self, name: str) -> str | None:
        """The last value of flag ``name`` (``"--from"`` or ``"from"``), or None when absent."""
        key = name if name.startswith("--") else "--" + name
        values = self.flags.get(key)
        return values[-1] if values else None

    def has_flag(self, name: str) -> bool:
        key = name if name.startswith("--") else "--" + name
        return key in self.flags

    @property
    def effective(self) -> Instruction:
        """The instruction that acts: the ``inner`` one for ONBUILD, else itself."""
        return self.inner if self.inner is not None else self

    @property
    def shell_script(self) -> str:
        """For RUN: the shell script that runs. For ``RUN <<EOF`` and ``RUN bash <<EOF`` that is
        the heredoc body, unless a ``#!`` line names a non-shell interpreter (then ``""``)."""
        if self.is_exec_form:
            return ""
        if not self.heredocs:
            return self.args
        words = self.args.split()
        first = words[0] if words else ""
        shell_fed = first.rsplit("/", 1)[-1] in _SHELLS and all(
            w.startswith(("-", "<<")) for w in words[1:]
        )
        if not (first.startswith("<<") or shell_fed):
            return self.args
        body = self.heredocs[0].body
        line = body.lstrip().split("\n", 1)[0]
        if line.startswith("#!"):
            tokens = line[2:].split() or [""]
            interp = tokens[0].rsplit("/", 1)[-1]
            if interp == "env" and len(tokens) > 1:
                interp = tokens[1]
            if interp not in _SHELLS:
                return ""
        return "\n".join(h.body for h in self.heredocs)


class Stage(Record):
    """A build stage: from its FROM to the next one. ``base_image`` is expanded with the global
    ARG defaults; ``base_image_raw`` is as written. ``instructions`` excludes the FROM itself."""

    __slots__ = (
        "index",
        "base_image",
        "base_image_raw",
        "alias",
        "platform",
        "from_instruction",  # noqa: RUF023
        "instructions",
    )
    index: int
    base_image: str
    base_image_raw: str
    alias: str | None
    platform: str | None
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]

    def __init__(
        self,
        index: int,
        base_image: str,
        base_image_raw: str,
        alias: str | None,
        platform: str | None,
        from_instruction: Instruction,
        instructions: tuple[Instruction, ...],
    ) -> None:
        self.index = index
        self.base_image = base_image
        self.base_image_raw = base_image_raw
        self.alias = alias
        self.platform = platform
        self.from_instruction = from_instruction
        self.instructions = instructions

    @property
    def from_line(self) -> int:
        return self.from_instruction.start_line

    @property
    def name(self) -> str:
        return self.alias if self.alias is not None else str(self.index)


class Dockerfile(Record):
    """A whole parsed Dockerfile. ``instructions`` is every instruction in order; ``preamble`` the
    ones before the first FROM (normally global ARGs); ``directives`` the parser directives in
    lower-case keys (``syntax``, ``escape``, ``check``)."""

    __slots__ = (
        "filename",
        "text",
        "instructions",
        "stages",
        "preamble",
        "directives",
        "escape",  # noqa: RUF023
        "global_args",
        "trailing_comments",
        "comments",
    )
    _unhashed = ("directives", "global_args")
    filename: str
    text: str
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    preamble: tuple[Instruction, ...]
    directives: dict[str, str]
    escape: str
    global_args: dict[str, str | None]
    trailing_comments: tuple[str, ...]
    comments: tuple[tuple[int, str], ...]  # every comment line (line, text without '#')

    def __init__(
        self,
        filename: str,
        text: str,
        instructions: tuple[Instruction, ...],
        stages: tuple[Stage, ...],
        preamble: tuple[Instruction, ...],
        directives: dict[str, str] | None = None,
        escape: str = "\\",
        global_args: dict[str, str | None] | None = None,
        trailing_comments: tuple[str, ...] = (),
        comments: tuple[tuple[int, str], ...] = (),
    ) -> None:
        self.filename = filename
        self.text = text
        self.instructions = instructions
        self.stages = stages
        self.preamble = preamble
        self.directives = {} if directives is None else directives
        self.escape = escape
        self.global_args = {} if global_args is None else global_args
        self.trailing_comments = trailing_comments
        self.comments = comments

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def stage_by_name(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.alias is not None and stage.alias.lower() == name.lower():
                return stage
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None
