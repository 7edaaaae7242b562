"""The one rule table (``imagewise.rules.catalog``): every kind declared one way, and `rules`,
`explain`, docs/rules.md and SARIF metadata all read it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import CliRunner
from startup_support import imported

from imagewise.cli import docs_gen
from imagewise.cli.main import cli
from imagewise.dockerfile import fix as fix_module
from imagewise.dockerfile.config import LintConfig, load_config
from imagewise.dockerfile.rules import REGISTRY, Hit, Rule, register
from imagewise.findings import RuleInfo, Severity
from imagewise.rules import KINDS, LINT_KINDS, catalog, lookup

ROOT = Path(__file__).resolve().parents[1]
AREAS = {"build", "security", "performance", "operations"}


def run(args: list[str], cwd: Path) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return res.exit_code, res.stdout, res.stderr


def test_every_rule_has_id_title_severity_area_kind_and_docs() -> None:
    infos = catalog()
    assert {i.kind for i in infos} == set(KINDS) - {"custom"}  # custom ones come from a config
    page = (ROOT / "docs" / "rules.md").read_text("utf-8")
    ids = [i.id for i in infos]
    assert len(ids) == len(set(ids)), "a rule id is declared twice"
    for i in infos:
        assert i.id and i.title and isinstance(i.severity, Severity), i
        assert i.area in AREAS, i
        assert i.source, i
        assert i.rationale or i.fix, i  # something to explain
        assert i.docs.startswith("docs/rules.md#")
        assert f'<a id="{i.docs.partition("#")[2]}"></a>' in page, i.id


def test_each_kind_comes_from_its_own_table() -> None:
    by_kind = {k: {i.id for i in catalog(kinds=[k])} for k in KINDS}
    assert "DL3008" in by_kind["dockerfile"] and "IW105" in by_kind["dockerfile"]
    assert "CIS-DI-0001" in by_kind["audit"]
    assert "IW-WASTE-DELETED" in by_kind["waste"]
    assert "secret/aws-access-key-id" in by_kind["secret"]
    assert by_kind["custom"] == set()
    with pytest.raises(ValueError, match="unknown rule kind"):
        catalog(kinds=["nonsense"])


def test_fixers_are_declared_on_their_rules() -> None:
    declared = {i.id for i in catalog(kinds=["dockerfile"]) if i.fixer}
    assert declared == fix_module.FIXABLE
    assert {"DL3009", "DL3015", "IW105"} <= declared
    for rid in declared:
        module, _, name = lookup(rid).fixer.partition(":")  # type: ignore[union-attr]
        assert module == "imagewise.dockerfile.fix" and callable(getattr(fix_module, name))
    # only the declared fixers run: a fix limited to a rule without one changes nothing
    text = "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n"
    assert fix_module.fix(text, rules=["DL3008"]).fixed == text
    assert "--no-install-recommends" in fix_module.fix(text, rules=["DL3015"]).fixed


@pytest.fixture()
def extra_rule() -> Iterator[RuleInfo]:
    """A rule registered by the test (as a plugin would), removed afterwards."""
    info = RuleInfo(
        "IW990",
        Severity.WARNING,
        "Test rule registered at run time",
        "Only the test declares it.",
        "Nothing to fix.",
        "operations",
        "test-plugin",
        "dockerfile",
    )
    register(Rule(info, lambda ctx: iter([Hit(1, "the test rule fired")])))
    try:
        yield info
    finally:
        del REGISTRY["IW990"]


def test_a_registered_rule_shows_in_rules_explain_docs_and_sarif(
    extra_rule: RuleInfo, tmp_path: Path
) -> None:
    assert lookup("iw990") == extra_rule

    code, out, _ = run(["rules", "--format", "json"], tmp_path)
    assert code == 0
    listed = {r["id"]: r for r in json.loads(out)["rules"]}
    assert listed["IW990"] == {
        "id": "IW990",
        "severity": "warning",
        "title": "Test rule registered at run time",
        "area": "operations",
        "source": "test-plugin",
        "rationale": "Only the test declares it.",
        "fix": "Nothing to fix.",
        "kind": "dockerfile",
        "fixable": False,
        "docs": "docs/rules.md#iw990",
    }

    code, out, _ = run(["explain", "IW990"], tmp_path)
    assert code == 0 and "IW990: Test rule registered at run time" in out
    assert "Only the test declares it." in out and "docs/rules.md#iw990" in out

    page = docs_gen.render(docs_gen.rules_json())
    assert "### IW990" in page and "**Test rule registered at run time**" in page

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    code, out, _ = run(["lint", "--no-fail", "--format", "sarif", "Dockerfile"], tmp_path)
    assert code == 0
    driver = json.loads(out)["runs"][0]["tool"]["driver"]
    meta = {r["id"]: r for r in driver["rules"]}["IW990"]
    assert meta["shortDescription"]["text"] == "Test rule registered at run time"
    assert meta["fullDescription"]["text"] == "Only the test declares it."
    assert "operations" in meta["properties"]["tags"]


def test_config_carries_rule_file_paths_and_lint_builds_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "acme.yaml"
    rules.write_text(
        "rules:\n  - {id: ACME001, title: no curl, instruction: RUN, "
        "match: curl, fix: use the package}\n"
    )
    (tmp_path / ".hadolint.yaml").write_text("custom-rules: [acme.yaml]\n")
    cfg = load_config(cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert cfg.custom_rule_files == (str(rules),)
    assert all(isinstance(p, str) for p in cfg.custom_rule_files)
    assert [i.id for i in catalog(cfg, kinds=["custom"])] == ["ACME001"]
    assert catalog(cfg, kinds=["custom"])[0].kind == "custom"
    # the rules are built from the file where they are used: a changed file is read again
    rules.write_text(
        "rules:\n  - {id: ACME002, title: no wget, instruction: RUN, match: wget, "
        "fix: use the package, severity: error}\n"
    )
    os.utime(rules, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert [i.id for i in catalog(cfg, kinds=["custom"])] == ["ACME002"]
    assert [i.id for i in catalog(LintConfig(), kinds=["custom"])] == []

    code, out, _ = run(["rules", "--format", "json", "--rules", str(rules)], tmp_path)
    assert code == 0
    assert {"id": "ACME002", "kind": "custom", "severity": "error"}.items() <= {
        r["id"]: r for r in json.loads(out)["rules"]
    }["ACME002"].items()


def test_lint_loads_only_the_dockerfile_tables(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:12\nRUN apt-get update\n")
    for fmt in ("tty", "sarif"):
        code, modules = imported(["lint", "--no-fail", "--format", fmt, str(df)], tmp_path)
        assert code == 0
        image_tables = {
            "imagewise.audit.checks",
            "imagewise.analysis.attribution",
            "imagewise.secrets.rules",
        }
        assert not image_tables & modules, (fmt, sorted(image_tables & modules))
    assert set(LINT_KINDS) == {"dockerfile", "custom"}


CONCURRENT = """
import sys, threading
from imagewise.rules import catalog
barrier = threading.Barrier(8)
out = []
def work():
    barrier.wait()
    out.append(tuple(i.id for i in catalog()))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert len(out) == 8 and len(set(out)) == 1, [len(o) for o in out]
print(len(out[0]))
"""


def test_first_use_from_many_threads_sees_the_whole_table() -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", CONCURRENT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) == len(catalog())
