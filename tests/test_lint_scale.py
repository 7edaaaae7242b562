"""Lint work grows linearly with the Dockerfile, and each RUN is parsed once.

Timing belongs in benchmarks/lint_scale.py; here the work is counted: the lines of imagewise's
Dockerfile code that run (a trace), for a file and for one four times its size, and the shell
parses per RUN. A scan of the whole file per RUN or per finding (how lint used to ask for the
variables, the SHELL in force and a finding's last line, and fix for ENV names, later apt RUNs
and the WORKDIR in force) makes the count grow sixteen-fold.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from imagewise.dockerfile import context
from imagewise.dockerfile.fix import fix
from imagewise.dockerfile.iw_rules import _base
from imagewise.dockerfile.lint import lint
from imagewise.dockerfile.parser import MAX_DOCKERFILE_BYTES, parse
from imagewise.errors import DockerfileSyntaxError, ImagewiseError

BLOCK = (
    "ENV V{i}=x{i}",
    "RUN pip install pkg{i}==1.{i}",
    "RUN apt-get update && apt-get install -y curl{i}",
    "RUN apt-get install -y tool{i}",
    "RUN rm -rf /tmp/cache{i}",
    'SHELL ["/bin/bash", "-c"]',
    "RUN echo step {i} > /tmp/f{i}",
    "COPY src{i} /app/{i}/",
    "WORKDIR /app/{i}",
    "RUN cd /src/{i} && make",
)


def dockerfile(blocks: int, stages: bool = True) -> str:
    lines = ["FROM debian:12 AS base"]
    for i in range(blocks):
        if stages and i and i % 25 == 0:
            lines.append(f"FROM base AS s{i}")
        lines.extend(line.format(i=i) for line in BLOCK)
    return "\n".join(lines) + "\n"


_SKIP = ("shell.py", "shellprep.py", "words.py")  # the shell model is measured on its own


def traced_lines(fn: Callable[[], Any]) -> int:
    """How many lines of imagewise's Dockerfile code (shell model aside) ``fn`` runs."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        if (
            "imagewise" in name
            and ("dockerfile" in name or name.endswith("findings.py"))
            and not name.endswith(_SKIP)
        ):
            return local
        return None

    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def test_lint_work_is_linear_in_the_file() -> None:
    small, large = dockerfile(15), dockerfile(60)
    lint(small), lint(large)  # the shell parses are cached: count the rest
    n_small = traced_lines(lambda: lint(small))
    n_large = traced_lines(lambda: lint(large))
    assert n_large / n_small < 4 * 1.25, (n_small, n_large)


def test_fix_work_is_linear_in_the_file() -> None:
    small, large = dockerfile(15, stages=False), dockerfile(60, stages=False)
    fix(small), fix(large)
    n_small = traced_lines(lambda: fix(small))
    n_large = traced_lines(lambda: fix(large))
    assert n_large / n_small < 4 * 1.25, (n_small, n_large)


def test_each_run_is_parsed_once_however_many_rules_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = context.parse_shell.__wrapped__  # no cache: every call is a parse

    def counting(text: str) -> Any:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(context, "parse_shell", counting)
    monkeypatch.setattr(_base, "parse_shell", counting)
    text = dockerfile(10)
    runs = sum(1 for ins in parse(text).instructions if ins.keyword == "RUN")
    lint(text)
    assert len(parsed) == runs


def test_a_dockerfile_over_the_limit_is_refused_with_a_clear_error() -> None:
    text = "FROM debian:12\n" + "RUN true\n" * (MAX_DOCKERFILE_BYTES // 9 + 1)
    with pytest.raises(DockerfileSyntaxError) as err:
        lint(text, "big/Dockerfile")
    assert isinstance(err.value, ImagewiseError)
    message = str(err.value)
    assert "big/Dockerfile" in message and "larger than" in message and "MiB" in message


def test_the_cli_refuses_a_file_over_the_limit_and_lints_the_others(tmp_path: Path) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli

    big = tmp_path / "big.Dockerfile"
    big.write_bytes(b"FROM debian:12\n" + b"RUN true\n" * (MAX_DOCKERFILE_BYTES // 9 + 1))
    small = tmp_path / "Dockerfile"
    small.write_text("FROM debian:12\nRUN apt-get update\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["lint", "-f", "json", str(big), str(small)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"imagewise: error: {big}: larger than 8 MiB, the most "
        "imagewise reads as a Dockerfile (is it the right file?)"
    )
    files = {f["file"] for f in json.loads(r.stdout)["findings"]}
    assert files == {str(small)}
