"""The database under hostile input and concurrent use: records validated at import (fuzzed over
the OSV schema's types), archives streamed with size and ratio limits, WAL mode with writers
waiting on each other, readers that never write, and one clear message for each failure."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from hypothesis import HealthCheck, given, settings, strategies as st

from imagewise.cli.main import cli
from imagewise.errors import VulnDBError
from imagewise.sbom.model import Package
from imagewise.vulns.matching import match
from imagewise.vulns.scan import scan_packages
from imagewise.vulns.store import VulnDB


def _record(
    id_: str, modified: str = "2024-01-01T00:00:00Z", name: str = "demo", fixed: str = "2.0"
) -> dict:
    return {
        "id": id_,
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def _env() -> dict[str, str]:
    """The environment of a child ``python -m imagewise``: the code under test, not whatever
    copy is installed."""
    import imagewise

    env = dict(os.environ)
    env["PYTHONPATH"] = (
        str(Path(imagewise.__file__).parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    )
    return env


# ----------------------------------------------------------------------------- 1. validation
def test_a_record_with_an_impossible_time_is_skipped_and_reads_keep_working(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "bad.json").write_text(json.dumps(_record("BAD-0001", "9999-99-99T99:99:99Z")))
    (d / "good.json").write_text(json.dumps(_record("GOOD-0001")))
    db = tmp_path / "db.sqlite"
    code, out, err = _run("db", "import", "--db", str(db), str(d))
    assert code == 0, err
    assert "1 added" in out and "1 skipped" in out
    line = next(x for x in err.splitlines() if "bad.json" in x)
    assert "BAD-0001" in line and "modified" in line and "RFC 3339" in line
    code, out, err = _run("db", "status", "--db", str(db))
    assert code == 0 and "records: 1" in out, err
    code, out, err = _run("db", "status", "--db", str(db), "--format", "json")
    assert code == 0 and json.loads(out)["age_days"] > 0
    r = scan_packages([Package("demo", "1.0", "pypi")], db)
    assert [v.id for v in r.vulnerabilities] == ["GOOD-0001"]


def test_a_database_holding_a_bad_time_still_reads_and_heals_on_reimport(tmp_path: Path) -> None:
    """A database written before validation may hold such a value: reads skip it, and a valid
    version of the record replaces it (a bad stored time counts as older than any)."""
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "a.json", _record("BAD-0001"))])
        store.conn.execute("UPDATE vulns SET modified='9999-99-99T99:99:99Z'")
        store.conn.execute("UPDATE affected SET data='{not json'")
    with VulnDB(db) as store:
        st_ = store.status()
        assert st_.records == 1 and st_.newest_modified == "" and st_.age_days() is None
        assert match([Package("demo", "1.0", "pypi")], store) == []
    code, _, err = _run("db", "status", "--db", str(db))
    assert code == 0, err
    with VulnDB(db, create=True) as store:
        s = store.import_paths([_write(tmp_path / "b.json", _record("BAD-0001", fixed="3.0"))])
        assert (s.added, s.updated, s.unchanged) == (0, 1, 0)
        assert [v.id for v in match([Package("demo", "2.5", "pypi")], store)] == ["BAD-0001"]


def test_whitespace_summary_and_wrong_types_are_reported_not_internal_errors(
    tmp_path: Path,
) -> None:
    docs = {
        "ws.json": {**_record("WS-0001"), "summary": "   \n "},
        "num.json": _record("NUM-0001") | {"aliases": [1, 2]},
        "events.json": {
            **_record("EV-0001"),
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "x"},
                    "ranges": [{"type": "ECOSYSTEM", "events": ["introduced"]}],
                }
            ],
        },
        "pkg.json": {**_record("PKG-0001"), "affected": [{"package": "demo"}]},
        "nomod.json": {"id": "NOMOD-0001"},
    }
    d = tmp_path / "in"
    d.mkdir()
    for name, doc in docs.items():
        (d / name).write_text(json.dumps(doc))
    with VulnDB(tmp_path / "db.sqlite", create=True) as store:
        s = store.import_paths([d])
    assert s.added == 1  # the whitespace summary is just empty
    reasons = {Path(w).name: why for w, why in s.skipped}
    assert set(reasons) == {"num.json", "events.json", "pkg.json", "nomod.json"}
    assert "NUM-0001" in reasons["num.json"] and "aliases[0]" in reasons["num.json"]
    assert "events[0]" in reasons["events.json"]
    assert "'package'" in reasons["pkg.json"]
    assert "'modified' is missing" in reasons["nomod.json"]


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


# Strategies over the OSV schema's types: each field mostly of its type, sometimes anything.
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
_anything = st.recursive(
    _scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)


def _maybe(valid: st.SearchStrategy, strict: bool) -> st.SearchStrategy:
    return valid if strict else st.one_of(valid, valid, valid, _anything)


def _osv(strict: bool) -> st.SearchStrategy:
    def m(s: st.SearchStrategy) -> st.SearchStrategy:
        return _maybe(s, strict)

    ids = st.from_regex(r"\A(PYSEC|GHSA|CVE|DSA|ALPINE)-20[0-9]{2}-[0-9]{1,5}\Z")
    times = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
        lambda t: t.isoformat().replace("+00:00", "Z")
    )
    if not strict:
        times = st.one_of(
            times,
            st.from_regex(
                r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
            ),
            st.text(max_size=25),
        )
    version = st.one_of(
        st.sampled_from(
            [
                "0",
                "1.0",
                "1.2.3",
                "2.0rc1",
                "1:2.3-1",
                "v1.2.3",
                "1.2.3-r4",
                "0.0.0-20230101-abcdef",
            ]
        ),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
    )
    ecosystem = st.sampled_from(
        [
            "PyPI",
            "npm",
            "Go",
            "Maven",
            "Debian:12",
            "Alpine:v3.19",
            "Ubuntu:22.04:LTS",
            "Red Hat:enterprise_linux:9",
            "crates.io",
            "Wolfi",
            "NoSuchEcosystem",
        ]
    )
    event = st.dictionaries(
        st.sampled_from(["introduced", "fixed", "last_affected", "limit"]),
        m(version),
        min_size=1,
        max_size=1,
    )
    rng = st.fixed_dictionaries(
        {
            "type": m(st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT"])),
            "events": m(st.lists(m(event), max_size=4)),
        }
    )
    severity = st.fixed_dictionaries(
        {
            "type": m(st.sampled_from(["CVSS_V3", "CVSS_V4", "CVSS_V2", "Ubuntu", "Debian"])),
            "score": m(
                st.sampled_from(
                    [
                        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                        "AV:N/AC:L/Au:N/C:P/I:P/A:P",
                        "high",
                        "negligible",
                        "bogus",
                    ]
                )
            ),
        }
    )
    own = st.dictionaries(
        st.sampled_from(["severity", "urgency", "priority"]),
        m(st.sampled_from(["high", "low", "moderate", "x"])),
        max_size=2,
    )
    package = st.fixed_dictionaries(
        {
            "ecosystem": m(ecosystem),
            "name": m(
                st.sampled_from(["demo", "Demo_Pkg", "openssl", "org.x:y", "golang.org/x/net"])
            ),
        },
        optional={"purl": m(st.just("pkg:pypi/demo"))},
    )
    affected = st.fixed_dictionaries(
        {"package": m(package)},
        optional={
            "ranges": m(st.lists(m(rng), max_size=3)),
            "versions": m(st.lists(version, max_size=3)),
            "severity": m(st.lists(m(severity), max_size=2)),
            "ecosystem_specific": m(own),
            "database_specific": m(own),
        },
    )
    return st.fixed_dictionaries(
        {"id": m(ids), "modified": m(times)},
        optional={
            "published": m(times),
            "withdrawn": m(times),
            "aliases": m(st.lists(ids, max_size=3)),
            "summary": m(st.text(max_size=30)),
            "details": m(st.text(max_size=30)),
            "severity": m(st.lists(m(severity), max_size=2)),
            "database_specific": m(own),
            "affected": m(st.lists(m(affected), max_size=3)),
            "schema_version": m(st.just("1.6.0")),
        },
    )


_PACKAGES = [Package("demo", v, "pypi") for v in ("0.1", "1.0", "1.5", "3.0")] + [
    Package("openssl", "3.0.11-1~deb12u2", "deb", distro="debian:12"),
    Package("openssl", "3.1.4-r5", "apk", distro="alpine:3.19.1"),
    Package("golang.org/x/net", "v0.17.0", "golang"),
    Package("y", "1.2", "maven", purl="pkg:maven/org.x/y@1.2"),
]


def _import_and_read(docs: list[object], yaml_too: bool) -> tuple[object, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "in"
        d.mkdir()
        names = []
        for i, doc in enumerate(docs):
            if yaml_too and i % 2:
                import yaml

                (d / f"{i:03d}.yaml").write_text(yaml.safe_dump(doc))
                names.append(f"{i:03d}.yaml")
            else:
                (d / f"{i:03d}.json").write_text(json.dumps(doc))
                names.append(f"{i:03d}.json")
        db = Path(tmp) / "db.sqlite"
        with VulnDB(db, create=True) as store:
            stats = store.import_paths([d])
        with VulnDB(db) as store:  # nothing stored can break a later read
            status = store.status()
            status.age_days()
            status.to_json()
            match(_PACKAGES, store)
            store.records([f"X-{i}" for i in range(3)])
        r = scan_packages(_PACKAGES, db)
        assert r.vulns_scanned == (status.records > 0)
        return stats, names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(_osv(strict=False), min_size=1, max_size=4), yaml_too=st.booleans())
def test_fuzz_the_importer_over_the_osv_schema(docs: list[dict], yaml_too: bool) -> None:
    stats, names = _import_and_read(docs, yaml_too)
    assert stats.seen + len(stats.skipped) == len(docs)  # type: ignore[attr-defined]
    for where, why in stats.skipped:  # type: ignore[attr-defined]
        name = Path(where).name
        assert name in names and why and "\n" not in why
        doc = docs[names.index(name)]
        rid = doc.get("id") if isinstance(doc, dict) else None
        if isinstance(rid, str) and rid and rid.isprintable() and len(rid) < 80:
            assert rid[:80] in why


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(_osv(strict=True), min_size=1, max_size=4), yaml_too=st.booleans())
def test_fuzz_valid_records_are_all_imported(docs: list[dict], yaml_too: bool) -> None:
    stats, _ = _import_and_read(docs, yaml_too)
    assert stats.skipped == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 3. archive limits
def _bomb(path: Path, mib: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("GOOD-0001.json", json.dumps(_record("GOOD-0001")))
        with z.open("BOMB-0001.json", "w", force_zip64=True) as f:
            f.write(b'{"id":"BOMB-0001","modified":"2024-01-01T00:00:00Z","details":"')
            chunk = b"a" * (1 << 20)
            for _ in range(mib):
                f.write(chunk)
            f.write(b'"}')
    return path


def test_a_zip_bomb_is_streamed_within_limits_with_one_clear_line(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "all.zip", 256)
    assert bomb.stat().st_size < 1024 * 1024
    # a small launcher runs the import and reports that one child's peak RSS (RUSAGE_CHILDREN
    # of this worker would include every earlier child, and a fork of this big process starts
    # from its size)
    launcher = (
        "import json, os, subprocess, sys\n"
        "p = subprocess.Popen(json.loads(sys.argv[1]))\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "sys.stderr.write(f'peak-kib {usage.ru_maxrss}\\n')\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "imagewise",
        "db",
        "import",
        "--db",
        str(tmp_path / "db.sqlite"),
        str(bomb),
    ]
    p = subprocess.run(
        [sys.executable, "-c", launcher, json.dumps(cmd)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    *lines, last = p.stderr.rstrip("\n").split("\n")
    peak_kib = int(last.split()[1])
    p = subprocess.CompletedProcess(p.args, p.returncode, p.stdout, "\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    assert "1 added" in p.stdout and "1 skipped" in p.stdout
    assert p.stderr.count("\n") == 1 and "BOMB-0001.json" in p.stderr
    assert "a record is at most" in p.stderr and "internal" not in p.stderr
    assert peak_kib < 250 * 1024  # KiB: well under the 256 MiB the member expands to


def test_a_member_expanding_too_many_times_is_skipped_even_when_under_the_size_limit(
    tmp_path: Path,
) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("R-1.json", json.dumps(_record("RATIO-0001") | {"details": "a" * (4 << 20)}))
    with VulnDB(tmp_path / "db.sqlite", create=True) as store:
        s = store.import_paths([z])
    assert s.seen == 0 and len(s.skipped) == 1 and "expands more than 200 times" in s.skipped[0][1]


def test_a_zip_damaged_mid_member_is_one_clear_error_and_imports_nothing(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("A-1.json", json.dumps(_record("FIRST-0001")))
        zf.writestr(
            "B-1.json",
            json.dumps(
                _record("SECOND-0001") | {"details": " ".join(f"word{i}" for i in range(20000))}
            ),
        )
    data = bytearray(z.read_bytes())
    info = zipfile.ZipFile(z).getinfo("B-1.json")
    mid = info.header_offset + 30 + len("B-1.json") + info.compress_size // 2
    data[mid : mid + 64] = bytes(64)
    z.write_bytes(bytes(data))
    db = tmp_path / "db.sqlite"
    code, _, err = _run("db", "import", "--db", str(db), str(z))
    assert code == 2 and "internal" not in err
    assert err.count("\n") == 1 and "damaged at B-1.json" in err
    with VulnDB(db) as store:
        assert store.status().records == 0  # all or nothing


# -------------------------------------------------------------------------- 2. concurrent use
def _import_cmd(db: Path, *paths: str) -> list[str]:
    return [sys.executable, "-m", "imagewise", "db", "import", "--db", str(db), *paths]


def test_two_imports_at_once_both_succeed_and_a_scan_meanwhile_reads(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
    pypa = str(corpus("osv", "pypa-advisory-database"))
    procs = [
        subprocess.Popen(
            _import_cmd(db, pypa),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    seen: set[int] = set()
    errors: list[str] = []
    while any(p.poll() is None for p in procs):
        try:
            with VulnDB(db) as store:
                seen.add(store.status().records)
                match([Package("jinja2", "2.10", "pypi")], store)
        except VulnDBError as e:
            errors.append(str(e))
        time.sleep(0.05)
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert errors == []
    assert seen <= {1, 2662}  # the data before an import or after it, never half of it
    summary = sorted(o.split(":", 1)[1].split(";")[0].strip() for o, _ in outs)
    assert summary == [
        "0 added, 0 updated, 2661 unchanged, 0 skipped",
        "2661 added, 0 updated, 0 unchanged, 0 skipped",
    ]


def test_a_writer_that_waits_too_long_says_so(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, _, err = _run(
            "db",
            "import",
            "--db",
            str(db),
            str(tmp_path / "seed.json"),
            env={"IMAGEWISE_DB_LOCK_TIMEOUT": "0.3"},
        )
        assert code == 2 and "internal" not in err
        assert "another process is writing to this vulnerability database" in err
        assert "0.3 s" in err
        code, out, err = _run("db", "status", "--db", str(db))  # a reader does not wait
        assert code == 0 and "records: 1" in out, err
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_import_waits_for_a_long_one_and_readers_never_wait(tmp_path: Path) -> None:
    """A write transaction held longer than SQLite's default 5 s wait (a long import, its
    pages spilled: an exclusive lock): readers go on reading, and a second import waits for
    it instead of failing with 'database is locked'."""
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM vulns")
    release = threading.Timer(6.0, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        started = time.monotonic()
        code, out, err = _run("db", "status", "--db", str(db))
        assert code == 0 and "records: 1 " in out, err
        r = scan_packages([Package("demo", "1.0", "pypi")], db)
        assert [v.id for v in r.vulnerabilities] == ["SEED-0001"]
        assert time.monotonic() - started < 3
        code, out, err = _run(
            "db", "import", "--db", str(db), str(_write(tmp_path / "two.json", _record("TWO-0001")))
        )
        assert code == 0 and "1 added" in out, err
        assert time.monotonic() - started >= 5.5  # it waited for the other writer
    finally:
        release.join()
        holder.close()
    with VulnDB(db) as store:
        assert store.status().records == 2


_KILLED_IMPORT = """
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size=5")  # spill uncommitted pages to disk early, as a big import does
c.execute("BEGIN")
for i in range(5000):
    c.execute("INSERT INTO vulns VALUES (?, '2024-01-01T00:00:00.000000Z', '', '', '[]', ?, NULL, '')",
              (f"X-{i}", "x" * 500))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_readers_work_after_an_import_killed_mid_way(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
    p = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr
    code, out, err = _run("db", "status", "--db", str(db))
    assert code == 0 and "records: 1 " in out, err
    r = scan_packages([Package("demo", "1.0", "pypi")], db)
    assert [v.id for v in r.vulnerabilities] == ["SEED-0001"]
    assert Path(f"{db}-wal").stat().st_size > 0  # uncommitted pages were on disk, and ignored
    code, out, err = _run(
        "db", "import", "--db", str(db), str(corpus("osv", "pypa-advisory-database"))
    )
    assert code == 0 and "2661 added" in out, err


_KILLED_LEGACY = """
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size=5")
c.execute("BEGIN")
for i in range(5000):
    c.execute("INSERT INTO vulns VALUES (?, '2024-01-01T00:00:00.000000Z', '', '', '[]', ?, NULL, '')",
              (f"X-{i}", "x" * 500))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_legacy_database_left_hot_by_a_kill_says_what_happened(tmp_path: Path) -> None:
    """A rollback-journal database (made before WAL mode) killed mid-import: a reader cannot
    recover it and says so; the next writer recovers it and turns it into WAL mode."""
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
        store.conn.execute("PRAGMA journal_mode=DELETE")
    p = subprocess.run(
        [sys.executable, "-c", _KILLED_LEGACY, str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == -signal.SIGKILL and Path(f"{db}-journal").exists()
    code, _, err = _run("db", "status", "--db", str(db))
    assert code == 2 and "internal" not in err and "readonly" not in err
    assert "interrupted" in err and "'imagewise db import'" in err
    with VulnDB(db, create=True) as store:
        assert store.status().records == 1
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_reader_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([_write(tmp_path / "seed.json", _record("SEED-0001"))])
    before = db.stat().st_mtime_ns, db.read_bytes()
    with VulnDB(db) as store:
        store.status()
        match([Package("demo", "1.0", "pypi")], store)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM vulns")
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before


def test_a_damaged_database_file_is_named_as_such(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with VulnDB(db, create=True) as store:
        store.import_paths([corpus("osv", "pypa-advisory-database", "vulns", "jinja2")])
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 6] = os.urandom(4096 * 4)
    db.write_bytes(bytes(data))
    code, _, err = _run(
        "scan",
        str(
            _write(
                tmp_path / "sbom.json",
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
                },
            )
        ),
        "--db",
        str(db),
    )
    assert code == 2 and "internal" not in err and str(db) in err, err


def _read_as_nobody(db: Path) -> str:
    """The record count a reader without write permission sees (root may write anywhere, so
    as root a forked child drops to the unprivileged 'nobody' first), or the error."""

    def read() -> str:
        try:
            with VulnDB(db) as store:
                return f"records {store.status().records}"
        except VulnDBError as e:
            return f"error: {e}"

    if os.geteuid() != 0:
        return read()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            msg = read()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            msg = f"error: {e}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        return f.read().decode()


def test_a_database_in_a_read_only_place_is_read() -> None:
    """A WAL database where the reader cannot write (a read-only mount, a directory of another
    user, a CI cache) is read all the same: readers never need to write."""
    import shutil

    where = Path(tempfile.mkdtemp(prefix="imagewise-ro-"))
    db = where / "osv.sqlite"
    try:
        with VulnDB(db, create=True) as store:
            store.import_paths([corpus("osv", "pypa-advisory-database", "vulns", "jinja2")])
        assert not Path(f"{db}-wal").exists()
        db.chmod(0o444)
        where.chmod(0o555)
        assert _read_as_nobody(db) == "records 5"
    finally:
        where.chmod(0o755)
        shutil.rmtree(where)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"id": 5, "modified": "2024-01-01T00:00:00Z"}, "'id' is a number, not a string"),
        ({"modified": "2024-01-01T00:00:00Z"}, "no 'id'"),
        ({"id": "GHSA-xxxx-yyyy-zzzz", "modified": 7}, "'modified' is a number, not a string"),
    ],
)
def test_a_field_of_the_wrong_type_is_named_with_the_type_expected(
    doc: dict[str, object], message: str
) -> None:
    from imagewise.vulns.osv import InvalidRecord, parse_record

    with pytest.raises(InvalidRecord, match=message):
        parse_record(doc)
