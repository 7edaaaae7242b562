"""``imagewise db push`` / ``db pull``: the database as an OCI artifact in the real
distribution registry (tests/fixtures_registry.py), with the PyPA advisories as its data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.sbom.model import Package
from imagewise.vulns.artifact import ARTIFACT_TYPE, LAYER_TYPE
from imagewise.vulns.matching import match
from imagewise.vulns.store import VulnDB

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("src") / "osv.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([corpus("osv", "pypa-advisory-database")])
    return db


def test_push_then_pull_into_a_new_and_an_existing_database(
    registry: RegistryServer, source_db: Path, tmp_path: Path
) -> None:
    ref = f"docker://{registry.host}/{unique_repo('osvdb')}:2026-12-03"
    code, out, err = _run("db", "push", ref, "--db", str(source_db))
    assert code == 0, err
    assert out.startswith(f"pushed {ref}: 2661 records, newest modified 2024-10-10\n")
    digest = re.search(r"^digest: (sha256:[0-9a-f]{64})$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]

    # what the registry holds is an OCI artifact manifest
    repo, tag = ref.removeprefix(f"docker://{registry.host}/").split(":")
    r = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    doc = r.json()
    assert doc["artifactType"] == ARTIFACT_TYPE
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [layer["mediaType"] for layer in doc["layers"]] == [LAYER_TYPE]
    assert doc["annotations"]["io.imagewise.osv-db.records"] == "2661"
    assert r.headers["Docker-Content-Digest"] == digest

    fresh = tmp_path / "ci" / "osv.sqlite"
    code, out, err = _run("db", "pull", ref, "--db", str(fresh))
    assert code == 0 and "pulled" in out and "2661 records" in out, err
    with VulnDB(fresh) as db:
        assert db.status().records == 2661
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {v.id for v in match([Package("jinja2", "2.10", "pypi")], db)} >= {"CVE-2019-10906"}
    code, out, err = _run("db", "pull", ref, "--db", str(fresh))  # the same artifact: no download
    assert code == 0 and "already holds" in out and digest in out, err

    # an existing database (other data) is replaced whole while a reader holds it open
    other = tmp_path / "other.sqlite"
    with VulnDB(other, create=True) as store:
        store.import_paths([corpus("osv", "pypa-advisory-database", "vulns", "jinja2")])
    reader = VulnDB(other)
    assert reader.status().records == 5
    code, out, err = _run("db", "pull", ref, "--db", str(other))
    assert code == 0, err
    with VulnDB(other) as db:
        assert db.status().records == 2661
    reader.close()


def test_push_during_an_import_is_a_consistent_snapshot(
    registry: RegistryServer, source_db: Path, tmp_path: Path
) -> None:
    import shutil

    db = tmp_path / "osv.sqlite"
    shutil.copy(source_db, db)
    ref = f"docker://{registry.host}/{unique_repo('osvdb')}:live"
    env = {"PYTHONPATH": str(ROOT / "src")}
    importer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagewise",
            "db",
            "import",
            "--db",
            str(db),
            str(_many_records(tmp_path / "extra")),
        ],
        env={**__import__("os").environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    code, _, err = _run("db", "push", ref, "--db", str(db))
    importer.communicate(timeout=120)
    assert code == 0 and importer.returncode == 0, err
    pulled = tmp_path / "pulled.sqlite"
    assert _run("db", "pull", ref, "--db", str(pulled))[0] == 0
    with VulnDB(pulled) as p:
        assert p.status().records in (2661, 2661 + 3000)  # before the import or after it


def _many_records(d: Path) -> Path:
    d.mkdir()
    for i in range(3000):
        (d / f"X-{i}.json").write_text(
            json.dumps(
                {
                    "id": f"EXTRA-2026-{i}",
                    "modified": "2026-01-01T00:00:00Z",
                    "affected": [
                        {"package": {"ecosystem": "PyPI", "name": f"pkg{i}"}, "versions": ["1.0"]}
                    ],
                }
            )
        )
    return d


def test_pull_refuses_what_is_not_a_database(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("notdb")
    push_image(registry, repo, "v1", build_image([1000], seed=3))
    db = tmp_path / "osv.sqlite"
    code, _, err = _run("db", "pull", f"docker://{registry.host}/{repo}:v1", "--db", str(db))
    assert code == 2 and "internal" not in err
    assert "is not an imagewise vulnerability database" in err and not db.exists()
    code, _, err = _run("db", "pull", f"docker://{registry.host}/{repo}:nope", "--db", str(db))
    assert code == 2 and "internal" not in err and "404" in err, err


def test_push_of_an_empty_or_missing_database_says_so(
    registry: RegistryServer, tmp_path: Path
) -> None:
    ref = f"docker://{registry.host}/{unique_repo('osvdb')}:x"
    code, _, err = _run("db", "push", ref, "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no vulnerability database" in err
    with VulnDB(tmp_path / "empty.sqlite", create=True):
        pass
    code, _, err = _run("db", "push", ref, "--db", str(tmp_path / "empty.sqlite"))
    assert code == 2 and "empty" in err


def test_scans_update_from_the_teams_registry(
    registry: RegistryServer, source_db: Path, tmp_path: Path
) -> None:
    """IMAGEWISE_OSV_MIRROR=docker://...: the automatic update pulls the pushed database
    (nothing from the OSV bucket), once a day, and names the registry when it cannot."""
    repo = unique_repo("osvdb")
    ref = f"docker://{registry.host}/{repo}"  # no tag: latest
    assert _run("db", "push", f"{ref}:latest", "--db", str(source_db))[0] == 0
    sbom = tmp_path / "app.cdx.json"
    sbom.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "components": [
                    {
                        "type": "library",
                        "name": "jinja2",
                        "version": "2.10",
                        "purl": "pkg:pypi/jinja2@2.10",
                    }
                ],
            }
        )
    )
    db = tmp_path / "cache" / "osv.sqlite"
    env = {"IMAGEWISE_OFFLINE": None, "IMAGEWISE_DB": str(db), "IMAGEWISE_OSV_MIRROR": ref}
    code, out, err = _run("scan", str(sbom), "--format", "json", env=env)
    assert code == 0, err
    assert f"updating the vulnerability database {db} (PyPI) from {ref}" in err
    assert f"database: pulled docker://{registry.host}/{repo}:latest: 2661 records" in err
    assert "CVE-2019-10906" in {v["id"] for v in json.loads(out)["vulnerabilities"]}
    code, out, err = _run("scan", str(sbom), "--format", "json", env=env)  # checked just now
    assert code == 0 and "updating" not in err, err

    with VulnDB(db, create=True) as store, store.transaction() as c:
        c.execute("UPDATE meta SET value='2020-01-01T00:00:00.000000Z' WHERE key='pulled_checked'")
    code, out, err = _run("scan", str(sbom), env=env)  # stale: asks, the digest is the same
    assert code == 0 and "database: unchanged since the last update" in err, err

    with VulnDB(db, create=True) as store, store.transaction() as c:
        c.execute("UPDATE meta SET value='2020-01-01T00:00:00.000000Z' WHERE key='pulled_checked'")
    gone = {**env, "IMAGEWISE_OSV_MIRROR": f"docker://{registry.host}/{unique_repo('none')}:x"}
    code, out, err = _run("scan", str(sbom), "--format", "json", env=gone)
    assert code == 0 and "internal" not in err
    assert "warning: vulnerability database not updated from docker://" in err and "404" in err
    assert json.loads(out)["vulnerabilities"]  # the data it had is still used
