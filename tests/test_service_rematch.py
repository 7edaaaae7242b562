"""A vulnerability database update re-matches every stored SBOM without reading any layer: the
registry is gone by then. A real image with old Python packages on Alpine, checked through the
service's job handler against a database without their advisories; then a `db-update` job
from a directory mirror of the real PyPA advisories finds them, records new results and fires
the vulnerability alert for the tag."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import alpine_image, write_oci_layout
from fixtures_registry import start_registry, stop_registry
from scan_images import app_layer
from sqlalchemy import select

from imagewise.cli.main import cli
from imagewise.service.db import connect, results
from imagewise.service.metrics import exposition
from imagewise.service.queue import SqlJobQueue
from imagewise.service.run import job_handlers


def _mirror(root: Path, package: str) -> Path:
    """A directory OSV mirror whose PyPI export holds the real advisories of ``package``."""
    (root / "PyPI").mkdir(parents=True)
    with zipfile.ZipFile(root / "PyPI" / "all.zip", "w") as z:
        for f in sorted(corpus("osv", "pypa-advisory-database", "vulns", package).glob("*.yaml")):
            doc = yaml.safe_load(f.read_text())
            z.writestr(f"{doc['id']}.json", json.dumps(doc, default=str))
    return root


def test_db_update_rematches_stored_sboms_without_the_registry(
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    osv = tmp_path / "osv.sqlite"
    monkeypatch.setenv("IMAGEWISE_DB", str(osv))
    # a database that knows of PyPI, but not of these packages' advisories yet
    first = CliRunner().invoke(
        cli,
        [
            "db",
            "import",
            "--db",
            str(osv),
            str(corpus("osv", "pypa-advisory-database", "vulns", "aiohttp")),
        ],
    )
    assert first.exit_code == 0, first.output
    reg = start_registry(tmp_path / "reg")
    layout = write_oci_layout(
        alpine_image("3.19.4", extra_layers=[app_layer()]), tmp_path / "img", "app"
    )
    copied = CliRunner().invoke(cli, ["copy", layout, f"docker://{reg.host}/team/app:1.0"])
    assert copied.exit_code == 0, copied.output
    from imagewise.sources import open_source

    with open_source(f"docker://{reg.host}/team/app:1.0") as src:
        digest = str(src.image().manifest.digest)
    engine = connect(f"sqlite:///{tmp_path / 'svc.sqlite'}")
    url, got = receiver
    config = {
        "alerts": {
            "channels": {"hook": {"type": "webhook", "url": url}},
            "rules": [
                {
                    "name": "vulns",
                    "when": "vulnerability",
                    "min_severity": "low",
                    "channels": ["hook"],
                }
            ],
        }
    }
    handlers, _ = job_handlers(engine, policy_file=None, config=config)
    payload = {
        "registry": reg.host,
        "repository": "team/app",
        "tag": "1.0",
        "digest": digest,
        "insecure": True,
    }
    handlers["check"](payload)
    with engine.begin() as conn:
        [before] = conn.execute(
            select(results.c.vulnerability_ids).where(results.c.digest == digest)
        ).all()
    assert before[0] == {}  # nothing known about requests yet
    assert got == []
    stop_registry(reg)  # from here on no layer, manifest or config can be read
    mirror = _mirror(tmp_path / "mirror", "requests")
    handlers["db-update"](
        {"name": "osv", "db": str(osv), "mirror": str(mirror), "ecosystems": ["PyPI"]}
    )
    with engine.begin() as conn:
        rows = conn.execute(
            select(results.c.vulnerability_ids, results.c.size_bytes)
            .where(results.c.digest == digest)
            .order_by(results.c.id)
        ).all()
    assert len(rows) == 2 and rows[1][1] == rows[0][1]  # the new result keeps the check's figures
    assert len(rows[1][0]) == 2, rows[1][0]  # requests 2.19.0: two advisories
    [alert] = got
    assert alert["title"] == f"[FIRING] {reg.host}/team/app:1.0 has new vulnerabilities"
    assert alert["detail"].startswith("new: ")
    text = exposition(engine, SqlJobQueue(engine)).decode()
    assert 'imagewise_rematch_changed_images{job="osv"} 1.0' in text
    # a second update with nothing new changes nothing and alerts nobody
    handlers["rematch"]({"name": "again", "db": str(osv)})
    assert len(got) == 1
    assert (
        'imagewise_rematch_changed_images{job="again"} 0.0'
        in exposition(engine, SqlJobQueue(engine)).decode()
    )
