"""``imagewise db update`` and the automatic updates of ``scan`` and ``check``, against a local
HTTP server started here that serves the OSV bucket's layout (``<Ecosystem>/all.zip``) with its
caching behaviour (ETag, Last-Modified, 304 to conditional requests, ``x-goog-hash``), built from
the real PyPA advisories in ../shared/corpora/osv. Nothing here reaches the internet."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import zipfile
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import alpine_image, write_oci_layout
from scan_images import app_layer

from imagewise.cli.main import cli
from imagewise.vulns.store import VulnDB, _yaml_loader
from imagewise.vulns.update import AutoUpdate, update


class OSVMirror:
    """A bucket look-alike: files under ``root`` at ``/<path>``; ``log`` holds
    (path, status, request headers) per request; ``bad_md5`` sends a wrong x-goog-hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[tuple[str, int, dict[str, str]]] = []
        self.bad_md5 = False
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = mirror.root / unquote(self.path.lstrip("/"))
                headers = {k: v for k, v in self.headers.items()}
                if not path.is_file():
                    mirror.log.append((self.path, 404, headers))
                    body = b"<Error><Code>NoSuchKey</Code></Error>"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = path.read_bytes()
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                mtime = path.stat().st_mtime
                since = self.headers.get("If-Modified-Since")
                if self.headers.get("If-None-Match") == etag or (
                    since
                    and "If-None-Match" not in self.headers
                    and parsedate_to_datetime(since).timestamp() >= int(mtime)
                ):
                    mirror.log.append((self.path, 304, headers))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                mirror.log.append((self.path, 200, headers))
                md5 = hashlib.md5(data + (b"x" if mirror.bad_md5 else b"")).digest()
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
                self.send_header("x-goog-hash", "crc32c=AAAAAA==")
                self.send_header("x-goog-hash", "md5=" + base64.b64encode(md5).decode())
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests(self, status: int | None = None) -> list[str]:
        return [p for p, s, _ in self.log if status is None or s == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pypa_zip(path: Path, only: str | None = None, bump: str | None = None) -> Path:
    """The PyPA advisories as the bucket's PyPI/all.zip (one ``<ID>.json`` per record);
    ``bump``: that record's ``modified`` moved to now and its fix changed."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(corpus("osv", "pypa-advisory-database", "vulns").rglob("*.yaml")):
            if only and f.parent.name != only:
                continue
            doc = yaml.load(f.read_bytes(), Loader=_yaml_loader())
            if doc["id"] == bump:
                doc["modified"] = "2026-01-01T00:00:00Z"
                doc["summary"] = "bumped"
            z.writestr(f"{doc['id']}.json", json.dumps(doc))
    tmp.replace(path)
    return path


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    _pypa_zip(root / "PyPI" / "all.zip")
    return root


@pytest.fixture
def mirror(bucket: Path, tmp_path: Path) -> Any:
    import shutil

    root = tmp_path / "bucket"
    shutil.copytree(bucket, root)
    m = OSVMirror(root)
    yield m
    m.close()


def _run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def test_db_update_downloads_only_what_changed(mirror: OSVMirror, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    args = ("db", "update", "--db", str(db), "--mirror", mirror.url, "--ecosystem", "PyPI")
    code, out, err = _run(*args)
    assert code == 0, err
    assert "PyPI: 2661 added, 0 updated" in out and "downloaded" in out
    assert mirror.requests(200) == ["/PyPI/all.zip"]
    with VulnDB(db) as store:
        feeds = store.feeds()
        assert feeds["PyPI"]["url"] == f"{mirror.url}/PyPI/all.zip" and feeds["PyPI"]["etag"]
        assert feeds["PyPI"]["records"] == 2661
        assert [p for p, _, _ in store.status().sources] == [f"{mirror.url}/PyPI/all.zip"]
    assert not list(tmp_path.glob(".osv-download-*"))  # the download is gone once imported

    code, out, err = _run(*args)  # unchanged: a conditional request, answered 304
    assert code == 0 and "PyPI: unchanged since the last update" in out, err
    (_path, status, headers) = mirror.log[-1]
    assert status == 304 and headers["If-None-Match"] == feeds["PyPI"]["etag"]
    assert "If-Modified-Since" in headers

    time.sleep(1.1)  # a new generation of the archive: one record changed
    _pypa_zip(mirror.root / "PyPI" / "all.zip", bump="PYSEC-2019-217")
    code, out, err = _run(*args)
    assert code == 0 and "PyPI: 0 added, 1 updated" in out, err
    with VulnDB(db) as store:
        assert store.records(["PYSEC-2019-217"])["PYSEC-2019-217"].summary == "bumped"

    code, out, err = _run(*args, "--force")
    assert code == 0 and "PyPI: 0 added, 0 updated" in out, err
    assert "If-None-Match" not in mirror.log[-1][2]


def test_db_update_defaults_and_a_missing_ecosystem(mirror: OSVMirror, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    code, out, err = _run("db", "update", "--db", str(db), "--mirror", mirror.url)
    assert code == 2
    assert sorted(mirror.requests()) == sorted(
        f"/{e}/all.zip"
        for e in (
            "PyPI",
            "npm",
            "Go",
            "Maven",
            "crates.io",
            "RubyGems",
            "Debian",
            "Alpine",
            "Ubuntu",
            "Red%20Hat",
        )
    )
    assert "PyPI: 2661 added" in out
    assert "Red Hat: not updated: the mirror has no Red Hat/all.zip (HTTP 404" in out
    assert err.strip().splitlines()[-1] == (
        "imagewise: error: 9 of 10 ecosystems not updated (npm, Go, Maven, crates.io, RubyGems, "
        "Debian, Alpine, Ubuntu, Red Hat)"
    )
    mirror.log.clear()  # the next update fetches what the last one did: PyPI only
    code, out, err = _run("db", "update", "--db", str(db), "--mirror", mirror.url)
    assert code == 0 and mirror.requests() == ["/PyPI/all.zip"], err


def test_a_download_that_fails_its_check_changes_nothing(mirror: OSVMirror, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    mirror.bad_md5 = True
    code, out, err = _run(
        "db", "update", "--db", str(db), "--mirror", mirror.url, "--ecosystem", "PyPI"
    )
    assert code == 2 and "does not match its MD5" in out and "internal" not in err
    assert not db.exists()  # checked before anything is imported
    assert not list(tmp_path.glob(".osv-download-*"))
    mirror.bad_md5 = False
    code, out, err = _run(
        "db", "update", "--db", str(db), "--mirror", mirror.url, "--ecosystem", "PyPI"
    )
    assert code == 0 and "2661 added" in out, err


def test_a_directory_mirror_for_air_gapped_sites(bucket: Path, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    results = update(db, ["PyPI", "npm"], str(bucket))
    assert [(r.ecosystem, r.outcome, r.added) for r in results] == [
        (
            "PyPI",
            "updated",
            2661,
        ),
        ("npm", "failed", 0),
    ]
    assert "the mirror has no npm/all.zip" in results[1].error
    again = update(db, ["PyPI"], f"file://{bucket}")
    assert [r.outcome for r in again] == ["unchanged"]


# ------------------------------------------------------------------------ automatic updates
@pytest.fixture(scope="module")
def image_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    img = alpine_image("3.19.4", extra_layers=[app_layer()])
    return write_oci_layout(img, tmp_path_factory.mktemp("img") / "layout", "app")


def _online(db: Path, mirror_url: str, **extra: str | None) -> dict[str, str | None]:
    return {
        "IMAGEWISE_OFFLINE": None,
        "IMAGEWISE_DB": str(db),
        "IMAGEWISE_OSV_MIRROR": mirror_url,
        **extra,
    }


def test_scan_updates_a_missing_database_with_what_the_image_needs(
    mirror: OSVMirror, image_ref: str, tmp_path: Path
) -> None:
    db = tmp_path / "cache" / "osv.sqlite"
    env = _online(db, mirror.url)
    code, out, err = _run("scan", image_ref, "--format", "json", "--no-secrets", env=env)
    assert code == 0, err
    assert sorted(mirror.requests()) == ["/Alpine/all.zip", "/PyPI/all.zip"]
    assert (
        f"imagewise: updating the vulnerability database {db} (Alpine, PyPI) from {mirror.url}"
        in err
    )
    assert "imagewise: PyPI: 2661 added" in err
    assert (
        "warning: vulnerability data for Alpine not updated: the mirror has no Alpine/all.zip"
        in err
    )
    doc = json.loads(out)
    assert {r["package"].lower() for r in doc["vulnerabilities"]} >= {"jinja2", "pyyaml", "urllib3"}

    mirror.log.clear()  # fresh now (PyPI checked a moment ago); Alpine is retried: never fetched
    code, out, err = _run("scan", image_ref, "--format", "json", "--no-secrets", env=env)
    assert code == 0 and mirror.requests() == ["/Alpine/all.zip"], err
    mirror.log.clear()
    for flag in ("--offline", "--skip-db-update"):
        code, out, err = _run("scan", image_ref, "--no-secrets", flag, env=env)
        assert code == 0 and mirror.requests() == [] and "updating" not in err
    code, out, err = _run("scan", image_ref, "--no-secrets", env={**env, "IMAGEWISE_OFFLINE": "1"})
    assert code == 0 and mirror.requests() == []


def test_a_stale_feed_is_checked_again(mirror: OSVMirror, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    update(db, ["PyPI"], mirror.url)
    auto = AutoUpdate(mirror.url)
    assert auto.stale(db, ["PyPI"]) == []
    with VulnDB(db, create=True) as store, store.transaction() as c:
        c.execute("UPDATE feeds SET checked_at='2020-01-01T00:00:00.000000Z'")
    assert auto.stale(db, ["PyPI"]) == ["PyPI"]
    assert AutoUpdate("http://127.0.0.1:1").stale(db, ["PyPI"]) == ["PyPI"]  # another mirror
    mirror.log.clear()
    from imagewise.sbom.model import Package

    assert auto.run(db, [Package("jinja2", "2.10", "pypi")]) == []
    assert [s for _, s, _ in mirror.log] == [304]
    assert auto.stale(db, ["PyPI"]) == []


def test_an_explicit_db_is_used_as_it_is_unless_asked(
    mirror: OSVMirror, image_ref: str, tmp_path: Path
) -> None:
    db = tmp_path / "given.sqlite"
    env = _online(tmp_path / "unused.sqlite", mirror.url)
    code, _, err = _run("scan", image_ref, "--db", str(db), "--no-secrets", env=env)
    assert code == 0 and mirror.requests() == [] and "vulnerability scan skipped" in err
    code, _, err = _run("scan", image_ref, "--db", str(db), "--no-secrets", "--update-db", env=env)
    assert code == 0 and "/PyPI/all.zip" in mirror.requests(200), err
    assert db.is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_mirror_is_a_warning_and_the_scan_goes_on(
    image_ref: str, tmp_path: Path
) -> None:
    db = tmp_path / "osv.sqlite"
    started = time.monotonic()
    code, out, err = _run(
        "scan",
        image_ref,
        "--no-secrets",
        "--format",
        "json",
        env=_online(db, f"http://127.0.0.1:{_free_port()}"),
    )
    assert code == 0, err
    assert time.monotonic() - started < 30
    lines = [x for x in err.splitlines() if "not updated" in x]
    assert len(lines) == 2 and all("connection refused" in x for x in lines)
    assert "vulnerability scan skipped: no database" in err
    assert json.loads(out)["vulnerabilities"] == []


def test_a_mirror_that_never_answers_does_not_hang_the_scan(image_ref: str, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    try:
        started = time.monotonic()
        code, _, err = _run(
            "scan",
            image_ref,
            "--no-secrets",
            env=_online(
                tmp_path / "osv.sqlite",
                f"http://127.0.0.1:{silent.getsockname()[1]}",
                IMAGEWISE_DB_UPDATE_TIMEOUT="0.5",
            ),
        )
        took = time.monotonic() - started
    finally:
        silent.close()
    assert code == 0, err
    assert took < 15, took
    assert "stopped answering" in err and "vulnerability scan skipped" in err


def test_check_updates_the_database_too(mirror: OSVMirror, image_ref: str, tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    code, out, err = _run("check", image_ref, "--format", "json", env=_online(db, mirror.url))
    assert code in (0, 1), err
    assert "/PyPI/all.zip" in mirror.requests(200)
    assert "imagewise: updating the vulnerability database" in err
    doc = json.loads(out)
    assert "jinja2" in json.dumps(doc).lower()
    mirror.log.clear()
    code, out, err = _run(
        "check", image_ref, "--format", "json", "--offline", env=_online(db, mirror.url)
    )
    assert code in (0, 1) and mirror.requests() == [], err
