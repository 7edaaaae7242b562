"""Ignore files (imagewise, trivy, grype formats) with expiry, and OpenVEX statements."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from imagewise.errors import ConfigError
from imagewise.findings import Finding, Location, Severity
from imagewise.sbom.model import Package, PackageLocation
from imagewise.vulns.ignores import Decisions, load_decisions, load_ignore_file, load_vex
from imagewise.vulns.matching import Vulnerability

TODAY = date(2025, 6, 1)


def _vuln(
    id_: str,
    name: str,
    version: str = "1.0",
    aliases: tuple[str, ...] = (),
    path: str = "usr/lib/python3/site-packages/x.dist-info/METADATA",
) -> Vulnerability:
    pkg = Package(
        name,
        version,
        "pypi",
        purl=f"pkg:pypi/{name}@{version}",
        locations=(PackageLocation("sha256:l1", path, 1),),
    )
    return Vulnerability(id_, aliases, pkg, "PyPI", "high", 7.5, (), "", (id_,))


VULNS = [
    _vuln("CVE-2021-0001", "urllib3", aliases=("GHSA-aaaa", "PYSEC-2021-1")),
    _vuln("CVE-2021-0002", "requests"),
    _vuln("CVE-2021-0003", "jinja2"),
    _vuln("CVE-2021-0004", "pyyaml", path="opt/app/venv/lib/pyyaml.dist-info/METADATA"),
]


def test_imagewise_ignore_file_with_expiry_and_scope(tmp_path: Path) -> None:
    f = tmp_path / ".imagewise-ignore.yaml"
    f.write_text("""
ignore:
  - id: GHSA-aaaa            # an alias suppresses the merged row
    reason: not reachable from our code
    expires: 2025-12-31
  - id: CVE-2021-0002
    package: Requests
    reason: mitigated by proxy
    expires: 2025-01-31      # expired: stops suppressing, warns
  - id: CVE-2021-0003
    package: flask            # another package: does not apply
  - id: CVE-2021-0004
    path: opt/app/**
""")
    d = load_decisions([f], [])
    kept, gone = d.apply_vulns(VULNS, TODAY)
    assert [v.id for v in kept] == ["CVE-2021-0002", "CVE-2021-0003"]
    assert [(s.item.id, s.reason) for s in gone] == [
        ("CVE-2021-0001", "not reachable from our code"),
        ("CVE-2021-0004", "ignored"),
    ]
    warnings = d.warnings(TODAY)
    assert len(warnings) == 1 and "CVE-2021-0002" in warnings[0] and "expired" in warnings[0]
    # before the expiry date it still suppresses
    kept, _ = d.apply_vulns(VULNS, date(2025, 1, 31))
    assert [v.id for v in kept] == ["CVE-2021-0003"]


def test_trivyignore_and_grype_yaml(tmp_path: Path) -> None:
    t = tmp_path / ".trivyignore"
    t.write_text("# accepted\nCVE-2021-0002\nCVE-2021-0003 exp:2024-01-01\n\nsecret/github-token\n")
    g = tmp_path / ".grype.yaml"
    g.write_text(
        "ignore:\n  - vulnerability: CVE-2021-0001\n    package:\n      name: urllib3\n"
        "      type: python\n  - vulnerability: CVE-2021-0004\n    package:\n"
        "      name: other\n"
    )
    d = load_decisions([t, g], [])
    kept, _ = d.apply_vulns(VULNS, TODAY)
    assert [v.id for v in kept] == ["CVE-2021-0003", "CVE-2021-0004"]
    assert len(d.warnings(TODAY)) == 1
    secret = Finding(
        "secret/github-token",
        Severity.ERROR,
        "GitHub token",
        "m",
        Location(path="app/.env", line=3),
    )
    other = Finding("secret/jwt", Severity.WARNING, "JWT", "m", Location(path="app/.env", line=4))
    kept_f, gone_f = d.apply_findings([secret, other], TODAY)
    assert kept_f == [other] and gone_f[0].item is secret


def test_openvex_not_affected_fixed_and_newest_wins(tmp_path: Path) -> None:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "sec team",
        "timestamp": "2025-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2021-0001"},
                "products": [
                    {
                        "@id": "pkg:oci/app@sha256:abc",
                        "subcomponents": [{"@id": "pkg:pypi/urllib3@1.0"}],
                    }
                ],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            },
            {
                "vulnerability": {"name": "CVE-2021-0002"},
                "products": [{"@id": "pkg:pypi/requests"}],
                "status": "fixed",
            },
            {
                "vulnerability": {"name": "CVE-2021-0003"},
                "products": [{"@id": "pkg:pypi/jinja2"}],
                "status": "not_affected",
                "timestamp": "2025-01-02T00:00:00Z",
            },
            {
                "vulnerability": {"name": "CVE-2021-0003"},
                "products": [{"@id": "pkg:pypi/jinja2"}],
                "status": "affected",
                "timestamp": "2025-03-01T00:00:00Z",
            },
            {
                "vulnerability": {"name": "CVE-2021-0004"},
                "products": [{"@id": "pkg:pypi/pyyaml@9.9"}],
                "status": "not_affected",
            },
        ],
    }
    f = tmp_path / "app.openvex.json"
    f.write_text(json.dumps(doc))
    kept, gone = Decisions(vex=load_vex(f)).apply_vulns(VULNS, TODAY)
    assert [v.id for v in kept] == ["CVE-2021-0003", "CVE-2021-0004"]
    assert gone[0].reason == "not_affected: vulnerable_code_not_in_execute_path"
    assert gone[1].reason == "fixed"


def test_openvex_v001_shape(tmp_path: Path) -> None:
    f = tmp_path / "old.json"
    f.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns",
                "statements": [
                    {
                        "vulnerability": "GHSA-aaaa",
                        "products": ["pkg:pypi/urllib3@1.0"],
                        "status": "not_affected",
                        "justification": "component_not_present",
                    }
                ],
            }
        )
    )
    kept, gone = Decisions(vex=load_vex(f)).apply_vulns(VULNS, TODAY)
    assert len(kept) == 3 and gone[0].item.id == "CVE-2021-0001"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (".imagewise-ignore.yaml", "ignore:\n  - reason: no id\n", "needs an 'id'"),
        (".imagewise-ignore.yaml", "ignore:\n  - id: X\n    expires: someday\n", "not a date"),
        (".imagewise-ignore.yaml", "ignore: [unclosed\n", "not valid YAML"),
        ("vex.json", "{}", "not an OpenVEX document"),
    ],
)
def test_bad_files_are_config_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_vex(f) if name.endswith(".json") else load_ignore_file(f)
