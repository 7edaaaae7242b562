"""Lint renderers: json envelope, SARIF (official 2.1.0 schema), checkstyle, GitLab, tty."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from sarif_support import sarif_schema

from imagewise.dockerfile.output import render
from imagewise.encoders import LINT
from imagewise.errors import UsageError
from imagewise.findings import Finding, Location, RuleInfo, Severity

SOURCE = """FROM debian:12
# install tools
RUN apt-get update && \\
    apt-get install -y curl
ADD ./app.py /app/
CMD python /app/app.py
"""

FINDINGS = [
    Finding(
        "DL3008",
        Severity.WARNING,
        "Pin versions in apt get install",
        "Pin versions in apt get install. Instead of `apt-get install <package>` use "
        "`apt-get install <package>=<version>`",
        Location(file="Dockerfile", line=3, column=1, end_line=4),
    ),
    Finding(
        "DL3020",
        Severity.ERROR,
        "Use COPY instead of ADD",
        "Use COPY instead of ADD for files and folders",
        Location("Dockerfile", 5, 1, 5),
        fix="COPY ./app.py /app/",
    ),
    Finding(
        "DL3025",
        Severity.WARNING,
        "JSON notation",
        "Use arguments JSON notation <&\"'>",
        Location("Dockerfile", 6, 5, 6),
    ),
    Finding("IW201", Severity.INFO, "Health", "No HEALTHCHECK", Location("sub dir/Dockerfile", 1)),
]

RULES = {
    "DL3020": RuleInfo(
        "DL3020",
        Severity.ERROR,
        "Use COPY instead of ADD",
        rationale="ADD has magic.",
        fix="Replace ADD with COPY.",
        area="build",
        source="hadolint",
    ),
}


def test_json_envelope_and_fields() -> None:
    doc = json.loads(render(FINDINGS, "json"))
    assert doc["schema"] == LINT.get("json").schema == "imagewise/lint/v1"
    assert [f["rule"] for f in doc["findings"]] == ["DL3008", "DL3020", "DL3025", "IW201"]
    first = doc["findings"][0]
    assert set(first) == {"rule", "severity", "file", "line", "column", "message", "fix"}
    assert first["severity"] == "warning" and first["line"] == 3 and first["column"] == 1
    assert doc["findings"][1]["fix"] == "COPY ./app.py /app/"
    assert json.loads(render([], "json")) == {"schema": "imagewise/lint/v1", "findings": []}


def test_sarif_validates_against_official_schema() -> None:
    doc = json.loads(render(FINDINGS, "sarif", rules=RULES))
    jsonschema.validate(doc, sarif_schema())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["DL3008", "DL3020", "DL3025", "IW201"]
    assert rules[1]["help"]["text"].startswith("ADD has magic.")
    assert "security-severity" not in rules[1]["properties"]  # area "build"
    # GitHub code scanning: every result points at its rule, has a level, a physical location
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note"}
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert res["partialFingerprints"]
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert uris == {"Dockerfile", "sub%20dir/Dockerfile"}
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"]["endLine"] == 4


def test_sarif_empty_is_valid() -> None:
    doc = json.loads(render([], "sarif"))
    jsonschema.validate(doc, sarif_schema())
    assert doc["runs"][0]["results"] == []


def test_sarif_schema_rejects_broken_document() -> None:
    """The schema check in the tests above can fail: a result without a message is invalid."""
    doc = json.loads(render(FINDINGS[:1], "sarif"))
    del doc["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, sarif_schema())


def test_checkstyle_is_xml_with_escaping() -> None:
    root = ET.fromstring(render(FINDINGS, "checkstyle"))
    assert root.tag == "checkstyle"
    files = root.findall("file")
    assert [f.get("name") for f in files] == ["Dockerfile", "sub dir/Dockerfile"]
    errors = files[0].findall("error")
    assert [(e.get("source"), e.get("line"), e.get("severity")) for e in errors] == [
        ("DL3008", "3", "warning"),
        ("DL3020", "5", "error"),
        ("DL3025", "6", "warning"),
    ]
    assert errors[2].get("message") == "Use arguments JSON notation <&\"'>"


def test_gitlab_code_quality() -> None:
    items = json.loads(render(FINDINGS + FINDINGS[:1], "gitlab"))
    assert len(items) == 5
    for item in items:
        assert set(item) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert item["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert item["location"]["lines"]["begin"] >= 1
    assert len({i["fingerprint"] for i in items}) == 5  # duplicates still get unique fingerprints
    assert items[0]["location"]["path"] == "Dockerfile"


def test_tty_shows_lines_with_caret_without_colour() -> None:
    out = render(FINDINGS, "tty", sources={"Dockerfile": SOURCE}, color=False)
    assert "\x1b[" not in out
    lines = out.splitlines()
    i = lines.index("Dockerfile:3:1: warning DL3008: " + FINDINGS[0].message)
    assert lines[i + 1] == "3 | RUN apt-get update && \\"
    assert lines[i + 2] == "  | ^" + "~" * 20
    assert lines[i + 3] == "4 |     apt-get install -y curl"
    j = lines.index("Dockerfile:6:5: warning DL3025: " + FINDINGS[2].message)
    assert lines[j + 1] == "6 | CMD python /app/app.py"
    assert lines[j + 2] == "  |     ^~~~~~"
    assert "  fix: COPY ./app.py /app/" in lines
    assert lines[-1] == "4 findings (1 error, 2 warnings, 1 info) in 2 files"


def test_tty_colour_on_request() -> None:
    out = render(FINDINGS[:1], "tty", sources={"Dockerfile": SOURCE}, color=True)
    assert "\x1b[1;33mwarning\x1b[0m" in out


def test_unknown_format() -> None:
    assert LINT.ids == ("table", "json", "sarif", "checkstyle", "gitlab")
    with pytest.raises(UsageError, match="unknown format"):
        render(FINDINGS, "yaml")


def test_tty_caret_under_tabs() -> None:
    src = "FROM a:1\nRUN set -eux; \\\n\tapt-get install -y x\n"
    f = Finding("DL3008", Severity.WARNING, "t", "m", Location("Dockerfile", 3, 2, 3))
    lines = render([f], "tty", sources={"Dockerfile": src}).splitlines()
    assert lines[1] == "3 |     apt-get install -y x"
    assert lines[2] == "  |     ^~~~~~~"
