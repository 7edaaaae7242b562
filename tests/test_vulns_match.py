"""Matching: the real PyPA advisory database, and OS / npm / Go / Maven records in the OSV schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import corpus

from imagewise.sbom.model import Package, PackageLocation
from imagewise.vulns.matching import match
from imagewise.vulns.store import VulnDB


@pytest.fixture(scope="module")
def pypa_db(tmp_path_factory: pytest.TempPathFactory) -> VulnDB:
    db = VulnDB(tmp_path_factory.mktemp("db") / "osv.sqlite", create=True)
    db.import_paths([corpus("osv", "pypa-advisory-database")])
    return db


def _pkg(name: str, version: str, type_: str = "pypi", **kw: object) -> Package:
    return Package(name, version, type_, **kw)  # type: ignore[arg-type]


def _records(vulns: list, name: str) -> set[str]:
    return {r for v in vulns if v.package.name == name for r in v.records}


def test_old_python_packages_match_the_advisories_that_cover_them(pypa_db: VulnDB) -> None:
    pkgs = [
        _pkg("Jinja2", "2.10"),
        _pkg("PyYAML", "5.3.1"),
        _pkg("requests", "2.19.0"),
        _pkg("urllib3", "1.24.1"),
    ]
    vulns = match(pkgs, pypa_db)
    # read from the records: a range containing the version, or the version listed
    assert _records(vulns, "Jinja2") == {"PYSEC-2019-217", "PYSEC-2021-66"}
    # PYSEC-2020-96 is fixed in exactly 5.3.1; PYSEC-2020-176 only 5.1 <= v < 5.2b1
    assert _records(vulns, "PyYAML") == {"PYSEC-2021-142"}
    # PYSEC-2015-17 covers 2.1.0 <= v < 2.6.0 only
    assert _records(vulns, "requests") == {"PYSEC-2018-28", "PYSEC-2023-74"}
    # not PYSEC-2020-149 (1.25.2-1.25.8), PYSEC-2021-59 (1.26.0-1.26.4), PYSEC-2018-32 (< 1.23)
    assert _records(vulns, "urllib3") == {
        "PYSEC-2019-132",
        "PYSEC-2019-133",
        "PYSEC-2020-148",
        "PYSEC-2021-108",
        "PYSEC-2023-192",
        "PYSEC-2023-207",
        "PYSEC-2023-212",
    }
    by_id = {v.id: v for v in vulns}
    # one CVE is one row, named by the CVE, with the record ids as aliases
    cve = by_id["CVE-2023-43804"]
    assert "PYSEC-2023-192" in cve.aliases and "GHSA-v845-jxx5-vc9f" in cve.aliases
    # the fix closing the range the version is in (1.26.17), not the 2.x branch's 2.0.6
    assert cve.fixed_versions == ("1.26.17",)
    # severity computed from the CVSS v3.1 vector CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N
    assert cve.severity == "high" and cve.score == 8.1
    assert by_id["CVE-2023-45803"].severity == "medium"
    assert by_id["CVE-2019-10906"].fixed_versions == ("2.10.1",)
    assert by_id["CVE-2019-10906"].severity == "unknown"  # the record carries no rating


def test_fixed_versions_and_names_are_normalised(pypa_db: VulnDB) -> None:
    assert match([_pkg("jinja2", "2.10.1")], pypa_db) != []  # 2.11.3 fix still pending
    assert match([_pkg("Jinja2", "3.1.4")], pypa_db) == []
    # PEP 503: case and runs of "-", "_", "." do not matter
    assert {v.id for v in match([_pkg("pyYAML", "5.3.1")], pypa_db)} == {"CVE-2020-14343"}
    assert {v.id for v in match([_pkg("Apache_SkyWalking", "1.0.1")], pypa_db)} >= {
        "CVE-2020-13921"
    }
    assert match([_pkg("urllib3", "1.26.18")], pypa_db) == []
    assert match([_pkg("urllib3", "not-a-version")], pypa_db) == []


def test_withdrawn_records_never_match(pypa_db: VulnDB) -> None:
    root = corpus("osv", "pypa-advisory-database", "vulns")
    import yaml

    for path in sorted(root.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("withdrawn"):
            aff = doc["affected"][0]
            version = (aff.get("versions") or ["0.0.1"])[0]
            vulns = match([_pkg(aff["package"]["name"], version)], pypa_db)
            assert doc["id"] not in {r for v in vulns for r in v.records}
            return
    pytest.fail("the corpus has withdrawn records; none found")


def _write(tmp: Path, records: list[dict]) -> Path:
    d = tmp / "records"
    d.mkdir(exist_ok=True)
    for r in records:
        (d / f"{r['id']}.json").write_text(json.dumps(r))
    return d


def _rec(
    id_: str,
    eco: str,
    name: str,
    events: list[dict],
    *,
    aliases: list[str] | None = None,
    rtype: str = "ECOSYSTEM",
    versions: list[str] | None = None,
    **extra: object,
) -> dict:
    aff: dict = {
        "package": {"ecosystem": eco, "name": name},
        "ranges": [{"type": rtype, "events": events}],
    }
    if versions:
        aff["versions"] = versions
    return {
        "id": id_,
        "modified": "2024-05-01T00:00:00Z",
        "aliases": aliases or [],
        "affected": [aff],
        **extra,
    }


OS_RECORDS = [
    # Debian: matched on the source package and the release
    _rec(
        "DSA-5001-1",
        "Debian:12",
        "openssl",
        [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        aliases=["CVE-2023-5678"],
    ),
    _rec(
        "DEBIAN-CVE-2023-5678",
        "Debian:12",
        "openssl",
        [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        aliases=["CVE-2023-5678"],
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
    ),
    _rec("DSA-4000-1", "Debian:11", "openssl", [{"introduced": "0"}, {"fixed": "9:9.9"}]),
    _rec("DSA-4500-1", "Debian:12", "glibc", [{"introduced": "0"}, {"fixed": "1:2.36-9+deb12u4"}]),
    # Alpine: origin package, release as v3.19
    _rec(
        "ALPINE-CVE-2024-0001",
        "Alpine:v3.19",
        "busybox",
        [{"introduced": "0"}, {"fixed": "1.36.1-r16"}],
    ),
    _rec(
        "ALPINE-CVE-2024-0002",
        "Alpine:v3.18",
        "busybox",
        [{"introduced": "0"}, {"fixed": "1.36.1-r99"}],
    ),
    _rec(
        "ALPINE-CVE-2024-0003",
        "Alpine:v3.19",
        "musl",
        [{"introduced": "0"}, {"fixed": "1.2.4_git20230717-r5"}],
    ),
    # npm: SEMVER range with last_affected
    _rec(
        "GHSA-npm1",
        "npm",
        "lodash",
        [{"introduced": "4.0.0"}, {"last_affected": "4.17.20"}],
        rtype="SEMVER",
        aliases=["CVE-2021-23337"],
        database_specific={"severity": "HIGH"},
    ),
    # Go: module with pseudo-version range, and the standard library
    _rec(
        "GO-2024-0001",
        "Go",
        "golang.org/x/net",
        [{"introduced": "0"}, {"fixed": "0.23.0"}],
        rtype="SEMVER",
    ),
    _rec(
        "GO-2024-0002",
        "Go",
        "stdlib",
        [
            {"introduced": "1.21.0-0"},
            {"fixed": "1.21.8"},
            {"introduced": "1.22.0-0"},
            {"fixed": "1.22.1"},
        ],
        rtype="SEMVER",
        severity=[
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            }
        ],
    ),
    # Maven: group:artifact, with a limit event and an explicit version list
    _rec(
        "GHSA-jfh8",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}, {"limit": "2.12.2"}],
        aliases=["CVE-2021-44228"],
        database_specific={"severity": "CRITICAL"},
    ),
    _rec(
        "GHSA-list",
        "Maven",
        "com.example:listed",
        [{"introduced": "9.0"}],
        versions=["1.0.1", "1.0.2"],
    ),
    # RPM
    _rec(
        "RLSA-2024:1",
        "Rocky Linux:9",
        "openssl",
        [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}],
    ),
    _rec(
        "ALSA-2024:2",
        "AlmaLinux:9",
        "openssl-libs",
        [{"introduced": "0"}, {"fixed": "1:3.0.7-26.el9"}],
    ),
    # withdrawn record: never matches
    _rec(
        "GHSA-gone",
        "npm",
        "lodash",
        [{"introduced": "0"}],
        rtype="SEMVER",
        withdrawn="2024-06-01T00:00:00Z",
    ),
    # GIT ranges are ignored (commit hashes are not versions)
    _rec("OSV-git", "npm", "lodash", [{"introduced": "0"}, {"fixed": "abcdef0123"}], rtype="GIT"),
]


@pytest.fixture
def os_db(tmp_path: Path) -> VulnDB:
    db = VulnDB(tmp_path / "osv.sqlite", create=True)
    db.import_paths([_write(tmp_path, OS_RECORDS)])
    return db


def _ids(vulns: list) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for v in vulns:
        out.setdefault(v.package.name, set()).update(v.records)
    return out


def test_debian_matches_source_package_and_release(os_db: VulnDB) -> None:
    loc = (PackageLocation("sha256:aaa", "var/lib/dpkg/status", 0),)
    pkgs = [
        _pkg(
            "libssl3",
            "3.0.11-1~deb12u1",
            "deb",
            source_name="openssl",
            distro="debian:12",
            locations=loc,
            from_base=True,
        ),
        _pkg("openssl", "3.0.11-1~deb12u2", "deb", distro="debian:12"),  # fixed version
        _pkg("libc6", "2.36-9+deb12u3", "deb", source_name="glibc", distro="debian:12"),
    ]
    vulns = match(pkgs, os_db)
    got = _ids(vulns)
    # both Debian records alias CVE-2023-5678: one row; the Debian 11 record does not apply
    assert got == {"libssl3": {"DSA-5001-1", "DEBIAN-CVE-2023-5678"}, "libc6": {"DSA-4500-1"}}
    row = next(v for v in vulns if v.package.name == "libssl3")
    # CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L is 5.3
    assert row.id == "CVE-2023-5678" and row.severity == "medium" and row.score == 5.3
    assert row.fixed_versions == ("3.0.11-1~deb12u2",)
    assert row.layer == "sha256:aaa" and row.from_base is True
    # epoch 1 in the fix: 2.36 (epoch 0) is below it
    assert next(v for v in vulns if v.package.name == "libc6").fixed_versions == (
        "1:2.36-9+deb12u4",
    )


def test_alpine_matches_origin_and_minor_release(os_db: VulnDB) -> None:
    pkgs = [
        _pkg("ssl_client", "1.36.1-r15", "apk", source_name="busybox", distro="alpine:3.19.4"),
        _pkg("busybox", "1.36.1-r16", "apk", distro="alpine:3.19.4"),
        _pkg("musl", "1.2.4_git20230717-r4", "apk", distro="alpine:3.19.4"),
    ]
    assert _ids(match(pkgs, os_db)) == {
        "ssl_client": {"ALPINE-CVE-2024-0001"},
        "musl": {"ALPINE-CVE-2024-0003"},
    }
    # edge / pre-release VERSION_IDs still name their minor release
    edge = [_pkg("busybox", "1.36.1-r1", "apk", distro="alpine:3.19_alpha20231201")]
    assert _ids(match(edge, os_db)) == {"busybox": {"ALPINE-CVE-2024-0001"}}
    older = [_pkg("busybox", "1.36.1-r20", "apk", distro="alpine:3.18.9")]
    assert _ids(match(older, os_db)) == {"busybox": {"ALPINE-CVE-2024-0002"}}


def test_npm_last_affected_and_withdrawn(os_db: VulnDB) -> None:
    vulns = match(
        [
            _pkg("lodash", "4.17.20", "npm"),
            _pkg("lodash", "4.17.21", "npm"),
            _pkg("lodash", "3.10.1", "npm"),
        ],
        os_db,
    )
    assert [(v.package.version, v.id, v.severity) for v in vulns] == [
        ("4.17.20", "CVE-2021-23337", "high")
    ]
    assert vulns[0].fixed_versions == ()


def test_go_modules_and_stdlib(os_db: VulnDB) -> None:
    pkgs = [
        _pkg("golang.org/x/net", "v0.0.0-20220722155237-a158d28d115b", "golang"),
        _pkg("golang.org/x/net", "v0.23.0", "golang"),
        _pkg("stdlib", "go1.21.5", "golang"),
        _pkg("stdlib", "go1.22.1", "golang"),
        _pkg("stdlib", "go1.20.14", "golang"),
    ]
    vulns = match(pkgs, os_db)
    assert sorted((v.package.version, v.records[0]) for v in vulns) == [
        ("go1.21.5", "GO-2024-0002"),
        ("v0.0.0-20220722155237-a158d28d115b", "GO-2024-0001"),
    ]
    std = next(v for v in vulns if v.package.name == "stdlib")
    assert std.fixed_versions == ("1.21.8",) and std.severity == "critical"


def test_maven_ranges_limit_and_versions(os_db: VulnDB) -> None:
    purl = "pkg:maven/org.apache.logging.log4j/log4j-core@{}"
    pkgs = [
        _pkg("log4j-core", v, "maven", purl=purl.format(v))
        for v in ("2.12.1", "2.14.1", "2.0-beta8")
    ]
    pkgs.append(_pkg("listed", "1.0.2", "maven", metadata={"group": "com.example"}))
    pkgs.append(_pkg("listed", "1.0.3", "maven", metadata={"group": "com.example"}))
    vulns = match(pkgs, os_db)
    # limit 2.12.2 caps the range: 2.14.1 is beyond it; 2.0-beta8 is before beta9
    assert sorted((v.package.name, v.version) for v in vulns) == [
        ("listed", "1.0.2"),
        ("log4j-core", "2.12.1"),
    ]
    assert next(v for v in vulns if v.package.name == "log4j-core").severity == "critical"


def test_rpm_distro_release(os_db: VulnDB) -> None:
    pkgs = [
        _pkg("openssl-libs", "1:3.0.7-24.el9", "rpm", source_name="openssl", distro="rocky:9.3"),
        _pkg("openssl-libs", "1:3.0.7-25.el9_3", "rpm", source_name="openssl", distro="rocky:9.3"),
        _pkg("openssl-libs", "1:3.0.7-24.el9", "rpm", source_name="openssl", distro="amzn:2023"),
    ]
    assert [v.version for v in match(pkgs, os_db)] == ["1:3.0.7-24.el9"]
    # records naming the binary package match too
    alma = [
        _pkg("openssl-libs", "1:3.0.7-25.el9", "rpm", source_name="openssl", distro="almalinux:9.4")
    ]
    assert [v.records for v in match(alma, os_db)] == [("ALSA-2024:2",)]


@pytest.mark.parametrize(
    ("events", "version", "want"),
    [
        # unsorted events are sorted by version first (OSV spec)
        ([{"introduced": "2.0"}, {"introduced": "0"}, {"fixed": "1.0"}], "2.5", (True, "")),
        ([{"introduced": "2.0"}, {"introduced": "0"}, {"fixed": "1.0"}], "1.5", (False, "")),
        ([{"introduced": "2.0"}, {"introduced": "0"}, {"fixed": "1.0"}], "0.5", (True, "1.0")),
        # the fixed version itself is not affected; last_affected is
        ([{"introduced": "1.0"}, {"fixed": "1.5"}], "1.5", (False, "")),
        ([{"introduced": "1.0"}, {"last_affected": "1.5"}], "1.5", (True, "")),
        ([{"introduced": "1.0"}, {"last_affected": "1.5"}], "1.5.1", (False, "")),
        # a second introduced inside an open range changes nothing
        ([{"introduced": "1.0"}, {"introduced": "1.2"}, {"fixed": "1.5"}], "1.1", (True, "1.5")),
        # limit caps an open range
        ([{"introduced": "1.0"}, {"limit": "3.0"}], "2.9", (True, "")),
        ([{"introduced": "1.0"}, {"limit": "3.0"}], "3.0", (False, "")),
    ],
)
def test_range_events(events: list[dict], version: str, want: tuple[bool, str]) -> None:
    from imagewise.vulns.osv import compile_entry, parse_record
    from imagewise.vulns.versions import parse

    rec = parse_record(_rec("X-1", "PyPI", "demo", events))
    ce = compile_entry(rec.affected[0])
    assert ce.affects(parse("PyPI", version), version) == want
