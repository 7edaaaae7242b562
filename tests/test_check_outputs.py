"""``imagewise check`` outputs on the bundled sample image: the HTML report in headless Chromium,
SARIF against the official schema, tty, and the layer cache under concurrent runs."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from browser import browse, console_messages, rule_lines
from sarif_support import sarif_schema

from imagewise.policy.model import default_policy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("sample") / "image"
    subprocess.run(["imagewise", "sample", str(out)], check=True, capture_output=True)
    db = out.parent / "osv.sqlite"
    subprocess.run(
        ["imagewise", "db", "import", str(ROOT / "examples" / "osv"), "--db", str(db)],
        check=True,
        capture_output=True,
    )
    return f"oci:{out}", db


def check(
    sample: tuple[str, Path], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    ref, db = sample
    return subprocess.run(
        [
            "imagewise",
            "check",
            ref,
            "--db",
            str(db),
            "--dockerfile",
            str(ROOT / "examples" / "sample" / "Dockerfile"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
    )


def test_html_renders_without_console_errors(sample, chromium: str, tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "check.html"
    res = check(sample, "--format", "html", "-o", str(page), "--no-cache")
    assert res.returncode == 1 and page.is_file(), res.stderr
    html = page.read_text()
    for text in (
        "Verdict and scorecard",
        "FAIL",
        "CVE-2020-14343",
        "Image audit",
        "Dockerfile lint",
        "Waste and fixes",
        "CIS-DI-0008",
    ):
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
    # every rule's metadata comes from the one rule table, image checks included
    from imagewise.rules import lookup

    meta = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    info = lookup("CIS-DI-0001")
    assert info is not None and info.rationale
    assert meta["CIS-DI-0001"]["fullDescription"]["text"] == info.rationale
    assert "audit" in meta["CIS-DI-0001"]["properties"]["tags"]
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
        "rules: {CIS-DI-0010: off, DKL-DI-0005: off, IW109: off, DL3064: off, CIS-DI-0001: off}\n"
    )
    ref, db = sample
    res = subprocess.run(
        [
            "imagewise",
            "check",
            ref,
            "--policy",
            str(policy),
            "--db",
            str(db),
            "--format",
            "json",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
    )
    doc = json.loads(res.stdout)
    assert doc["policy"]["violations"] == []
    # without --dockerfile the default allowed_registries gate cannot be judged: not a PASS
    assert res.returncode == 1 and doc["policy"]["status"] == "INCOMPLETE"
    assert [u["gate"] for u in doc["policy"]["not_checked"]] == [
        "security_baseline.allowed_registries"
    ]
    policy.write_text(
        policy.read_text().replace(
            "require_pinned_base: false", "require_pinned_base: false, allowed_registries: []"
        )
    )
    res = subprocess.run(
        [
            "imagewise",
            "check",
            ref,
            "--policy",
            str(policy),
            "--db",
            str(db),
            "--format",
            "json",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["policy"]["status"] == "PASS", doc["policy"]


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


# -- a gate whose input is missing: INCOMPLETE in every output ----------------------------------

ONLY_VULNS = "extends: none\nsecurity_baseline: {max_vulnerability_severity: critical}\n"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["imagewise", "check", *args], capture_output=True, text=True, env=env, check=False
    )


def test_no_database_is_incomplete_not_pass_in_every_format(sample, tmp_path: Path) -> None:
    ref, _ = sample
    policy = tmp_path / "p.yaml"
    policy.write_text(ONLY_VULNS)
    base = [ref, "--policy", str(policy), "--db", str(tmp_path / "none.sqlite")]
    tty = _run(*base)
    assert tty.returncode == 1, tty.stderr
    assert "verdict: INCOMPLETE" in tty.stdout and "verdict: PASS" not in tty.stdout
    assert "security_baseline.max_vulnerability_severity" in tty.stdout
    assert "Vulnerabilities: not checked" in tty.stdout
    # the build area did not run (no --dockerfile): "not checked", not "A 100"
    build = next(line for line in tty.stdout.splitlines() if line.startswith("build"))
    assert "not checked" in build and " A " not in build and "100" not in build

    doc = json.loads(_run(*base, "--format", "json").stdout)
    assert doc["policy"]["status"] == "INCOMPLETE" and doc["policy"]["passed"] is False
    assert [u["gate"] for u in doc["policy"]["not_checked"]] == [
        "security_baseline.max_vulnerability_severity"
    ]
    assert doc["score"]["build"] == {
        "score": None,
        "grade": "-",
        "checked": False,
        "not_checked": [("Dockerfile lint: no Dockerfile given (--dockerfile)")],
        "top": [],
    }
    assert any("no database" in line for line in doc["not_checked"])

    sarif = _run(*base, "--format", "sarif")
    assert sarif.returncode == 1
    run = json.loads(sarif.stdout)["runs"][0]
    jsonschema.validate(json.loads(sarif.stdout), sarif_schema())
    assert run["properties"]["verdict"] == "INCOMPLETE"
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any("max_vulnerability_severity" in n and "no database" in n for n in notes)

    page = tmp_path / "r.html"
    html = _run(*base, "--format", "html", "-o", str(page))
    assert html.returncode == 1 and "(INCOMPLETE)" in html.stderr
    text = page.read_text()
    assert "INCOMPLETE" in text and "Vulnerabilities (not checked)" in text
    assert (
        "Vulnerabilities (0)" not in text and "nothing to fix" not in text.split('id="summary"')[0]
    )
    assert "Dockerfile lint (not checked)" in text

    allowed = _run(*base, "--allow-incomplete", "--format", "json")
    assert allowed.returncode == 0
    assert json.loads(allowed.stdout)["policy"]["status"] == "INCOMPLETE"


def test_a_complete_passing_check_passes(sample, tmp_path: Path) -> None:
    ref, db = sample
    policy = tmp_path / "p.yaml"
    policy.write_text(ONLY_VULNS)
    res = _run(
        ref,
        "--policy",
        str(policy),
        "--db",
        str(db),
        "--dockerfile",
        str(ROOT / "examples" / "sample" / "Dockerfile"),
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stdout[-2000:]
    doc = json.loads(res.stdout)
    assert doc["policy"]["status"] == "PASS" and doc["policy"]["not_checked"] == []
    assert doc["not_checked"] == [] and doc["score"]["build"]["checked"] is True


# -- warnings go to standard error, and into the HTML page ---------------------------------------


@pytest.mark.parametrize("fmt", ["tty", "json", "sarif", "html"])
def test_warnings_go_to_stderr_in_every_format(sample, fmt: str, tmp_path: Path) -> None:
    old = "vulnerability data is"  # examples/osv is older than the 7-day limit
    res = check(sample, "--format", fmt)
    assert f"imagewise: warning: {old}" in res.stderr, res.stderr
    if fmt == "tty":
        assert old not in res.stdout
    out = tmp_path / f"r.{fmt}"
    res = check(sample, "--format", fmt, "-o", str(out))
    assert f"imagewise: warning: {old}" in res.stderr, res.stderr
    if fmt == "html":
        assert re.search(
            r'class="warnings"><p>warning: vulnerability data is \d+ days old', out.read_text()
        )


# -- the terminal's width --------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 132])
def test_tty_follows_the_terminal_width(sample, columns: int) -> None:
    env = dict(os.environ, COLUMNS=str(columns))
    res = check(sample, env=env)
    lines = res.stdout.splitlines()
    assert "Scorecard" in res.stdout
    too_long = [line for line in lines if len(line) > columns]
    assert not too_long, too_long[:3]
    assert max(len(line) for line in lines) > columns - 10  # tables use the width they have
    # the policy violations table folds long rule ids and places instead of cutting them
    table = res.stdout.split("Policy violations", 1)[1].split("\n\n", 1)[0]
    assert "…" not in table
    rules = "".join(line.split("│")[0].strip() for line in table.splitlines()[3:])
    assert "security_baseline.max_vulnerability_severity" in rules


# -- one policy list for the base image's registry -------------------------------------------------


def test_iw102_reads_the_policy_allowed_registries(sample, tmp_path: Path) -> None:
    ref, db = sample
    dockerfile = tmp_path / "Dockerfile"
    text = (ROOT / "examples" / "sample" / "Dockerfile").read_text()
    dockerfile.write_text(
        text.replace("FROM debian:12-slim", "FROM cgr.dev/chainguard/python:3.12")
    )
    res = _run(ref, "--dockerfile", str(dockerfile), "--db", str(db), "--format", "json")
    doc = json.loads(res.stdout)
    policy = default_policy().security_baseline.allowed_registries
    iw102 = [f for f in doc["lint"]["findings"] if f["rule"] == "IW102"]
    assert iw102, "cgr.dev is not in the default policy's allowed_registries"
    assert iw102[0]["message"].endswith(f"({', '.join(policy)})")
    gate = [
        v
        for v in doc["policy"]["violations"]
        if v["rule"] == "security_baseline.allowed_registries"
    ]
    assert gate and gate[0]["message"].endswith(f"({', '.join(policy)})")
    # a policy's own list is the rule's too
    mine = tmp_path / "p.yaml"
    mine.write_text("security_baseline: {allowed_registries: ['cgr.dev', 'docker.io']}\n")
    doc = json.loads(
        _run(
            ref,
            "--dockerfile",
            str(dockerfile),
            "--db",
            str(db),
            "--policy",
            str(mine),
            "--format",
            "json",
        ).stdout
    )
    assert not [f for f in doc["lint"]["findings"] if f["rule"] == "IW102"]
    assert "security_baseline.allowed_registries" not in {
        v["rule"] for v in doc["policy"]["violations"]
    }
    # and an empty list allows every registry
    mine.write_text("security_baseline: {allowed_registries: []}\n")
    doc = json.loads(
        _run(
            ref,
            "--dockerfile",
            str(dockerfile),
            "--db",
            str(db),
            "--policy",
            str(mine),
            "--format",
            "json",
        ).stdout
    )
    assert not [f for f in doc["lint"]["findings"] if f["rule"] == "IW102"]


# -- one problem, one finding, in every output ------------------------------------------------------


def _all_findings(doc: dict) -> list[dict]:
    return [*doc["lint"]["findings"], *doc["audit"], *doc["secrets"], *doc["analysis"]["leftovers"]]


def test_the_same_problem_is_reported_once_in_every_format(sample, tmp_path: Path) -> None:
    doc = json.loads(check(sample, "--format", "json").stdout)
    found = _all_findings(doc)
    rules = [f["rule"] for f in found]
    for gone in ("IW109", "DL3064", "DL3009", "DKL-DI-0005", "IW-WASTE-APT-ARCHIVES", "IW103"):
        assert gone not in rules, gone
    env = [f for f in found if f["rule"] == "CIS-DI-0010" and "DB_PASSWORD" in f["message"]]
    assert len(env) == 1 and {"IW109", "DL3064"} <= set(env[0]["also"])
    apt = [f for f in found if "DKL-DI-0005" in (f["rule"], *f.get("also", ()))]
    assert len(apt) == 1 and apt[0]["rule"] == "IW-WASTE-APT-LISTS"
    assert set(apt[0]["also"]) == {"DL3009", "DKL-DI-0005", "IW-WASTE-APT-ARCHIVES"}
    assert apt[0]["dockerfile_line"] == 6 and "apt-get clean" in apt[0]["fix"]
    violations = [v["rule"] for v in doc["policy"]["violations"]]
    assert "IW109" not in violations and violations.count("optimization.forbid_caches") == 1
    top = [f["rule"] for f in doc["score"]["security"]["top"]]
    assert top.count("CIS-DI-0010") + top.count("IW109") == 1

    sarif = json.loads(check(sample, "--format", "sarif").stdout)
    ids = [r["ruleId"] for r in sarif["runs"][0]["results"]]
    assert "IW109" not in ids and "DKL-DI-0005" not in ids and ids.count("IW-WASTE-APT-LISTS") == 1
    text = next(
        r["message"]["text"]
        for r in sarif["runs"][0]["results"]
        if r["ruleId"] == "IW-WASTE-APT-LISTS"
    )
    assert "also reported as" in text and "DKL-DI-0005" in text

    tty = check(sample).stdout
    assert "IW109" in tty and "also reported as" in tty  # named once, as another rule of a finding
    assert not re.search(r"│ IW109 ", tty)

    page = tmp_path / "r.html"
    check(sample, "--format", "html", "-o", str(page))
    html = page.read_text()
    assert '<span class="rid">IW109</span>' in html and '<td><span class="rid">IW109' not in html
    assert html.count("also reported as") >= 2


def test_html_rule_ids_do_not_wrap(sample, chromium: str, tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "check.html"
    check(sample, "--format", "html", "-o", str(page))
    html = page.read_text()
    ids = [
        "DKL-DI-0005",
        "CIS-DI-0010",
        "CIS-DI-0001",
        "IW-IMG-003",
        "DKL-LI-0003",
        "secret/private-key",
        "IW-WASTE-OVERWRITTEN",
        "security_baseline.max_vulnerability_severity",
    ]
    for width in (800, 1280):
        got = rule_lines(chromium, html, tmp_path, ids, "main", width)
        assert {i for i, _ in got} == set(ids)
        assert all(n == 1 for _, n in got), (width, [g for g in got if g[1] != 1])


def test_max_ignore_days_judges_the_ignore_entries_in_force(sample, tmp_path: Path) -> None:
    ignores = tmp_path / ".imagewise-ignore.yaml"
    ignores.write_text(
        "ignore:\n  - id: CVE-2023-5678\n    reason: not reachable\n"
        "  - id: CVE-2020-28493\n    expires: 2099-01-01\n"
    )
    doc = json.loads(check(sample, "--ignore-file", str(ignores), "--format", "json").stdout)
    msgs = [
        v["message"]
        for v in doc["policy"]["violations"]
        if v["rule"] == "security_baseline.max_ignore_days"
    ]
    assert len(msgs) == 2 and "CVE-2023-5678 never expires" in msgs[0]
    assert "CVE-2020-28493 expires 2099-01-01" in msgs[1]
    assert "CVE-2023-5678" not in {v["id"] for v in doc["vulnerabilities"]}  # still applied
    policy = tmp_path / "p.yaml"
    policy.write_text("security_baseline: {max_ignore_days: null}\n")
    doc = json.loads(
        check(
            sample, "--ignore-file", str(ignores), "--policy", str(policy), "--format", "json"
        ).stdout
    )
    assert "security_baseline.max_ignore_days" not in {
        v["rule"] for v in doc["policy"]["violations"]
    }
