"""Autofix: rewrite what can be rewritten without changing what the image does.

Each fixer looks at one instruction (or two adjacent RUNs) of the parsed file and returns an
:class:`Edit`, a replacement of the exact source lines ``start..end``; every other line is left
byte for byte as it was. ``fix`` applies one round of non-overlapping edits, parses again and
repeats until nothing changes, so the result is a fixed point: ``fix(fix(f)) == fix(f)``.

The fixes and the rules they answer: ``apk add --no-cache`` (DL3019), ``apt-get install
--no-install-recommends`` (DL3015) and ``&& rm -rf /var/lib/apt/lists/*`` (DL3009),
``pip install --no-cache-dir`` (DL3042), ``npm ci`` for ``npm install`` beside a lockfile (IW112),
``COPY`` for ``ADD`` of local non-archives (DL3020), consecutive RUNs joined (IW105), ``WORKDIR``
for a leading ``cd`` (DL3003) and the JSON form of CMD/ENTRYPOINT (DL3025). Each rule names
its fixer in its declaration (``fixer="imagewise.dockerfile.fix:_apk_no_cache"``); this module
keeps the machinery and reads that table.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagewise.dockerfile import iw_rules
from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.dockerfile.parser import check_size, parse, read_limited

APT_LISTS_CLEANUP = "rm -rf /var/lib/apt/lists/*"
_ARCHIVE = re.compile(
    r"\.(tar|tgz|tbz2?|txz|tzst|tar\.(gz|bz2|xz|zst|lz4|lzma)|gz|bz2|xz|zst|"
    r"lzma|lz4|zip)$",
    re.IGNORECASE,
)
_SHELL_META = re.compile(r"[$`|&;<>*?~(){}\[\]!#\\\n]")
_MAX_ROUNDS = 50


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace source lines ``start..end`` (1-based, inclusive) with ``lines``."""

    start: int
    end: int
    lines: tuple[str, ...]
    rule: str
    description: str


@dataclass(frozen=True, slots=True)
class FixResult:
    filename: str
    original: str
    fixed: str
    edits: tuple[Edit, ...]

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(e.rule for e in self.edits)

    def diff(self) -> str:
        """A unified diff from the original to the fixed text (empty when unchanged)."""
        name = self.filename
        return "".join(
            difflib.unified_diff(
                _keepends(self.original), _keepends(self.fixed), f"a/{name}", f"b/{name}"
            )
        )


def _keepends(text: str) -> list[str]:
    """Lines with their endings, split at ``\\n`` only (as patch does; not at ``\\f``...)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


@dataclass(frozen=True, slots=True)
class _Ctx:
    df: Dockerfile
    lines: list[str]
    dockerfile_dir: str | None
    rules: frozenset[str] | None
    #: per-stage facts the fixers ask about every RUN, found once per round (a scan of the
    #: stage chain for each RUN made --fix quadratic)
    memo: dict[str, Any] = field(default_factory=dict)

    def per_stage(self, key: str, make: Callable[[Stage], Any]) -> dict[int, Any]:
        table = self.memo.get(key)
        if table is None:
            table = self.memo[key] = {st.index: make(st) for st in self.df.stages}
        return table

    def followers(self, stage: Stage) -> list[Stage]:
        """The stages built on ``stage`` (itself included)."""
        table = self.memo.get("followers")
        if table is None:
            table = self.memo["followers"] = {st.index: [] for st in self.df.stages}
            for st in self.df.stages:
                for base in iw_rules.stage_chain(self.df, st):
                    table[base.index].append(st)
        return table[stage.index]  # type: ignore[no-any-return]


Fixer = Callable[[_Ctx, Instruction], Edit | None]
FileFixer = Callable[[_Ctx], list[Edit]]


def fix(
    text: str,
    filename: str = "Dockerfile",
    *,
    dockerfile_dir: str | None = None,
    rules: Sequence[str] | None = None,
) -> FixResult:
    """Fix ``text`` (a Dockerfile) to a fixed point. ``rules`` limits the fixes to those rule ids.
    Raises :class:`~imagewise.errors.DockerfileSyntaxError` when ``text`` does not parse.

    Lines no edit touches come back exactly as they were, line endings (``\\n``, ``\\r\\n``,
    mixed) included; text decoded with ``surrogateescape`` (:func:`decode`) keeps even the bytes
    that are not UTF-8 through :func:`encode`."""
    wanted = frozenset(rules) if rules is not None else None
    lines, ends = _split_lines(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    applied: list[Edit] = []
    for _ in range(_MAX_ROUNDS):
        df = parse("\n".join(lines), filename)  # the parser drops the \r of \r\n itself
        ctx = _Ctx(df, lines, dockerfile_dir, wanted)
        edits = _round(ctx)
        if not edits:
            break
        for e in sorted(edits, key=lambda e: e.start, reverse=True):
            lines[e.start - 1 : e.end] = list(e.lines)
            ends[e.start - 1 : e.end] = _new_ends(ends[e.start - 1 : e.end], len(e.lines), newline)
        applied.extend(edits)
    if not applied:
        return FixResult(filename, text, text, ())
    return FixResult(filename, text, "".join(map(str.__add__, lines, ends)), tuple(applied))


def _split_lines(text: str) -> tuple[list[str], list[str]]:
    """Lines as the parser numbers them (split at ``\\n`` only) without their ending, and each
    ending (the ``\\r`` before the ``\\n`` included; ``""`` for the last line)."""
    lines = text.split("\n")
    ends = ["\n"] * (len(lines) - 1) + [""]
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            body = line.rstrip("\r")
            lines[i], ends[i] = body, line[len(body) :] + ends[i]
    return lines, ends


def _new_ends(old: list[str], count: int, newline: str) -> list[str]:
    """Endings for ``count`` lines replacing lines that had the endings ``old``: each keeps the
    ending of the line it replaces, the last one the ending of the last replaced line."""
    inner = next((e for e in old if e), newline)
    out = [old[i] if i < len(old) - 1 and old[i] else inner for i in range(count - 1)]
    return out + [old[-1]] if count else []


def decode(data: bytes) -> str:
    """A Dockerfile's bytes as text for :func:`fix`; bytes that are not UTF-8 survive as
    surrogates (``surrogateescape``) and come back unchanged from :func:`encode`."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def fix_file(
    path: str,
    *,
    name: str | None = None,
    dockerfile_dir: str | None = None,
    rules: Sequence[str] | None = None,
    write: bool = True,
) -> FixResult:
    """Fix the Dockerfile at ``path`` and, when something changed and ``write``, replace it
    through :func:`imagewise.fileio.write_file` (whole or not at all, its mode kept). Bytes of
    lines no edit touches are written back as they were read."""
    from imagewise.errors import UsageError

    try:
        with open(path, "rb") as fh:
            data = read_limited(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    check_size(len(data), name or path)
    if dockerfile_dir is None:
        dockerfile_dir = os.path.dirname(os.path.abspath(path))
    result = fix(decode(data), name or path, dockerfile_dir=dockerfile_dir, rules=rules)
    if result.changed and write:
        from imagewise.fileio import write_file

        write_file(path, encode(result.fixed))
    return result


def _round(ctx: _Ctx) -> list[Edit]:
    """Edits for one round: merges first (they move lines), else per-instruction fixes."""
    if iw_rules.is_windows(ctx.df):
        return []
    per_instruction, whole_file = _fixers()
    for rule_id, file_fixer in whole_file:
        if _allowed(ctx, rule_id):
            merges = file_fixer(ctx)
            if merges:
                return merges
    edits: list[Edit] = []
    taken: set[int] = set()
    for ins in ctx.df.instructions:
        for fixer in per_instruction:
            if ins.start_line in taken:
                break
            edit = fixer(ctx, ins)
            if edit is not None and _allowed(ctx, edit.rule):
                edits.append(edit)
                taken.add(ins.start_line)
    return edits


def _allowed(ctx: _Ctx, rule: str) -> bool:
    return ctx.rules is None or rule in ctx.rules


def _src(ctx: _Ctx, ins: Instruction) -> list[str]:
    return ctx.lines[ins.start_line - 1 : ins.end_line]


def _stage_of(ctx: _Ctx, ins: Instruction) -> Stage | None:
    return ctx.df.stages[ins.stage_index] if 0 <= ins.stage_index < len(ctx.df.stages) else None


def _shell_ok(ctx: _Ctx, ins: Instruction, heredoc_scripts: bool = False) -> bool:
    """A POSIX-shell RUN in shell form outside ONBUILD; with ``heredoc_scripts`` also
    ``RUN <<EOF`` whose here-documents are shell scripts (no other interpreter's shebang)."""
    if ins.keyword != "RUN" or ins.is_exec_form or ins.inner is not None:
        return False
    if ins.heredocs:
        if not heredoc_scripts or not ins.args.strip().startswith("<<"):
            return False  # `RUN python3 <<EOF`: the body is not shell
        if any(_shebang(h.body) not in iw_rules.POSIX_SHELLS for h in ins.heredocs):
            return False
    stage = _stage_of(ctx, ins)
    return stage is None or iw_rules.posix_shell_at(ctx.df, stage, ins.start_line)


def _shebang(script: str) -> str:
    """The interpreter a script names in its ``#!`` line (``sh`` when there is none)."""
    first = script.split("\n", 1)[0]
    if not first.startswith("#!"):
        return "sh"
    parts = [p for p in first[2:].split() if not p.startswith("-")]
    if parts and os.path.basename(parts[0]) == "env":
        parts = parts[1:]
    return os.path.basename(parts[0]) if parts else "sh"


# -- text helpers ---------------------------------------------------------------------------------


def _command_spans(text: str, head: str) -> Iterator[tuple[int, int, re.Match[str]]]:
    """Spans of the shell commands in ``text`` starting with regex ``head``, up to the next
    unquoted ``&&``, ``||``, ``;``, ``|``, ``)`` or unescaped newline."""
    for m in re.finditer(head, text):
        if m.start() > 0 and not re.match(r"[\s;&|(`]", text[m.start() - 1]):
            continue
        i, quote = m.end(), ""
        while i < len(text):
            c = text[i]
            if quote:
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "\\" and i + 1 < len(text):
                i += 2
                continue
            elif c in ";|&)\n#":
                break
            i += 1
        yield m.start(), i, m


def _edit_text(ctx: _Ctx, ins: Instruction, new_text: str, rule: str, what: str) -> Edit | None:
    old = "\n".join(_src(ctx, ins))
    if new_text == old:
        return None
    return Edit(ins.start_line, ins.end_line, tuple(new_text.split("\n")), rule, what)


def _insert_flag(
    ctx: _Ctx, ins: Instruction, head: str, flag: str, present: re.Pattern[str], rule: str
) -> Edit | None:
    """Insert `` flag`` after the match of ``head`` in every such command lacking ``present``."""
    if not _shell_ok(ctx, ins, heredoc_scripts=True):
        return None
    text = "\n".join(_src(ctx, ins))
    out, last = [], 0
    for start, end, m in _command_spans(text, head):
        if present.search(text[start:end]):
            continue
        out.append(text[last : m.end()] + " " + flag)
        last = m.end()
    if not out:
        return None
    return _edit_text(ctx, ins, "".join(out) + text[last:], rule, f"add {flag}")


# -- fixers ---------------------------------------------------------------------------------------


def _apk_no_cache(ctx: _Ctx, ins: Instruction) -> Edit | None:
    return _insert_flag(
        ctx,
        ins,
        r"\bapk(?:\s+-{1,2}[\w-]+(?:=\S+)?)*\s+add\b",
        "--no-cache",
        re.compile(r"\s--no-cache\b|\s--no-network\b"),
        "DL3019",
    )


def _apt_no_recommends(ctx: _Ctx, ins: Instruction) -> Edit | None:
    return _insert_flag(
        ctx,
        ins,
        r"\bapt-get(?:\s+-{1,2}[\w-]+(?:=\S+)?)*\s+install\b",
        "--no-install-recommends",
        re.compile(
            r"--no-install-recommends|APT::Install-Recommends|"
            r"\s(-s|--simulate|--dry-run|--just-print|--no-act)\b"
        ),
        "DL3015",
    )


def _pip_no_cache(ctx: _Ctx, ins: Instruction) -> Edit | None:
    if _has_env(ctx, ins, "PIP_NO_CACHE_DIR") or ".cache" in " ".join(ins.flags.get("--mount", ())):
        return None
    return _insert_flag(
        ctx,
        ins,
        r"(?<!uv )\b(?:pip3?|python3?(?:\.\d+)?\s+-m\s+pip)"
        r"(?:\s+-{1,2}[\w-]+)*\s+install\b",
        "--no-cache-dir",
        re.compile(r"--no-cache-dir|\s-h\b|--help"),
        "DL3042",
    )


def _has_env(ctx: _Ctx, ins: Instruction, name: str) -> bool:
    stage = _stage_of(ctx, ins)
    if stage is None:
        return False
    names = ctx.per_stage(
        "env names",
        lambda st: {k for i in st.instructions if i.keyword in ("ENV", "ARG") for k, _ in i.pairs},
    )
    return any(name in names[st.index] for st in iw_rules.stage_chain(ctx.df, stage))


def _apt_lists(ctx: _Ctx, ins: Instruction) -> Edit | None:
    """Append the lists cleanup to a RUN that updates and installs, when no later RUN of the
    stage (or of stages built on it) installs from those lists without updating again."""
    if not _shell_ok(ctx, ins) or "/var/lib/apt" in " ".join(ins.flags.get("--mount", ())):
        return None
    script = iw_rules.script_of(ins)
    cmds = [(c.name, c.subcommand) for c in script.commands]
    if ("apt-get", "install") not in cmds or ("apt-get", "update") not in cmds:
        return None
    if (
        any(
            c.name == "rm" and any(a.startswith("/var/lib/apt/lists") for a in c.args)
            for c in script.commands
        )
        or ("apt-get", "dist-clean") in cmds
    ):
        return None
    if _later_apt_without_update(ctx, ins):
        return None
    src = _src(ctx, ins)
    last = src[-1]
    if re.search(r"(^|\s)#", last) or last.rstrip().endswith("\\"):
        return None
    body = last.rstrip()
    if body.endswith(";"):
        new_last = body + " " + APT_LISTS_CLEANUP
    elif body.endswith(("&&", "||", "|")):
        return None
    else:
        new_last = body + " && " + APT_LISTS_CLEANUP
    return Edit(ins.end_line, ins.end_line, (new_last,), "DL3009", "remove the apt lists")


def _later_apt_without_update(ctx: _Ctx, ins: Instruction) -> bool:
    stage = _stage_of(ctx, ins)
    if stage is None:
        return True
    last = ctx.per_stage("last apt without update", _last_apt_without_update)
    return any(
        last[st.index] > (ins.start_line if st is stage else 0) for st in ctx.followers(stage)
    )


def _last_apt_without_update(stage: Stage) -> int:
    """The line of the stage's last RUN using apt without updating its lists (0: none)."""
    found = 0
    for later in stage.instructions:
        if later.keyword != "RUN":
            continue
        script = iw_rules.script_of(later)
        cmds = [(os.path.basename(c.name), c.subcommand) for c in script.commands]
        uses = any(n in ("apt-get", "apt", "apt-cache") for n, _ in cmds)
        if uses and ("apt-get", "update") not in cmds and ("apt", "update") not in cmds:
            found = later.start_line
    return found


def _npm_ci(ctx: _Ctx, ins: Instruction) -> Edit | None:
    if not _shell_ok(ctx, ins) or ctx.dockerfile_dir is None:
        return None
    if not any(
        os.path.isfile(os.path.join(ctx.dockerfile_dir, n))
        for n in ("package-lock.json", "npm-shrinkwrap.json")
    ):
        return None
    if not iw_rules.npm_installs(iw_rules.script_of(ins)):
        return None
    text = "\n".join(_src(ctx, ins))
    out, last = [], 0
    head = r"\bnpm(?:\s+-{1,2}[\w-]+(?:=\S+)?)*\s+(install|i)\b"
    for start, end, m in _command_spans(text, head):
        rest = text[m.end() : end].replace("\\\n", " ").split()
        if any(not w.startswith("-") for w in rest):
            continue  # installs named packages: not what a lockfile describes
        out.append(text[last : m.start(1)] + "ci")
        last = m.end(1)
    if not out:
        return None
    return _edit_text(ctx, ins, "".join(out) + text[last:], "IW112", "npm ci")


def _add_to_copy(ctx: _Ctx, ins: Instruction) -> Edit | None:
    if ins.keyword != "ADD" or ins.inner is not None or ins.heredocs:
        return None
    if any(f in ins.flags for f in ("--checksum", "--keep-git-dir", "--unpack")):
        return None
    words = (
        list(ins.arguments)
        if ins.is_exec_form
        else shlex.split(ins.args, posix=True)
        if _quotes_ok(ins.args)
        else []
    )
    if len(words) < 2:
        return None
    for word in words[:-1]:
        if "$" in word or "://" in word or word.startswith("git@") or _ARCHIVE.search(word):
            return None
    src = _src(ctx, ins)
    m = re.match(r"^(\s*)(add)\b", src[0], re.IGNORECASE)
    if m is None:
        return None
    word = "COPY" if m.group(2).isupper() else "copy" if m.group(2).islower() else "Copy"
    first = m.group(1) + word + src[0][m.end() :]
    return Edit(ins.start_line, ins.end_line, (first, *src[1:]), "DL3020", "COPY for ADD")


def _quotes_ok(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def _exec_form(ctx: _Ctx, ins: Instruction) -> Edit | None:
    if ins.keyword not in ("CMD", "ENTRYPOINT") or ins.is_exec_form or ins.inner is not None:
        return None
    args = ins.args.strip()
    if not args or _SHELL_META.search(args) or not _quotes_ok(args):
        return None
    stage = _stage_of(ctx, ins)
    if stage is None or any(
        i.keyword == "SHELL" for st in iw_rules.stage_chain(ctx.df, stage) for i in st.instructions
    ):
        return None
    if ins.keyword == "ENTRYPOINT" and _cmd_reaches(ctx, stage):
        return None  # a shell-form ENTRYPOINT ignores CMD; the exec form would append it
    words = shlex.split(args)
    if "=" in words[0]:
        return None  # `CMD VAR=1 prog`: an assignment only a shell understands
    src = _src(ctx, ins)
    indent = re.match(r"^\s*", src[0]).group(0)  # type: ignore[union-attr]
    keyword = re.match(r"^\s*(\S+)", src[0]).group(1)  # type: ignore[union-attr]
    line = f"{indent}{keyword} {json.dumps(words, ensure_ascii=False)}"
    return Edit(ins.start_line, ins.end_line, (line,), "DL3025", "JSON form")


def _cmd_reaches(ctx: _Ctx, stage: Stage) -> bool:
    for st in ctx.df.stages:
        if stage in iw_rules.stage_chain(ctx.df, st) and any(
            i.keyword == "CMD" for i in st.instructions
        ):
            return True
    return False


def _cd_to_workdir(ctx: _Ctx, ins: Instruction) -> Edit | None:
    """``RUN cd /dir && rest`` -> ``WORKDIR /dir``, ``RUN rest``, ``WORKDIR <previous>``."""
    if not _shell_ok(ctx, ins):
        return None
    src = _src(ctx, ins)
    text = "\n".join(src)
    m = re.match(
        r"^(\s*run\s+(?:--\S+\s+)*)cd\s+([^\s;&|$`'\"\\]+)\s*&&[ \t]*(\\\n\s*)?",
        text,
        re.IGNORECASE,
    )
    if m is None or not text[m.end() :].strip():
        return None
    stage = _stage_of(ctx, ins)
    if stage is None:
        return None
    previous = _workdir_before(ctx, stage, ins)
    if previous is None:
        return None  # the directory to return to is unknown (set by the base image)
    target = os.path.normpath(os.path.join(previous, m.group(2)))
    indent = re.match(r"^\s*", src[0]).group(0)  # type: ignore[union-attr]
    rest = m.group(1) + text[m.end() :]
    lines = (f"{indent}WORKDIR {target}", *rest.split("\n"), f"{indent}WORKDIR {previous}")
    return Edit(ins.start_line, ins.end_line, lines, "DL3003", "WORKDIR for cd")


def _workdir_before(ctx: _Ctx, stage: Stage, ins: Instruction) -> str | None:
    """The working directory in force at ``ins``, when the Dockerfile itself sets it."""
    table = ctx.per_stage(
        "workdirs", lambda st: [i for i in st.instructions if i.keyword == "WORKDIR"]
    )
    for st in iw_rules.stage_chain(ctx.df, stage):
        workdirs: list[Instruction] = table[st.index]
        if st is stage:
            workdirs = workdirs[
                : bisect.bisect_left(workdirs, ins.start_line, key=lambda i: i.start_line)
            ]
        if workdirs:
            path = workdirs[-1].args.strip()
            if "$" in path or not path.startswith("/") or _SHELL_META.search(path):
                return None
            return os.path.normpath(path)
    root = iw_rules.stage_chain(ctx.df, stage)[-1].base_image.lower()
    return "/" if root == "scratch" else None


def _merges(ctx: _Ctx) -> list[Edit]:
    edits: list[Edit] = []
    used: set[int] = set()
    for stage in ctx.df.stages:
        for a, b in iw_rules.consecutive_runs(stage):
            if a.start_line in used or b.start_line in used:
                continue
            if not iw_rules.posix_shell_at(ctx.df, stage, b.start_line):
                continue
            if iw_rules.merge_reason(a, b) is None or not iw_rules.mergeable(a, b):
                continue  # not flagged, or joining would change what the RUNs do
            edit = _merge(ctx, a, b)
            if edit is not None:
                edits.append(edit)
                used.update((a.start_line, b.start_line))
    return edits


def _merge(ctx: _Ctx, a: Instruction, b: Instruction) -> Edit | None:
    a_src, b_src = _src(ctx, a), _src(ctx, b)
    between = ctx.lines[a.end_line : b.start_line - 1]
    esc = ctx.df.escape
    last = a_src[-1].rstrip()
    if last.endswith(";"):
        last = last[:-1].rstrip()
    if last.endswith(("&&", "||", "|", esc)):
        return None
    m = re.match(r"^\s*run\s+((?:--\S+\s+)*)", b_src[0], re.IGNORECASE)
    if m is None:
        return None
    indent = re.match(r"^\s*", a_src[1]).group(0) if len(a_src) > 1 else "    "  # type: ignore[union-attr]
    rest_b = b_src[0][m.end() :].strip()
    first_b = [] if rest_b == esc else [indent + rest_b]
    comments = [line for line in between if line.strip().startswith("#")]
    lines = (*a_src[:-1], f"{last} && {esc}", *comments, *first_b, *b_src[1:])
    return Edit(a.start_line, b.end_line, lines, "IW105", "merge consecutive RUNs")


#: fixers that see the whole file (they move lines: a round of them runs alone, first)
_WHOLE_FILE = ("_merges",)
#: fixers tried after the others on an instruction (they append to what the others rewrite)
_LAST = ("_apt_lists",)
_FIXER_LOCK = threading.Lock()
_FIXER_TABLE: tuple[tuple[Fixer, ...], tuple[tuple[str, FileFixer], ...], frozenset[str]] | None = (
    None
)


def _fixers() -> tuple[tuple[Fixer, ...], tuple[tuple[str, FileFixer], ...]]:
    """The fixers the rule declarations name (``fixer="module:function"``), per instruction
    (declaration order, ``_LAST`` at the end) and whole-file, loaded once."""
    table = _fixer_table()
    return table[0], table[1]


def _fixer_table() -> tuple[tuple[Fixer, ...], tuple[tuple[str, FileFixer], ...], frozenset[str]]:
    global _FIXER_TABLE
    if _FIXER_TABLE is None:
        with _FIXER_LOCK:
            if _FIXER_TABLE is None:
                import importlib

                from imagewise.dockerfile.rules import all_rules

                early: list[Fixer] = []
                late: list[Fixer] = []
                whole: list[tuple[str, FileFixer]] = []
                for r in all_rules():
                    if not r.info.fixer:
                        continue
                    module, _, name = r.info.fixer.partition(":")
                    fn = getattr(importlib.import_module(module), name)
                    if name in _WHOLE_FILE:
                        whole.append((r.id, fn))
                    else:
                        (late if name in _LAST else early).append(fn)
                _FIXER_TABLE = (
                    tuple(early + late),
                    tuple(whole),
                    frozenset(r.id for r in all_rules() if r.info.fixer),
                )
    return _FIXER_TABLE


def __getattr__(name: str) -> frozenset[str]:
    if name == "FIXABLE":  # the rule ids ``fix`` can answer: those declared with a fixer
        return _fixer_table()[2]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
