"""Upkeep as jobs of the service: retention (plan, then apply), sync and the vulnerability
database update, run by the service's own workers on real components (a registry of the
test's own, a directory OSV mirror of real advisories), each outcome exported as metrics."""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import corpus
from fixtures_registry import RegistryServer, push_image, start_registry, stop_registry
from storage_support import image

from imagewise.errors import ConfigError
from imagewise.service.metrics import exposition
from imagewise.service.run import Service
from imagewise.service.scheduler import parse_schedules, tick


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path / "reg")
    yield server
    stop_registry(server)


def _osv_mirror(root: Path) -> Path:
    """A directory mirror (as `imagewise db update --mirror DIR`) of three real PyPI advisories."""
    files = sorted(corpus("osv", "pypa-advisory-database", "vulns").rglob("*.yaml"))[:3]
    (root / "PyPI").mkdir(parents=True)
    with zipfile.ZipFile(root / "PyPI" / "all.zip", "w") as z:
        for f in files:
            doc = yaml.safe_load(f.read_text())
            z.writestr(f"{doc['id']}.json", json.dumps(doc, default=str))
    return root


def test_retention_sync_and_db_update_jobs(tmp_path: Path, own_registry: RegistryServer) -> None:
    reg = own_registry
    for n in range(1, 5):
        push_image(reg, "app", f"b{n}", image([7100, 7100 + n], created=f"2026-11-0{n}T00:00:00Z"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "storage_management:\n  retention:\n    rules:\n"
        "      - {repositories: ['app'], tags: ['b*'], keep_latest: 2}\n"
    )
    sync_file = tmp_path / "mirror.yaml"
    sync_file.write_text(f"{reg.host}:\n  tls-verify: false\n  images:\n    app: ['b3', 'b4']\n")
    base = {"cron": "0 * * * *"}
    schedules = [
        {**base, "name": "plan", "job": "retention", "refs": [reg.host], "policy": str(policy)},
        {
            **base,
            "name": "offline",
            "job": "sync",
            "config": str(sync_file),
            "destination": f"oci:{tmp_path / 'bundle'}",
        },
        {
            **base,
            "name": "osv",
            "job": "db-update",
            "db": str(tmp_path / "osv.sqlite"),
            "mirror": str(_osv_mirror(tmp_path / "osv-mirror")),
            "ecosystems": ["PyPI"],
        },
    ]
    svc = Service(
        db_url=f"sqlite:///{tmp_path / 'u.sqlite'}",
        secret="s" * 16,
        port=0,
        config={"schedules": schedules},
    )
    assert tick(svc.engine, svc.queue, svc.scheduler.schedules) == ["plan", "offline", "osv"]
    svc.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and svc.queue.depth().get("done", 0) < 3:
            time.sleep(0.1)
        assert svc.queue.depth() == {"done": 3}, svc.queue.depth()
        text = exposition(svc.engine, svc.queue).decode()
        assert 'imagewise_retention_deleted{job="plan"} 0.0' in text  # planned, not applied
        freed = float(text.split('imagewise_retention_freed_bytes{job="plan"} ')[1].split()[0])
        assert freed > 0
        assert 'imagewise_sync_errors{job="offline"} 0.0' in text
        assert 'imagewise_db_update_timestamp_seconds{job="osv"}' in text
        assert (tmp_path / "bundle" / "index.json").is_file()
        # the same rules applied: the two oldest b-tags go
        applied = {**schedules[0], "name": "apply", "apply": True}
        from imagewise.service.scheduler import run_retention

        assert run_retention(svc.engine, parse_schedules([applied])[0]) == "ok"
        text = exposition(svc.engine, svc.queue).decode()
        assert 'imagewise_retention_deleted{job="apply"} 2.0' in text
        tags = httpx.get(f"{reg.url}/v2/app/tags/list").json()["tags"]
        assert sorted(tags) == ["b3", "b4"]
    finally:
        svc.close()
    for bad, why in (
        ({**schedules[0], "policy": None}, "retention needs refs and policy"),
        ({**schedules[1], "destination": None}, "sync needs config"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_schedules([bad])


def test_a_retention_job_deletes_old_untagged_manifests_through_the_storage_dir(
    tmp_path: Path, own_registry: RegistryServer
) -> None:
    """``storage_dir`` on a retention schedule: the registry's storage lists the manifests no
    tag names; those pushed longer ago than delete_untagged_after_hours are deleted."""
    import os

    from imagewise.service.db import connect
    from imagewise.service.scheduler import latest_reports, run_retention

    reg = own_registry
    old, new = image([7400, 7401]), image([7400, 7402])
    push_image(reg, "app", "latest-build", old)
    push_image(reg, "app", "latest-build", new)  # old is untagged now
    link = (
        reg.storage_dir / "docker/registry/v2/repositories/app/_manifests/revisions/sha256"
        / old.manifest_digest.split(":")[1] / "link"
    )  # fmt: skip
    then = time.time() - 3 * 3600
    os.utime(link, (then, then))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "storage_management:\n  retention:\n    delete_untagged_after_hours: 2\n"
        "    rules:\n      - {always: true}\n"
    )
    job = {
        "cron": "0 * * * *",
        "name": "untagged",
        "job": "retention",
        "refs": [reg.host],
        "policy": str(policy),
        "storage_dir": str(reg.storage_dir),
        "apply": True,
    }
    engine = connect(f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert run_retention(engine, parse_schedules([job])[0]) == "ok"
    report = latest_reports(engine, "retention")["untagged"]
    assert (report["planned"], report["deleted"]) == (1, 1)
    gone = httpx.head(
        f"{reg.url}/v2/app/manifests/{old.manifest_digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert gone.status_code == 404
    kept = httpx.head(
        f"{reg.url}/v2/app/manifests/latest-build",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert kept.status_code == 200
