"""What a rule sees: the parsed Dockerfile, the config, and derived views computed once.

Rules iterate ``ctx.runs()`` (every RUN, including ``ONBUILD RUN``, with its shell model),
``ctx.effective()`` (every instruction with ONBUILD unwrapped) and ask stage questions
(``ctx.parent(stage)``, ``ctx.vars_at(ins)``, ``ctx.shell_at(ins)``).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator, Mapping
from functools import cached_property
from types import MappingProxyType

from imagewise.dockerfile.config import LintConfig
from imagewise.dockerfile.expand import expand
from imagewise.dockerfile.model import Dockerfile, Instruction, Stage
from imagewise.dockerfile.shell import Script, parse_shell, script_from_argv
from imagewise.record import Record

NON_POSIX_SHELLS = ("pwsh", "powershell", "cmd")
_EMPTY = Script("", (), False, True)


class Run(Record):
    """A RUN instruction as a rule sees it. ``ins`` is the RUN itself (the inner one for
    ``ONBUILD RUN``); ``line`` is where findings go; ``script`` its shell model."""

    __slots__ = ("ins", "outer", "script", "stage_index")
    ins: Instruction
    outer: Instruction
    script: Script
    stage_index: int

    def __init__(
        self, ins: Instruction, outer: Instruction, script: Script, stage_index: int
    ) -> None:
        self.ins = ins
        self.outer = outer
        self.script = script
        self.stage_index = stage_index

    @property
    def line(self) -> int:
        return self.outer.start_line

    def mounts(self) -> list[dict[str, str]]:
        """The ``--mount`` options as dicts (``{"type": "cache", "target": "/x"}``)."""
        out = []
        for value in self.ins.flags.get("--mount", ()):
            opts: dict[str, str] = {}
            for part in value.split(","):
                k, _, v = part.partition("=")
                opts[k.strip().lower()] = v.strip().strip("\"'")
            opts.setdefault("type", "bind")
            if "dst" in opts or "destination" in opts:
                opts.setdefault("target", opts.get("dst") or opts.get("destination", ""))
            out.append(opts)
        return out

    def has_cache_mount(self, *prefixes: str, types: tuple[str, ...] = ("cache", "tmpfs")) -> bool:
        return any(
            m.get("type") in types and any(m.get("target", "").startswith(p) for p in prefixes)
            for m in self.mounts()
        )


class LintContext:
    """The Dockerfile and config one lint run looks at, with views derived once (cached)."""

    def __init__(self, dockerfile: Dockerfile, config: LintConfig | None = None) -> None:
        self.dockerfile = dockerfile
        self.config = LintConfig() if config is None else config
        self._vars_scan: _VarsScan | None = None

    # --- instruction views -------------------------------------------------------------
    def effective(self) -> Iterator[Instruction]:
        """Every instruction with ONBUILD unwrapped to its inner instruction."""
        for ins in self.dockerfile.instructions:
            yield ins.effective

    @cached_property
    def _runs(self) -> tuple[Run, ...]:
        out = []
        for ins in self.dockerfile.instructions:
            eff = ins.effective
            if eff.keyword != "RUN":
                continue
            if self.is_non_posix(ins):
                script = _EMPTY
            elif isinstance(eff.arguments, tuple):
                script = script_from_argv(eff.arguments)
            else:  # shared with iw_rules.script_of: one parse per RUN
                script = eff.script_memo
                if script is None:
                    script = parse_shell(eff.shell_script)
                    object.__setattr__(eff, "script_memo", script)
            out.append(Run(eff, ins, script, ins.stage_index))
        return tuple(out)

    def runs(self) -> tuple[Run, ...]:
        return self._runs

    # --- stages --------------------------------------------------------------------------
    def stage(self, index: int) -> Stage | None:
        stages = self.dockerfile.stages
        return stages[index] if 0 <= index < len(stages) else None

    def parent(self, stage: Stage) -> Stage | None:
        """The earlier stage this one is built FROM (by alias or index), if any."""
        name = stage.base_image_raw.lower()
        for other in self.dockerfile.stages[: stage.index]:
            if other.alias is not None and other.alias.lower() == name:
                return other
        return None

    def lineage(self, stage: Stage) -> list[Stage]:
        """The stage and its parents, nearest first."""
        out = [stage]
        cur = self.parent(stage)
        while cur is not None and cur not in out:
            out.append(cur)
            cur = self.parent(cur)
        return out

    @cached_property
    def aliases(self) -> set[str]:
        return {s.alias.lower() for s in self.dockerfile.stages if s.alias}

    # --- variables and shells ------------------------------------------------------------
    def vars_at(self, target: Instruction) -> Mapping[str, str | None]:
        """Variables visible at ``target``: every ARG default seen so far (hadolint keeps ARG
        values across stages) and the ENV of the current stage and the stages it is built on.

        Rules ask in file order, so the scan resumes where the last question left it (a
        question about an earlier instruction starts over): linear in the file per rule, not
        per RUN. The mapping returned is read-only and may be shared by later questions."""
        scan = self._vars_scan
        if scan is None or target.start_line <= scan.line:
            scan = self._vars_scan = _VarsScan(self)
        return scan.advance(target)

    @cached_property
    def _shells(self) -> dict[int, tuple[str, ...]]:
        """SHELL in force at each instruction line (inherited from parent stages)."""
        out: dict[int, tuple[str, ...]] = {}
        by_stage: dict[int, tuple[str, ...]] = {}
        pragma = self._shell_pragma
        current: tuple[str, ...] = (pragma,) if pragma else ("/bin/sh", "-c")
        for ins in self.dockerfile.instructions:
            if ins.keyword == "FROM":
                st = self.stage(ins.stage_index)
                par = self.parent(st) if st is not None else None
                inherited = by_stage.get(par.index) if par is not None else None
                current = inherited or ((pragma,) if pragma else ("/bin/sh", "-c"))
            eff = ins.effective
            if eff.keyword == "SHELL" and ins.keyword == "SHELL":
                current = eff.arguments if isinstance(eff.arguments, tuple) else (eff.args,)
            by_stage[ins.stage_index] = current
            out[ins.start_line] = current
        return out

    @cached_property
    def _shell_pragma(self) -> str | None:
        import re

        for _, text in self.dockerfile.comments:
            m = re.match(r"\s*hadolint\s+shell\s*=\s*(\S+)", text)
            if m:
                return m.group(1)
        return None

    def shell_at(self, ins: Instruction) -> tuple[str, ...]:
        return self._shells.get(ins.start_line, ("/bin/sh", "-c"))

    def is_non_posix(self, ins: Instruction) -> bool:
        shell = self.shell_at(ins)
        name = shell[0].rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower() if shell else ""
        return name.startswith(NON_POSIX_SHELLS)


class _VarsScan:
    """The ARG/ENV state of one pass over the instructions, up to ``line`` (exclusive)."""

    __slots__ = ("_view", "_view_stage", "args", "ctx", "env_by_stage", "line", "pos")

    def __init__(self, ctx: LintContext) -> None:
        self.ctx = ctx
        self.pos = 0  # index of the next instruction to apply
        self.line = 0
        self.args: dict[str, str | None] = {}
        self.env_by_stage: dict[int, dict[str, str | None]] = {}
        self._view: Mapping[str, str | None] | None = None
        self._view_stage = -2

    def advance(self, target: Instruction) -> Mapping[str, str | None]:
        instructions = self.ctx.dockerfile.instructions
        esc = self.ctx.dockerfile.escape
        args, env_by_stage = self.args, self.env_by_stage
        while self.pos < len(instructions):
            ins = instructions[self.pos]
            if ins is target or ins.effective is target or ins.start_line >= target.start_line:
                break
            self.pos += 1
            self.line = ins.start_line
            eff = ins.effective
            if eff.keyword == "FROM":
                st = self.ctx.stage(ins.stage_index)
                par = self.ctx.parent(st) if st is not None else None
                env_by_stage[ins.stage_index] = dict(env_by_stage.get(par.index, {})) if par else {}
                self._view = None
                continue
            if eff.keyword not in ("ARG", "ENV"):
                continue
            self._view = None
            env = env_by_stage.setdefault(ins.stage_index, {})
            scope = ChainMap(env, args)  # values see the state before this instruction
            if eff.keyword == "ARG":
                values = [
                    (k, v, None if v is None else expand(v, scope, esc)) for k, v in eff.pairs
                ]
                for k, v, value in values:
                    if v is not None or k not in args:
                        args[k] = value
            else:
                env.update([(k, expand(v or "", scope, esc)) for k, v in eff.pairs])
        if self._view is None or self._view_stage != target.stage_index:
            self._view = MappingProxyType({**args, **env_by_stage.get(target.stage_index, {})})
            self._view_stage = target.stage_index
        return self._view
