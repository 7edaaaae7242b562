"""`imagewise lint`, `rules` and `explain` through the real CLI: formats, exit codes, fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from cli_runner import CliRunner
from sarif_support import sarif_schema

from imagewise.cli.main import cli

BAD = "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\nADD app.py /app/\n"
CLEAN = 'FROM debian:12.5\nRUN useradd -r -u 10001 app\nUSER 10001\nCMD ["sleep", "1"]\n'


def run(args: list[str], cwd: Path, stdin: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        res = runner.invoke(cli, args, input=stdin, catch_exceptions=False)
    finally:
        os.chdir(old)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(BAD)
    (tmp_path / ".dockerignore").write_text(".git\n")
    return tmp_path


def test_tty_default_and_exit_code(project: Path) -> None:
    code, out, _ = run(["lint"], project)
    assert code == 1
    assert "Dockerfile:4:1: error DL3020:" in out
    assert "4 | ADD app.py /app/\n  | ^~~~~~~~~~~~~~~" in out
    assert "\x1b[" not in out  # not a terminal: no colour
    code, out, _ = run(["lint", "--color"], project)
    assert "\x1b[1;31merror\x1b[0m" in out


def test_clean_file_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(CLEAN)
    code, out, _ = run(["lint", "-f", "json", "Dockerfile"], tmp_path)
    assert code == 0, out
    assert json.loads(out) == {"schema": "imagewise/lint/v1", "findings": []}


def test_thresholds_and_no_fail(project: Path) -> None:
    assert run(["lint", "--no-fail"], project)[0] == 0
    # DL3020 is an error: the gate holds at "error"
    assert run(["lint", "-t", "error"], project)[0] == 1
    assert run(["lint", "-t", "error", "--ignore", "DL3020"], project)[0] == 0
    assert run(["lint", "-t", "none"], project)[0] == 0
    (project / "lint.yaml").write_text("ignored: [DL3020]\nfailure-threshold: error\n")
    code, out, _ = run(["lint", "--config", "lint.yaml", "-f", "json"], project)
    assert code == 0
    assert "DL3020" not in {f["rule"] for f in json.loads(out)["findings"]}


def test_json_fields(project: Path) -> None:
    code, out, _ = run(["lint", "-f", "json", "Dockerfile"], project)
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/lint/v1"
    rules = {f["rule"] for f in doc["findings"]}
    assert {"DL3020", "DL3015", "IW105"} <= rules
    for f in doc["findings"]:
        assert set(f) == {"rule", "severity", "file", "line", "column", "message", "fix"}
        assert f["file"] == "Dockerfile"


def test_sarif_through_cli(project: Path) -> None:
    code, out, _ = run(["lint", "-f", "sarif"], project)
    doc = json.loads(out)
    jsonschema.validate(doc, sarif_schema())
    driver = doc["runs"][0]["tool"]["driver"]
    ids = {r["id"] for r in driver["rules"]}
    assert "DL3020" in ids
    dl3020 = next(r for r in driver["rules"] if r["id"] == "DL3020")
    assert dl3020["defaultConfiguration"]["level"] == "error"
    assert dl3020["fullDescription"]["text"]
    (project / "Dockerfile.secret").write_text("FROM alpine:3.20\nARG NPM_TOKEN\n")
    code, out, _ = run(["lint", "-f", "sarif", "Dockerfile.secret"], project)
    doc = json.loads(out)
    jsonschema.validate(doc, sarif_schema())
    iw109 = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "IW109")
    assert iw109["properties"]["security-severity"] == "8.0"
    assert "security" in iw109["properties"]["tags"]


def test_checkstyle_and_gitlab(project: Path) -> None:
    code, out, _ = run(["lint", "-f", "checkstyle"], project)
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<checkstyle')
    code, out, _ = run(["lint", "-f", "gitlab"], project)
    items = json.loads(out)
    assert items and all(i["location"]["path"] == "Dockerfile" for i in items)


def test_stdin(tmp_path: Path) -> None:
    code, out, _ = run(["lint", "-f", "json", "-"], tmp_path, stdin=BAD)
    assert code == 1
    findings = json.loads(out)["findings"]
    assert {f["file"] for f in findings} == {"-"}
    assert "IW107" not in {f["rule"] for f in findings}  # no build context for stdin


def test_syntax_error_is_exit_2_with_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nRUN echo hi\nFROM a b c d\n")
    code, out, err = run(["lint"], tmp_path)
    assert code == 2
    assert "imagewise: error: Dockerfile:3:" in err
    assert "Traceback" not in err + out


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run(["lint", "missing/Dockerfile"], tmp_path)
    assert code == 2 and "missing/Dockerfile: no such file" in err
    assert run(["lint", "-f", "yaml"], tmp_path)[0] == 2
    (tmp_path / "Dockerfile").write_text(BAD)
    code, _, err = run(["lint", "--fix", "--diff"], tmp_path)
    assert code == 2 and "exclusive" in err


def test_diff_then_fix(project: Path) -> None:
    code, out, _ = run(["lint", "--diff"], project)
    assert code == 1
    assert out.startswith("--- a/Dockerfile\n+++ b/Dockerfile\n")
    assert "+COPY app.py /app/" in out
    assert (project / "Dockerfile").read_text() == BAD  # --diff writes nothing
    code, out, err = run(["lint", "--fix", "-f", "json"], project)
    assert "fixed Dockerfile" in err
    fixed = (project / "Dockerfile").read_text()
    assert fixed == (
        "FROM debian:12\nRUN apt-get update && \\\n    apt-get install "
        "--no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*\n"
        "COPY app.py /app/\n"
    )
    remaining = {f["rule"] for f in json.loads(out)["findings"]}
    assert not remaining & {"DL3020", "DL3015", "DL3009", "IW105", "DL3059"}
    assert run(["lint", "--diff"], project)[0] == 0


def test_fix_stdin_writes_fixed_file_to_stdout(tmp_path: Path) -> None:
    code, out, err = run(["lint", "--fix", "-f", "json", "-"], tmp_path, stdin=BAD)
    assert out.endswith("COPY app.py /app/\n") and out.startswith("FROM debian:12\n")
    assert json.loads(err[err.index("{") :])["schema"] == "imagewise/lint/v1"


def test_rules_lists_dl_iw_and_image_checks(tmp_path: Path) -> None:
    code, out, _ = run(["rules"], tmp_path)
    assert code == 0
    ids = [line.split()[0] for line in out.splitlines()]
    assert "DL3008" in ids and "IW101" in ids and ids.index("DL3008") < ids.index("IW101")
    assert len([i for i in ids if i.startswith("DL")]) >= 60
    assert any(i.startswith(("CIS-", "DKL-")) for i in ids)
    code, out, _ = run(["rules", "--format", "json", "--source", "imagewise"], tmp_path)
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/rules/v1"
    assert all(r["source"] == "imagewise" for r in doc["rules"])


def test_explain(tmp_path: Path) -> None:
    code, out, _ = run(["explain", "iw109"], tmp_path)
    assert code == 0
    assert out.startswith("IW109: Secret in ARG or ENV\nseverity: error")
    assert "Why:" in out and "Fix:" in out and "--mount=type=secret" in out
    code, out, _ = run(["explain", "DL3008"], tmp_path)
    assert code == 0 and "DL3008" in out
    code, _, err = run(["explain", "DL3O08"], tmp_path)
    assert code == 2 and "unknown rule 'DL3O08'; did you mean DL30" in err
    code, _, err = run(["explain", "nothing"], tmp_path)
    assert code == 2 and err == (
        "imagewise: error: unknown rule 'nothing' (`imagewise rules` lists them all)\n"
    )


def test_real_process_and_tty_colour(project: Path) -> None:
    """The installed entry point; colour appears only when stdout is a terminal."""
    exe = [sys.executable, "-m", "imagewise"]
    proc = subprocess.run(
        [*exe, "lint", "Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": ""},
        timeout=60,
    )
    assert proc.returncode == 1 and "\x1b[" not in proc.stdout
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(
        [*exe, "lint", "Dockerfile"],
        cwd=project,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": ""},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(timeout=60) == 1
    os.close(master)
    assert b"\x1b[1;31merror" in b"".join(chunks)


def test_custom_rules_file_in_lint_rules_explain_and_sarif(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nRUN curl -s https://x.example | sh\n")
    (tmp_path / "acme.yaml").write_text(
        "rules:\n  - id: ACME003\n    severity: error\n    title: No curl piped to a shell\n"
        "    rationale: You run what the server sends.\n    instruction: RUN\n"
        "    match: 'curl[^|]*\\|\\s*(ba)?sh'\n"
    )
    code, out, _ = run(["lint", "--rules", "acme.yaml", "-f", "sarif"], tmp_path)
    assert code == 1
    doc = json.loads(out)
    jsonschema.validate(doc, sarif_schema())
    acme = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "ACME003")
    assert acme["fullDescription"]["text"] == "You run what the server sends."
    code, out, _ = run(["rules", "--rules", "acme.yaml"], tmp_path)
    assert "ACME003" in out
    code, out, _ = run(["explain", "ACME003", "--rules", "acme.yaml"], tmp_path)
    assert code == 0 and out.startswith("ACME003: No curl piped to a shell")


def test_context_option_for_stdin(tmp_path: Path) -> None:
    (tmp_path / "package-lock.json").write_text("{}")
    text = "FROM node:22\nCOPY package*.json ./\nRUN npm install\n"
    code, out, _ = run(["lint", "-f", "json", "-"], tmp_path, stdin=text)
    assert "IW112" not in {f["rule"] for f in json.loads(out)["findings"]}
    code, out, _ = run(["lint", "-f", "json", "--context", ".", "-"], tmp_path, stdin=text)
    assert "IW112" in {f["rule"] for f in json.loads(out)["findings"]}
    code, out, _ = run(["lint", "--diff", "--context", ".", "-"], tmp_path, stdin=text)
    assert code == 1 and "+RUN npm ci" in out
