"""The SQLite store: import of files, directories and all.zip exports; incremental re-import."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import corpus

from imagewise.errors import VulnDBError
from imagewise.sbom.model import Package
from imagewise.vulns.matching import match
from imagewise.vulns.store import VulnDB, default_path


def _record(id_: str, modified: str, fixed: str, name: str = "demo") -> dict:
    return {
        "id": id_,
        "modified": modified,
        "aliases": [f"CVE-2024-{id_[-4:]}"],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def test_zip_export_and_incremental_reimport(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(
            "PYSEC-0001.json", json.dumps(_record("PYSEC-0001", "2024-01-01T00:00:00Z", "1.0"))
        )
        zf.writestr(
            "PYSEC-0002.json", json.dumps(_record("PYSEC-0002", "2024-01-01T00:00:00Z", "2.0"))
        )
        zf.writestr("README.txt", "not a record")
    db = VulnDB(tmp_path / "db.sqlite", create=True)
    s = db.import_paths([z])
    assert (s.added, s.updated, s.unchanged, s.skipped) == (2, 0, 0, [])
    assert {v.id for v in match([Package("demo", "1.5", "pypi")], db)} == {"CVE-2024-0002"}

    # a newer 'modified' replaces the record (and its affected ranges); an older one does not
    newer = tmp_path / "upd"
    newer.mkdir()
    (newer / "a.json").write_text(
        json.dumps(_record("PYSEC-0002", "2024-02-01T00:00:00.5Z", "1.2"))
    )
    (newer / "b.json").write_text(json.dumps(_record("PYSEC-0001", "2023-12-01T00:00:00Z", "9.0")))
    s = db.import_paths([newer])
    assert (s.added, s.updated, s.unchanged) == (0, 1, 1)
    assert match([Package("demo", "1.5", "pypi")], db) == []
    assert db.conn.execute("SELECT count(*) FROM affected").fetchone()[0] == 2
    st = db.status()
    assert st.records == 2 and st.per_ecosystem == {"PyPI": 2}
    assert st.newest_modified == "2024-02-01T00:00:00.500000Z"
    assert {Path(p).name for p, _, _ in st.sources} == {"all.zip", "upd"}
    assert st.age_days(datetime(2024, 2, 11, tzinfo=UTC)) == pytest.approx(9.99999, abs=1e-3)


def test_yaml_json_lists_and_bad_documents(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "list.json").write_text(
        json.dumps(
            [
                _record("X-0001", "2024-01-01T00:00:00Z", "1"),
                _record("X-0002", "2024-01-01T00:00:00Z", "1"),
            ]
        )
    )
    import yaml

    (d / "sub" / "one.yaml").write_text(
        yaml.safe_dump(_record("X-0003", "2024-01-01T00:00:00Z", "1"))
    )
    # unquoted YAML scalars that look like numbers or dates stay the versions they are
    (d / "sub" / "floaty.yml").write_text(
        "id: X-0004\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package: {ecosystem: PyPI, "
        "name: floaty}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n"
        "    - fixed: 1.10\n"
    )
    (d / "broken.json").write_text("{ not json")
    (d / "noid.json").write_text(json.dumps({"summary": "no id"}))
    db = VulnDB(tmp_path / "db.sqlite", create=True)
    s = db.import_paths([d])
    assert s.added == 4
    assert [v.id for v in match([Package("floaty", "1.9", "pypi")], db)] == ["X-0004"]
    assert match([Package("floaty", "1.10", "pypi")], db) == []
    assert sorted(Path(w).name for w, _ in s.skipped) == ["broken.json", "noid.json"]


def test_the_pypa_corpus_imports_completely(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "db.sqlite", create=True)
    s = db.import_paths([corpus("osv", "pypa-advisory-database")])
    assert s.added == 2661 and not s.skipped
    st = db.status()
    assert st.records == 2661 and st.withdrawn > 0
    assert st.per_ecosystem["PyPI"] == 2661 - st.withdrawn
    again = db.import_paths([corpus("osv", "pypa-advisory-database")])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2661)


def test_missing_and_corrupt_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(VulnDBError, match="no vulnerability database"):
        VulnDB(tmp_path / "nope.sqlite")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VulnDBError, match="not a vulnerability database"):
        VulnDB(bad)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema', '99');"
    )
    with pytest.raises(VulnDBError, match="schema 99"):
        VulnDB(other)
    with pytest.raises(VulnDBError, match="no such file"):
        VulnDB(tmp_path / "x.sqlite", create=True).import_paths([tmp_path / "missing"])
    monkeypatch.setenv("IMAGEWISE_DB", str(tmp_path / "env.sqlite"))
    assert default_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("IMAGEWISE_DB")
    assert default_path().name == "osv.sqlite" and "imagewise" in str(default_path())
