"""hadolint's own rule cases (../shared/corpora/hadolint) run against our linter.

Every case must hold except the ones in KNOWN_FAILURES (each with its reason); a listed case that
starts to hold fails the test too, so the list stays true. The pass rate must be >= 97%.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus

from imagewise.dockerfile.config import LintConfig
from imagewise.dockerfile.lint import lint
from imagewise.errors import DockerfileSyntaxError

FILES = ("cases.jsonl", "cases_onbuild.jsonl", "cases_config.jsonl")
NO_SHELLCHECK = "ShellCheck (SCxxxx) is not reimplemented; imagewise emits no SC findings"
KNOWN_FAILURES: dict[str, str] = {
    "cases:test/Hadolint/Rule/ShellcheckSpec.hs:16": NO_SHELLCHECK,
    "cases:test/Hadolint/Rule/ShellcheckSpec.hs:49": NO_SHELLCHECK,
    "cases:test/Hadolint/Rule/ShellcheckSpec.hs:77": NO_SHELLCHECK,
}
_LABEL_TYPES = {
    "RawText": "text",
    "Url": "url",
    "Rfc3339": "rfc3339",
    "Spdx": "spdx",
    "GitHash": "hash",
    "SemVer": "semver",
    "Email": "email",
}


@dataclass(frozen=True)
class Case:
    id: str
    row: dict[str, Any]


def load_cases() -> list[Case]:
    root = corpus("hadolint")
    out = []
    for name in FILES:
        for raw in (root / name).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                row = json.loads(raw)
                out.append(Case(f"{Path(name).stem}:{row['source']}:{row['line']}", row))
    return out


def config_for(haskell: str | None) -> LintConfig:
    """Translate the Haskell config expression of a case into our config document."""
    if not haskell:
        return LintConfig()
    doc: dict[str, Any] = {}
    m = re.search(r"allowedRegistries\s*=\s*\[([^\]]*)\]", haskell)
    if m:
        doc["trustedRegistries"] = re.findall(r'"([^"]*)"', m.group(1))
    m = re.search(r"ignoreRules\s*=\s*\[([^\]]*)\]", haskell)
    if m:
        doc["ignored"] = re.findall(r'"([^"]*)"', m.group(1))
    m = re.search(r"labelSchema\s*=\s*Map\.fromList\s*\[(.*?)\]\s*(,|\})", haskell)
    if m:
        doc["label-schema"] = {
            k: _LABEL_TYPES[t]
            for k, t in re.findall(r'\("([^"]+)",\s*(?:Rule\.)?(\w+)\)', m.group(1))
        }
    if re.search(r"strictLabels\s*=\s*True", haskell):
        doc["strict-labels"] = True
    return LintConfig().merged(doc, "case")


def evaluate(case: Case) -> tuple[bool, str]:
    row = case.row
    text = row.get("dockerfile_onbuild_text") if row.get("onbuild") else row["dockerfile"]
    try:
        findings = lint(
            text, "Dockerfile", config_for(row.get("config_haskell")), keep_ignored=True
        )
    except DockerfileSyntaxError as e:
        return False, f"syntax error: {e}"
    rule = row["rule"]
    if rule == "SC*":
        n = sum(1 for f in findings if f.rule.startswith("SC"))
    else:
        n = sum(1 for f in findings if f.rule == rule)
    want_fail = row["expect"] == "fail"
    count = row.get("count")
    if row["helper"] == "assertChecks/failsWith" and count is not None:
        ok = n == count
    elif want_fail:
        ok = n >= 1 if count in (None, 0) else n == count
    else:
        ok = n == 0
    return ok, f"{rule}: expected {row['expect']} (count={count}), got {n} hit(s)"


def run_all() -> tuple[list[Case], dict[str, str]]:
    cases = load_cases()
    failures = {}
    for case in cases:
        ok, detail = evaluate(case)
        if not ok:
            failures[case.id] = detail
    return cases, failures


@pytest.fixture(scope="module")
def results() -> tuple[list[Case], dict[str, str]]:
    return run_all()


def test_case_ids_are_unique(results: tuple[list[Case], dict[str, str]]) -> None:
    cases, _ = results
    assert len({c.id for c in cases}) == len(cases)
    assert len(cases) >= 500


def test_pass_rate_at_least_97_percent(results: tuple[list[Case], dict[str, str]]) -> None:
    cases, failures = results
    rate = 1 - len(failures) / len(cases)
    print(f"\nhadolint conformance: {len(cases) - len(failures)}/{len(cases)} = {rate:.2%}")
    assert rate >= 0.97


def test_failures_are_exactly_the_known_ones(results: tuple[list[Case], dict[str, str]]) -> None:
    _, failures = results
    unexpected = {k: v for k, v in failures.items() if k not in KNOWN_FAILURES}
    now_passing = sorted(set(KNOWN_FAILURES) - set(failures))
    assert not unexpected, "cases failing that are not listed:\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(unexpected.items())
    )
    assert not now_passing, f"listed as failing but now pass (remove them): {now_passing}"


if __name__ == "__main__":  # python tests/test_hadolint_conformance.py: print every failure
    all_cases, fails = run_all()
    by_id = {c.id: c for c in all_cases}
    for cid, why in sorted(fails.items()):
        print(
            cid,
            "|",
            why,
            "|",
            repr(by_id[cid].row.get("dockerfile_onbuild_text") or by_id[cid].row["dockerfile"])[
                :200
            ],
        )
    print(f"{len(all_cases) - len(fails)}/{len(all_cases)}")
