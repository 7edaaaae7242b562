"""The user documentation stays true to the code.

* ``docs/rules.md`` is what the generator makes from the rule tables today;
* ``docs/guide.md`` names only commands, subcommands and options that exist, documents every
  command ``imagewise --help`` lists, and names only JSON schemas the code writes;
* the guide's examples reproduce: its console blocks are replayed in document order in a scratch
  directory (files the guide shows are written where it shows them) and every output line the
  guide prints must appear in the real output.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus

from imagewise.cli import docs_gen
from imagewise.cli.args import Group
from imagewise.cli.main import COMMANDS, load

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"
RULES_MD = ROOT / "docs" / "rules.md"
REGENERATE = "python -m imagewise.cli.docs_gen"

# ------------------------------------------------------------------ docs/rules.md


def test_rules_md_is_up_to_date() -> None:
    expected = docs_gen.render(docs_gen.rules_json())
    current = RULES_MD.read_text("utf-8") if RULES_MD.exists() else ""
    if current != expected:
        diff = list(
            difflib.unified_diff(
                current.splitlines(),
                expected.splitlines(),
                "docs/rules.md (committed)",
                "docs/rules.md (from the code)",
                n=1,
                lineterm="",
            )
        )
        shown = "\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else "")
        pytest.fail(
            f"docs/rules.md is out of date with the rule tables.\n"
            f"Regenerate it with `{REGENERATE}` and commit the result.\n{shown}"
        )


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_rules_md_documents_every_rule_in_its_group() -> None:
    rules = docs_gen.rules_json()
    sections = _sections(docs_gen.render(rules))
    by_id = {r["id"]: r for r in rules}
    assert len(by_id) == len(rules), "duplicate rule ids in `imagewise rules --format json`"
    for r in rules:
        homes = [h for h, body in sections.items() if f"\n### {r['id']}\n" in body]
        assert len(homes) == 1, f"{r['id']} is documented under {homes}, expected exactly one group"
    # the families the brief names land in the right group, with their fields
    expect = {
        "DL3008": "Dockerfile rules",
        "IW103": "Dockerfile rules",
        "CIS-DI-0001": "Image audit checks",
        "DKL-DI-0005": "Image audit checks",
        "IW-IMG-003": "Image audit checks",
    }
    for rid, heading in expect.items():
        assert rid in by_id, f"{rid} is no longer declared"
        body = sections[heading]
        r = by_id[rid]
        entry = body.split(f"\n### {rid}\n", 1)[1].split("\n### ", 1)[0]
        assert f"Severity `{r['severity']}`" in entry and f"area `{r['area']}`" in entry
        assert r["rationale"].split()[0] in entry and r["fix"].split()[0] in entry


def test_generator_check_mode_reports_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "rules.md"
    assert docs_gen.main([str(target)]) == 0
    assert docs_gen.main(["--check", str(target)]) == 0
    target.write_text(target.read_text("utf-8").replace("DL3008", "DL3OO8"), "utf-8")
    assert docs_gen.main(["--check", str(target)]) == 1
    assert REGENERATE in capsys.readouterr().err


# ------------------------------------------------------------------ guide: parsing


@dataclass
class Block:
    lang: str
    lines: list[str]
    line: int  # 1-based line of the opening fence
    file: str | None = None  # from a preceding ``<!-- file: PATH -->`` marker


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def guide_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start = i
        marker = re.match(r"^<!-- file: (\S+) -->$", lines[i - 1]) if i else None
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        blocks.append(Block(m.group(1), body, start + 1, marker.group(1) if marker else None))
        i += 1
    return blocks


def steps(block: Block) -> list[Step]:
    """``$ command`` lines of a console block with the output lines under each."""
    out: list[Step] = []
    for line in block.lines:
        if line.startswith("$ "):
            out.append(Step(line[2:]))
        elif out:
            out[-1].expected.append(line)
    return out


def shell_commands(block: Block) -> Iterator[str]:
    if block.lang == "console":
        yield from (s.command for s in steps(block))
    elif block.lang in ("sh", "bash", "shell"):
        pending = ""
        for line in block.lines:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield pending + line
            pending = ""


def imagewise_invocations(command: str) -> Iterator[list[str]]:
    """The argument lists of every ``imagewise`` call in a shell command line."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    segment: list[str] = []
    for tok in [*lex, ";"]:
        if tok in ("|", "||", "&&", ";", ">", ">>", "<", "&"):
            while segment and re.match(r"^[A-Z_][A-Z0-9_]*=", segment[0]):
                segment.pop(0)  # environment assignments
            if segment and segment[0] == "imagewise":
                yield segment[1:]
            segment = [] if tok not in (">", ">>", "<") else ["<redirect>"]
        else:
            segment.append(tok)


GUIDE_TEXT = GUIDE.read_text("utf-8")
BLOCKS = guide_blocks(GUIDE_TEXT)
TOP_OPTIONS = {"-h", "--help", "-V", "--version"}


def _option_names(cmd: Any) -> set[str]:
    if cmd is None:
        return TOP_OPTIONS
    names = {"-h", "--help"}
    for p in cmd.params:
        if p.is_option:
            names.update(p.flags)
            if p.negatable:
                names.update("--no-" + f[2:] for f in p.flags if f.startswith("--"))
    return names


def _subcommands(cmd: Any) -> dict[str, Any] | None:
    return cmd.commands if isinstance(cmd, Group) else None


def _resolve(args: list[str]) -> tuple[str, Any]:
    """``(name, command)`` for an ``imagewise`` argument list; fails on unknown commands."""
    if not args or args[0].startswith("-"):
        return "imagewise", None
    name = args[0]
    assert name in COMMANDS, f"`imagewise {name}` is shown in docs/guide.md but is no command"
    cmd = load(name)
    subs = _subcommands(cmd)
    if subs is not None:
        sub = next((a for a in args[1:] if not a.startswith("-")), None)
        if sub not in subs and cmd.default is not None:  # `imagewise tags REPO`
            sub = cmd.default
        assert sub is not None, f"`imagewise {name}` needs a subcommand in the guide's examples"
        assert sub in subs, f"`imagewise {name} {sub}` is shown in the guide but is no command"
        return f"{name} {sub}", subs[sub]
    return name, cmd


def guide_invocations() -> list[list[str]]:
    return [args for b in BLOCKS for c in shell_commands(b) for args in imagewise_invocations(c)]


# ------------------------------------------------------------------ guide: commands and options


def test_guide_examples_name_existing_commands_and_options() -> None:
    calls = guide_invocations()
    assert len(calls) > 50, "expected the guide to show many imagewise commands"
    problems = []
    for args in calls:
        name, cmd = _resolve(args)
        known = _option_names(cmd)
        for tok in args:
            if (
                tok.startswith("-")
                and tok != "-"
                and not re.match(r"^-\d", tok)
                and tok.split("=", 1)[0] not in known
            ):
                problems.append(f"`imagewise {' '.join(args)}`: {name} has no option {tok}")
    assert not problems, "\n".join(problems)


def test_every_command_is_documented_in_the_guide() -> None:
    headings = [line for line in GUIDE_TEXT.splitlines() if line.startswith("#")]
    shown = {_resolve(args)[0] for args in guide_invocations()}
    missing = []
    for name in sorted(COMMANDS):
        cmd = load(name)
        if not any(f"imagewise {name}`" in h for h in headings):
            missing.append(f"no section heading names `imagewise {name}`")
        subs = _subcommands(cmd)
        names = [f"{name} {s}" for s in sorted(subs)] if subs is not None else [name]
        missing += [f"no example runs `imagewise {n}`" for n in names if n not in shown]
    assert not missing, "docs/guide.md is missing commands:\n" + "\n".join(missing)


def test_guide_schemas_are_the_ones_the_code_writes() -> None:
    pattern = re.compile(r"imagewise/[a-z][a-z-]*/v\d+")
    in_code = {
        m
        for p in (ROOT / "src" / "imagewise").rglob("*.py")
        for m in pattern.findall(p.read_text("utf-8"))
    }
    in_guide = set(pattern.findall(GUIDE_TEXT))
    assert in_guide <= in_code, (
        f"the guide names schemas the code never writes: {in_guide - in_code}"
    )
    assert in_code <= in_guide, f"schemas the guide does not mention: {in_code - in_guide}"


def test_guide_links_to_existing_docs_and_anchors() -> None:
    def slug(heading: str) -> str:
        s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        return s.replace(" ", "-")

    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", GUIDE_TEXT, flags=re.MULTILINE)}
    for target in re.findall(r"\]\(#([^)]+)\)", GUIDE_TEXT):
        assert target in anchors, f"guide links to #{target}, which no heading makes"
    rules_text = docs_gen.render(docs_gen.rules_json())
    rule_anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", rules_text, flags=re.MULTILINE)}
    rule_anchors |= set(re.findall(r'<a id="([^"]+)"></a>', rules_text))
    for doc, frag in re.findall(r"\]\(([\w.]+\.md)(?:#([^)]+))?\)", GUIDE_TEXT):
        assert (GUIDE.parent / doc).exists(), f"guide links to missing docs/{doc}"
        if doc == "rules.md" and frag:
            assert frag in rule_anchors, f"guide links to rules.md#{frag}, which does not exist"
    assert "guide.md#policy-files-imagewise-policy" in rules_text
    assert "policy-files-imagewise-policy" in anchors


# ------------------------------------------------------------------ guide: examples replayed

#: examples that need what the replay does not build: the two-platform layout, the rebuilt
#: sample, the password-protected registry, the peers' corpora by relative path, pre-commit,
#: and jq (not a dependency; its examples also show layer-cache state)
NOT_REPLAYED = (
    "oci:./multi",
    "sample-v2",
    "localhost:5001",
    "../shared/",
    "pre-commit",
    "pip install",
    "--version",
    "| jq",
)
#: output lines that depend on today's date
VOLATILE = re.compile(r"days old|last import|imported 20\d\d")


def _actual_lines(text: str, replacements: dict[str, str]) -> set[str]:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return {line.rstrip() for line in text.splitlines()}


def test_guide_examples_reproduce(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "w"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    shutil.copy(corpus("dive", "test-docker-image.tar"), work / "test-docker-image.tar")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEWISE_", "HADOLINT_", "XDG_", "DOCKER_", "REGISTRY_AUTH"))
        and k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")
    }
    env.update(
        HOME=str(home), IMAGEWISE_CACHE_DIR=str(tmp_path / "cache"), IMAGEWISE_OFFLINE="1"
    )  # no automatic database updates from the internet
    # the guide was written in /tmp/dg/w against a registry on localhost:5000, from /work/main
    back = {str(work): "/tmp/dg/w", registry.host: "localhost:5000", str(ROOT): "/work/main"}

    last_rc: int | None = None
    replayed = 0
    problems: list[str] = []
    for block in BLOCKS:
        if block.file:
            dest = work / block.file
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text("\n".join(block.lines) + "\n", "utf-8")
            continue
        if block.lang != "console":
            continue
        cwd = work  # a `cd` lasts until the end of its block
        for step in steps(block):
            command = step.command
            if command.startswith("cd "):
                cwd = (cwd / command[3:].strip()).resolve()
                continue
            if command == "echo $?":
                if last_rc is not None and [str(last_rc)] != [e for e in step.expected if e]:
                    problems.append(
                        f"line {block.line}: exit code {last_rc}, the guide says {step.expected}"
                    )
                continue
            if any(s in command for s in NOT_REPLAYED):
                last_rc = None
                continue
            run = subprocess.run(
                ["bash", "-c", command.replace("localhost:5000", registry.host)],
                check=False,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=300,
            )
            replayed += 1
            last_rc = run.returncode
            actual = _actual_lines(run.stdout, back)
            missing = [
                e.rstrip()
                for e in step.expected
                if re.sub(r"[\s│┃]", "", e) not in ("", "...")
                and not VOLATILE.search(e)
                and e.rstrip() not in actual
            ]
            if missing:
                problems.append(
                    f"guide line {block.line}: `{command}` no longer prints:\n    "
                    + "\n    ".join(missing[:8])
                    + "\n  it printed:\n    "
                    + "\n    ".join(run.stdout.splitlines()[:12])
                )
    assert replayed > 40, f"only {replayed} examples were replayed"
    assert not problems, (
        "docs/guide.md examples are out of date (update the outputs shown in "
        "the guide):\n" + "\n".join(problems)
    )
