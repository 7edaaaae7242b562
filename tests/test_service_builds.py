"""Builds as jobs of the service: queued through the API (admin only) or by a schedule, run by
its workers with the real engine (buildah), each image's build recorded, exported as
``imagewise_build_*`` metrics and judged by the ``build_failed`` alert rule."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagewise.errors import ConfigError
from imagewise.service.run import Service
from imagewise.service.scheduler import parse_schedules


def _build_file(tmp_path: Path, broken: bool) -> Path:
    for name in ("good", "bad"):
        ctx = tmp_path / name
        ctx.mkdir(exist_ok=True)
        copy = "nope.txt" if name == "bad" and broken else f"{name}.txt"
        (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY {copy} /{name}.txt\n")
        (ctx / f"{name}.txt").write_text(name)
    spec = tmp_path / "imagewise-build.yaml"
    tag = f"localhost/iw-svc-build-{os.getpid()}"
    spec.write_text(
        "images:\n"
        f"  good: {{context: good, tags: ['{tag}-good:1']}}\n"
        f"  bad: {{context: bad, tags: ['{tag}-bad:1']}}\n"
    )
    return spec


def _token(svc: Service, scope: str) -> httpx.Client:
    from imagewise.service.tokens import create_token

    token = create_token(svc.engine, f"t-{scope}-{time.monotonic_ns()}", scope)
    return httpx.Client(base_url=svc.url, timeout=5, headers={"Authorization": f"Bearer {token}"})


def _until_done(api: httpx.Client, job: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {r["id"]: r for r in api.get("/api/v1/jobs").json()}
        if rows.get(job, {}).get("state") in ("done", "failed"):
            return rows[job]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish")


def test_builds_run_as_jobs_with_metrics_and_alerts(
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail("builds run with buildah as root (scripts/install-deps installs it)")
    url, got = receiver
    spec = _build_file(tmp_path, broken=True)
    svc = Service(
        db_url=f"sqlite:///{tmp_path / 'svc.sqlite'}",
        secret="x" * 16,
        port=0,
        config={
            "alerts": {
                "channels": {"hook": {"type": "webhook", "url": url}},
                "rules": [{"name": "builds", "when": "build_failed", "channels": ["hook"]}],
            }
        },
    )
    svc.start()
    try:
        admin, writer = _token(svc, "admin"), _token(svc, "write")
        body = {"build_file": str(spec), "name": "nightly", "lint_fail_on": "none"}
        assert writer.post("/api/v1/builds", json=body).status_code == 403  # it runs the engine
        for bad, why in (
            ({"build_file": str(tmp_path / "none.yaml")}, "build file not found"),
            ({**body, "colour": "red"}, "unknown key colour"),
            ({**body, "jobs": 0}, "jobs must be"),
        ):
            r = admin.post("/api/v1/builds", json=bad)
            assert r.status_code == 422 and why in r.json()["detail"], r.text
        r = admin.post("/api/v1/builds", json=body)
        assert r.status_code == 202, r.text
        _until_done(admin, r.json()["job"])
        text = admin.get("/metrics").text
        assert 'imagewise_build_ok{build="nightly",image="good"} 1.0' in text
        assert 'imagewise_build_ok{build="nightly",image="bad"} 0.0' in text
        assert 'imagewise_build_steps{build="nightly",image="good"} 2.0' in text
        assert 'imagewise_build_duration_seconds{build="nightly",image="good"}' in text
        assert (
            'imagewise_build_last_success_timestamp_seconds{build="nightly",image="good"}' in text
        )
        assert (
            'imagewise_build_last_success_timestamp_seconds{build="nightly",image="bad"}'
            not in text
        )
        assert [(m["status"], m["subject"]) for m in got] == [("firing", "nightly/bad")]
        assert "nope.txt" in got[0]["detail"] and got[0]["title"].endswith("fails to build")
        # fixed: the next build resolves the alert and the image's build is ok
        _build_file(tmp_path, broken=False)
        _until_done(admin, admin.post("/api/v1/builds", json=body).json()["job"])
        text = admin.get("/metrics").text
        assert 'imagewise_build_ok{build="nightly",image="bad"} 1.0' in text
        assert [(m["status"], m["subject"]) for m in got] == [
            ("firing", "nightly/bad"),
            ("resolved", "nightly/bad"),
        ]
    finally:
        svc.close()


def test_build_schedules_are_checked_when_the_service_starts(tmp_path: Path) -> None:
    spec = _build_file(tmp_path, broken=False)
    item = {"name": "nightly", "cron": "0 3 * * *", "job": "build", "build_file": str(spec)}
    assert parse_schedules([item])[0]["build_file"] == str(spec)
    for bad, why in (
        ({**item, "build_file": None}, "build_file"),
        ({**item, "build_file": str(tmp_path / "x.yaml")}, "x.yaml"),
        ({**item, "jobs": "two"}, "jobs must be"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_schedules([bad])
