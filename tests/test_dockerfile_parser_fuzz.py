"""Mutation fuzzing of the parser and the whole linter over the corpus Dockerfiles.

Bounded for CI (a few seconds); the acceptance run is
``IMAGEWISE_FUZZ_SECONDS=600 pytest tests/test_dockerfile_parser_fuzz.py -s``.
The only exception allowed out of parse/lint is ``DockerfileSyntaxError``.
"""

from __future__ import annotations

import os
import random
import time
import traceback

from conftest import corpus

from imagewise.dockerfile import parse
from imagewise.dockerfile.lint import lint
from imagewise.dockerfile.shell import parse_shell
from imagewise.errors import DockerfileSyntaxError

TOKENS = [
    "\\\n",
    "`\n",
    "<<EOF\n",
    "<<-'EOT' ",
    "\nEOF\n",
    '"',
    "'",
    "${",
    "}",
    "$(",
    "[",
    "]",
    "\n# escape=`\n",
    "\n# hadolint ignore=DL3008\n",
    "ONBUILD ",
    "--mount=type=cache,",
    "--from=0 ",
    " AS ",
    "\nFROM ",
    "\nRUN ",
    "\nCOPY ",
    "\nENV A=",
    "|",
    "&&",
    ";",
    "\t",
    "\r\n",
    "\ufeff",
    "\x00",
    "#",
    "=",
    "-",
    " --",
    "\\",
    "\n\n",
]


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        pos = rng.randint(0, len(text))
        if op == 0:
            text = text[:pos] + rng.choice(TOKENS) + text[pos:]
        elif op == 1 and text:
            end = min(len(text), pos + rng.randint(1, 40))
            text = text[:pos] + text[end:]
        elif op == 2 and text:
            lines = text.splitlines(keepends=True)
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            text = "".join(lines)
        else:
            text = text[:pos] + chr(rng.randint(0, 0x2FF)) + text[pos:]
    return text


def test_mutated_corpus_never_crashes_parser_or_linter() -> None:
    root = corpus("dockerfiles")
    seeds = [
        p.read_text(encoding="utf-8")
        for p in sorted(root.iterdir())
        if p.is_file() and p.suffix not in (".tsv", ".md")
    ]
    budget = float(os.environ.get("IMAGEWISE_FUZZ_SECONDS", "4"))
    rng = random.Random(int(os.environ.get("IMAGEWISE_FUZZ_SEED", "20261127")))
    deadline = time.monotonic() + budget
    runs = rejected = 0
    while time.monotonic() < deadline:
        text = mutate(rng, rng.choice(seeds))
        runs += 1
        try:
            parse(text)
            lint(text)
        except DockerfileSyntaxError:
            rejected += 1
        except Exception:  # noqa: BLE001 - any other exception is the bug we are hunting
            raise AssertionError(f"crash on input {text!r}\n{traceback.format_exc()}") from None
    print(f"\nfuzz: {runs} mutated Dockerfiles, {rejected} rejected with a syntax error")
    assert runs > 0


SHELL_TOKENS = [
    " case $x in ",
    " a) ",
    " *) ",
    ";;",
    " esac",
    "$((",
    "))",
    "$(",
    ")",
    "(",
    "[[",
    "]]",
    "&&",
    "||",
    "|",
    ";",
    "'",
    '"',
    "\\",
    "`",
    "\n",
    " <<EOF\n",
    "{ ",
    " }",
    "${a%%-*}",
    " if ",
    " then ",
    " fi ",
    " for i in x; do ",
    " done",
]


def test_mutated_run_scripts_never_crash_the_shell_model() -> None:
    root = corpus("dockerfiles")
    scripts = [
        ins.effective.shell_script
        for p in sorted(root.iterdir())
        if p.is_file() and p.suffix not in (".tsv", ".md")
        for ins in parse(p.read_text(encoding="utf-8")).instructions
        if ins.effective.keyword == "RUN" and ins.effective.shell_script
    ]
    budget = float(os.environ.get("IMAGEWISE_FUZZ_SECONDS", "4")) / 2
    rng = random.Random(int(os.environ.get("IMAGEWISE_FUZZ_SEED", "20261127")) + 1)
    deadline = time.monotonic() + budget
    runs = 0
    while time.monotonic() < deadline:
        text = rng.choice(scripts)
        for _ in range(rng.randint(1, 5)):
            pos = rng.randint(0, len(text))
            text = text[:pos] + rng.choice(SHELL_TOKENS) + text[pos:]
        parse_shell(text)  # must not raise
        runs += 1
    print(f"\nshell fuzz: {runs} mutated RUN scripts")
    assert runs > 0
