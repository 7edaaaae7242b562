"""``imagewise check`` outputs on the bundled sample image: the HTML report in headless Chromium,
SARIF against the official schema, tty, and the layer cache under concurrent runs."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from test_html_report import browse, chromium, console_messages  # noqa: F401 (fixture)
from test_lint_output import sarif_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("sample") / "image"
    subprocess.run(["imagewise", "sample", str(out)], check=True, capture_output=True)
    db = out.parent / "osv.sqlite"
    subprocess.run(["imagewise", "db", "import", str(ROOT / "examples" / "osv"), "--db", str(db)],
                   check=True, capture_output=True)
    return f"oci:{out}", db


def check(sample: tuple[str, Path], *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    ref, db = sample
    return subprocess.run(["imagewise", "check", ref, "--db", str(db),
                           "--dockerfile", str(ROOT / "examples" / "sample" / "Dockerfile"), *args],
                          capture_output=True, text=True, env=env)


def test_html_renders_without_console_errors(sample, chromium: str, tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "check.html"
    res = check(sample, "--format", "html", "-o", str(page), "--no-cache")
    assert res.returncode == 1 and page.is_file(), res.stderr
    html = page.read_text()
    for text in ("Verdict and scorecard", "FAIL", "CVE-2020-14343", "Image audit", "Dockerfile lint",
                 "Waste and fixes", "CIS-DI-0008"):
        assert text in html, text
    assert "sample-password-123" not in html
    proc = browse(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    assert proc.stdout.count('class="tm') >= 3  # the treemap drew

    shot = tmp_path / "check.png"
    browse(chromium, page, tmp_path, "--window-size=1280,2000", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > 30_000


def test_sarif_validates(sample) -> None:
    res = check(sample, "--format", "sarif", "--no-cache")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, sarif_schema())
    results = doc["runs"][0]["results"]
    rules = {r["ruleId"] for r in results}
    assert {"CIS-DI-0001", "DL3008", "CVE-2020-14343"} <= rules
    linked = [r for r in results if r["ruleId"] == "CIS-DI-0008"][0]
    region = linked["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 10  # COPY --chmod=4755 helper in examples/sample/Dockerfile


def test_tty_lists_scorecard_and_fixes(sample) -> None:
    res = check(sample, "--no-cache")
    assert res.returncode == 1
    out = res.stdout
    assert "verdict: FAIL" in out and "Scorecard" in out
    for area in ("build", "security", "performance", "operations"):
        assert area in out
    assert "CVE-2020-14343" in out and "\x1b[" not in out  # no colour when not a terminal


def test_policy_off_and_passing_policy(sample, tmp_path: Path) -> None:
    policy = tmp_path / "lenient.yaml"
    policy.write_text(
        "security_baseline: {require_non_root: false, forbid_secrets: false, "
        "max_vulnerability_severity: critical, require_pinned_base: false}\n"
        "optimization: {min_efficiency: 0.5, forbid_caches: false}\n"
        "labels: {required: []}\ntags: {forbid_latest: false, allowed_patterns: []}\n"
        "rules: {CIS-DI-0010: off, DKL-DI-0005: off, IW109: off, DL3064: off, CIS-DI-0001: off}\n")
    ref, db = sample
    res = subprocess.run(["imagewise", "check", ref, "--policy", str(policy), "--db", str(db),
                          "--format", "json", "--no-cache"], capture_output=True, text=True)
    doc = json.loads(res.stdout)
    assert res.returncode == (0 if doc["policy"]["passed"] else 1)
    rules = {v["rule"] for v in doc["policy"]["violations"]}
    assert not rules & {"security_baseline.require_non_root", "labels.required", "CIS-DI-0010"}


def test_concurrent_runs_share_the_layer_cache(sample, tmp_path: Path) -> None:
    env = dict(os.environ, IMAGEWISE_CACHE_DIR=str(tmp_path / "cache"))
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: check(sample, "--format", "json", env=env), range(3)))
    docs = [json.loads(r.stdout) for r in runs]
    for d in docs[1:]:
        for key in ("audit", "secrets", "vulnerabilities", "packages", "score"):
            assert d[key] == docs[0][key], key
    again = json.loads(check(sample, "--format", "json", env=env).stdout)
    assert again["timing"]["cached_layers"] == again["image"]["layers"]
    assert again["audit"] == docs[0]["audit"]
