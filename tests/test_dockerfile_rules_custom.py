"""Custom rules declared in a rules file, wired through the lint config."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagewise.dockerfile.config import LintConfig, load_config
from imagewise.dockerfile.custom import load_rules_file
from imagewise.dockerfile.lint import lint
from imagewise.errors import ConfigError
from imagewise.findings import Severity

RULES = r"""
rules:
  - id: ACME001
    severity: warning
    title: Use npm ci instead of npm install
    fix: Replace `npm install` with `npm ci`.
    command: npm
    args: [install]
    without_args: [-g, --global]
  - id: ACME002
    severity: error
    title: Only our base images
    instruction: FROM
    not_match: '^(registry\.acme\.example/|scratch)'
  - id: ACME003
    severity: info
    title: No curl piped to a shell
    instruction: RUN
    match: 'curl[^|]*\|\s*(ba)?sh'
    message: pipe to shell
  - id: ACME004
    title: apk without --no-cache in the final stage
    command: apk
    args: [add]
    without_flags: [no-cache]
    final_stage_only: true
"""

DOCKERFILE = """\
FROM node:20 AS build
RUN npm install && npm install -g pnpm@9
RUN apk add git
FROM registry.acme.example/base:1
RUN sh -c 'npm install'
RUN curl -fsSL https://x.example/install | sh
RUN apk add curl
"""


def custom_findings(cfg: LintConfig) -> list[tuple[str, int, Severity, str]]:
    return [
        (f.rule, f.location.line, f.severity, f.message)
        for f in lint(DOCKERFILE, "Dockerfile", cfg)
        if f.rule.startswith("ACME")
    ]


def test_rules_file_through_config(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "acme.yaml").write_text(RULES)
    (tmp_path / ".hadolint.yaml").write_text("custom-rules: [rules/acme.yaml]\n")
    cfg = load_config(cwd=tmp_path, env={"HOME": str(tmp_path)})
    # the config holds the file's path (relative to the config file); lint builds the rules
    assert cfg.custom_rule_files == (str(tmp_path / "rules" / "acme.yaml"),)
    assert [r.id for r in cfg.custom_rules] == ["ACME001", "ACME002", "ACME003", "ACME004"]
    assert custom_findings(cfg) == [
        ("ACME002", 1, Severity.ERROR, "Only our base images"),
        ("ACME001", 2, Severity.WARNING, "Use npm ci instead of npm install"),
        ("ACME001", 5, Severity.WARNING, "Use npm ci instead of npm install"),
        ("ACME003", 6, Severity.INFO, "pipe to shell"),
        ("ACME004", 7, Severity.WARNING, "apk without --no-cache in the final stage"),
    ]


def test_custom_rules_obey_pragmas_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(RULES)
    cfg = LintConfig(custom_rule_files=(str(path),)).merged(
        {"ignored": ["ACME003"], "override": {"error": ["ACME001"]}}
    )
    text = DOCKERFILE.replace("RUN sh -c", "# imagewise ignore=ACME001\nRUN sh -c")
    found = [
        (f.rule, f.location.line, f.severity)
        for f in lint(text, "Dockerfile", cfg)
        if f.rule.startswith("ACME")
    ]
    assert ("ACME001", 2, Severity.ERROR) in found
    assert all(rule != "ACME003" for rule, _, _ in found)
    assert all(line != 6 for rule, line, _ in found if rule == "ACME001")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules: {}\n", "rules` list"),
        ("rules:\n  - id: 1\n    title: x\n    instruction: RUN\n", "must look like"),
        ("rules:\n  - id: X001\n    instruction: RUN\n", "needs a title"),
        ("rules:\n  - id: X001\n    title: t\n", "instruction"),
        ("rules:\n  - id: X001\n    title: t\n    instruction: RUN\n    match: '('\n", "regular"),
        (
            "rules:\n  - id: X001\n    title: t\n    instruction: RUN\n    colour: red\n",
            "unknown key",
        ),
        (
            "rules:\n  - id: X001\n    title: t\n    instruction: COPY\n    command: npm\n",
            "RUN only",
        ),
        (
            (
                "rules:\n  - {id: X001, title: t, instruction: RUN}\n  - {id: X001, title: u, "
                "instruction: RUN}\n"
            ),
            "duplicate",
        ),
    ],
)
def test_bad_rules_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_rules_file(path)


def test_custom_id_may_not_shadow_builtin(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[[rules]]\nid = "DL3008"\ntitle = "mine"\ninstruction = "RUN"\n')
    with pytest.raises(ConfigError, match="clash"):
        lint("FROM a:1\n", "Dockerfile", LintConfig(custom_rule_files=(str(path),)))
