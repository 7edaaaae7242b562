"""After a fix the fixed rules no longer fire (checked with the real lint engine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fix_support import corpus_dockerfiles, variants

from imagewise.dockerfile.fix import FIXABLE, fix
from imagewise.dockerfile.lint import lint
from imagewise.dockerfile.model import Dockerfile, Instruction
from imagewise.dockerfile.parser import parse

BAD = """FROM python:3.12 AS app
WORKDIR /srv
RUN apt-get update
RUN apt-get install -y curl
RUN apk add git
RUN pip install flask
ADD app.py /srv/
RUN cd sub && make
CMD python app.py
"""


@pytest.mark.parametrize("rule", sorted(FIXABLE - {"IW112"}))
def test_each_fix_silences_its_rule(rule: str) -> None:
    if rule == "DL3009":
        assert lint(BAD, only=[rule]) or lint(fix(BAD, rules=["IW105"]).fixed, only=[rule])
    out = fix(BAD).fixed
    assert lint(out, only=[rule]) == [], (rule, out)
    assert parse(out).stages[0].base_image == "python:3.12"


def test_npm_ci_silences_iw112(tmp_path: Path) -> None:
    (tmp_path / "package-lock.json").write_text("{}")
    (tmp_path / ".dockerignore").write_text(".git\nnode_modules\n")
    path = tmp_path / "Dockerfile"
    path.write_text("FROM node:22\nCOPY package*.json ./\nRUN npm install\n")
    assert [f.rule for f in lint(path.read_text(), str(path), only=["IW112"])] == ["IW112"]
    path.write_text(fix(path.read_text(), str(path), dockerfile_dir=str(tmp_path)).fixed)
    assert lint(path.read_text(), str(path), only=["IW112"]) == []


# Where the fixer deliberately stops short, the rule may keep firing; each such case has a reason
# visible in the instruction itself.
_RESIDUAL_REASON = {
    "DL3019": "--no-network",  # apk reads its local index: --no-cache would break it
    "DL3015": "install -s",  # a simulated install, used as a probe
    "DL3009": "dist-clean",  # the lists are removed, by apt-get dist-clean
    "DL3025": "windows",  # not a POSIX shell
}


def _residual_ok(rule: str, ins: Instruction, df: Dockerfile, name: str) -> bool:
    if rule == "DL3003":
        # only a leading `cd DIR &&` with a WORKDIR to return to is rewritten
        leading = re.match(r"RUN\s+cd\s+\S+\s*&&", ins.original) is not None
        workdir = any(i.keyword == "WORKDIR" and i.start_line < ins.start_line for i in df)
        return not (leading and workdir)
    reason = _RESIDUAL_REASON.get(rule, "\0")
    return reason in ins.original or reason in name


def test_fixed_rules_stop_firing_over_corpus() -> None:
    changed = 0
    for path in corpus_dockerfiles():
        text = variants(path.read_text(encoding="utf-8"))[1]
        for rule in sorted(FIXABLE - {"IW112"}):
            before = lint(text, path.name, only=[rule])
            result = fix(text, path.name, rules=[rule])
            after = lint(result.fixed, path.name, only=[rule])
            changed += result.changed
            if result.changed:
                assert len(after) <= len(before), (rule, path.name)
            df = parse(result.fixed, path.name)
            for f in after:
                ins = next(i for i in df.instructions if i.start_line == f.location.line)
                assert _residual_ok(rule, ins, df, path.name), (rule, path.name, f)
    assert changed >= 200
