"""``imagewise serve`` end to end: a real registry sends push notifications to the service, the
pushed image is checked once per digest, and the result shows in the API and /metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_postgres import fresh_database, postgres_server  # noqa: F401 - a fixture
from fixtures_registry import RegistryServer, push_image, start_registry, stop_registry
from service_support import celery_workers_ready
from storage_support import image

from imagewise.errors import ConfigError
from imagewise.service.run import Service

SECRET = "s3cr3t-notify-token"


def _wait(predicate, timeout: float = 10.0) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The embedded default (SQLite) and a real PostgreSQL server: only the URL differs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'svc.sqlite'}"
    return fresh_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(params=["embedded", "celery"])
def service(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[Service]:
    """The service on each database, with its own workers (embedded) or with a real Redis
    broker and two `imagewise worker` processes (celery): the same tests run on all four."""
    import os
    import signal
    import subprocess

    policy = tmp_path / "policy.yaml"
    policy.write_text("extends: none\n")
    config: dict[str, Any] = {}
    workers: list[subprocess.Popen[bytes]] = []
    if request.param == "celery":
        redis = request.getfixturevalue("redis_server")
        config = {"broker": redis.url}
        cfg = tmp_path / "imagewise.yaml"
        cfg.write_text(f"broker: {redis.url}\n")
        for _ in range(2):
            workers.append(
                subprocess.Popen(
                    ["imagewise", "worker", "--config", str(cfg), "--db", db_url]
                    + ["--policy", str(policy), "--workers", "1"],
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    svc = Service(
        db_url=db_url,
        secret=SECRET,
        port=0,
        workers=2,
        policy_file=str(policy),
        config=config,
    )
    svc.start()
    if workers:
        celery_workers_ready(svc.queue, len(workers))  # timed from a push, not a start-up
    yield svc
    svc.close()
    for proc in workers:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in workers:
        proc.wait(timeout=60)


@pytest.fixture
def notifying(service: Service, tmp_path: Path) -> Iterator[RegistryServer]:
    reg = start_registry(tmp_path / "reg", notify_url=f"{service.url}/notifications", secret=SECRET)
    yield reg
    stop_registry(reg)


def _api(service: Service, scope: str = "read") -> httpx.Client:
    from imagewise.service.tokens import create_token

    token = create_token(service.engine, f"t-{scope}-{time.monotonic_ns()}", scope)
    return httpx.Client(
        base_url=service.url, timeout=5, headers={"Authorization": f"Bearer {token}"}
    )


def test_scan_on_push_shows_in_the_api_and_metrics(
    service: Service, notifying: RegistryServer
) -> None:
    img = image([9700, 9701])
    push_image(notifying, "app", "1.0", img)
    api = _api(service)

    def checked() -> list[dict]:  # type: ignore[type-arg]
        rows = api.get("/api/v1/images").json()
        return [r for r in rows if r["digest"] == img.manifest_digest and r["status"] != "pending"]

    rows = _wait(checked)
    assert (
        rows[0]["repository"] == "app" and rows[0]["tag"] == "1.0" and rows[0]["status"] == "PASS"
    )  # type: ignore[index]
    # the result is written before its job is marked done: the job's figures follow

    def ended() -> str:
        text = api.get("/metrics").text
        return text if 'imagewise_jobs_ended_total{kind="check",state="done"} 1.0' in text else ""

    metrics = str(_wait(ended))
    assert (
        f'imagewise_image_layers{{digest="{img.manifest_digest}",repository="app",tag="1.0"}} 2.0'
        in metrics
    )
    assert "imagewise_image_policy_pass{" in metrics and 'imagewise_jobs{state="done"}' in metrics
    from storage_support import layer

    compressed = sum(len(layer(seed)[0]) for seed in (9700, 9701))  # the gzip layers pushed
    assert (
        f'imagewise_image_compressed_bytes{{digest="{img.manifest_digest}",repository="app",'
        f'tag="1.0"}} {float(compressed)}'
    ) in metrics
    assert 'imagewise_job_duration_seconds_count{kind="check"} 1.0' in metrics
    assert 'imagewise_jobs_ended_total{kind="check",state="done"} 1.0' in metrics
    # the same digest pushed under another tag: recorded, not checked again
    push_image(notifying, "app", "latest", img)
    _wait(lambda: any(r["tag"] == "latest" for r in api.get("/api/v1/images").json()))
    history = api.get(f"/api/v1/images/{img.manifest_digest}").json()["history"]
    assert len(history) == 1 and isinstance(history[0]["findings"], list)
    assert [x["index"] for x in history[0]["layer_list"]] == [0, 1]
    assert api.get("/openapi.json").json()["info"]["title"] == "imagewise"


def test_every_endpoint_needs_its_credential(service: Service) -> None:
    open_paths = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    anon = httpx.Client(base_url=service.url, timeout=5)
    routes = [
        (r.path, m) for r in service.app.routes for m in getattr(r, "methods", ()) if m != "HEAD"
    ]
    assert ("/api/v1/images", "GET") in routes and ("/metrics", "GET") in routes
    for path, method in routes:
        url = path.replace("{digest}", "sha256:" + "0" * 64).replace("{job_id}", "1")
        code = anon.request(method, url, json={}).status_code
        assert (code == 200) if path in open_paths else (code == 401), (method, path, code)
    reader = _api(service, "read")
    assert reader.get("/api/v1/images").status_code == 200
    body = {"registry": "r", "repository": "x", "digest": "sha256:" + "0" * 64}
    assert reader.post("/api/v1/checks", json=body).status_code == 403
    assert _api(service, "write").post("/api/v1/checks", json=body).status_code == 202
    fake = httpx.Client(
        base_url=service.url, timeout=5, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert fake.get("/api/v1/images").status_code == 401  # the notification secret is no token
    # tokens are kept as hashes only
    from sqlalchemy import select

    from imagewise.service.db import tokens

    with service.engine.begin() as conn:
        stored = [r[0] for r in conn.execute(select(tokens.c.hash))]
    assert stored and all(len(h) == 64 and not h.startswith("iwt_") for h in stored)


def test_notifications_need_the_secret(service: Service) -> None:
    api = httpx.Client(base_url=service.url, timeout=5)
    event = {
        "events": [
            {
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "repository": "x",
                    "tag": "1",
                    "digest": "sha256:" + "0" * 64,
                },
            }
        ]
    }
    assert api.post("/notifications", json=event).status_code == 401
    assert (
        api.post(
            "/notifications", json=event, headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
    assert (
        api.post(
            "/api/v1/checks",
            json={"registry": "r", "repository": "x", "digest": "sha256:" + "0" * 64},
        ).status_code
        == 401
    )
    ok = api.post("/notifications", json=event, headers={"X-Imagewise-Secret": SECRET})
    assert ok.status_code == 202 and len(ok.json()["queued"]) == 1
    # the same digest again while pending: the same job, not a second one
    again = api.post("/notifications", json=event, headers={"X-Imagewise-Secret": SECRET})
    assert again.json()["queued"] == ok.json()["queued"]


def test_a_job_left_running_by_a_killed_service_runs_again(db_url: str) -> None:
    from imagewise.service.db import connect
    from imagewise.service.queue import SqlJobQueue

    engine = connect(db_url)
    queue = SqlJobQueue(engine)
    job_id = queue.submit("check", "k", {"x": 1})
    claimed = queue.claim("worker-that-dies")
    assert claimed is not None and claimed.id == job_id
    assert queue.claim("another") is None  # never twice at once
    assert queue.recover(stale=-1) == 1  # its heartbeat is old: back in the queue
    again = queue.claim("after-restart")
    assert again is not None and again.id == job_id and again.attempts == 2
    queue.fail(job_id, "boom")
    assert queue.depth() == {"queued": 1}  # retried later (backoff)


def test_one_key_submitted_at_once_by_many_makes_one_job(db_url: str) -> None:
    """The database keeps one queued or running job per key (a partial unique index): 8
    processes submitting the same key at the same moment get the same job id, and retrying
    a failed job of a key that has another running is refused, not doubled."""
    import multiprocessing

    from imagewise.service.db import connect
    from imagewise.service.queue import SqlJobQueue

    connect(db_url).dispose()  # migrated once, before the processes start
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(8) as pool:
        start = manager.Barrier(8)
        ids = pool.starmap(_submit_at_once, [(db_url, start)] * 8)
    assert len(set(ids)) == 1, ids
    engine = connect(db_url)
    queue = SqlJobQueue(engine)
    assert queue.depth() == {"queued": 1}
    first = queue.claim("w")
    assert first is not None
    queue.finish(first.id, "done")
    second = queue.submit("layer", "layer:sha256:same", {})  # a new job: the first ended
    assert second != first.id
    with engine.begin() as conn:
        from sqlalchemy import update

        from imagewise.service.db import jobs

        conn.execute(update(jobs).where(jobs.c.id == first.id).values(state="failed"))
    assert queue.retry(first.id) is False  # the key's job is queued already
    assert queue.depth() == {"queued": 1, "failed": 1}


def test_services_and_workers_starting_at_once_migrate_one_at_a_time(db_url: str) -> None:
    """A fresh database and 6 processes (a service and its workers) starting together: each
    brings the schema to the newest revision, one after the other, and none fails."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(6) as pool:
        start = manager.Barrier(6)
        versions = pool.starmap(_connect_at_once, [(db_url, start)] * 6)
    assert set(versions) == {"0006"}, versions


def _connect_at_once(db_url: str, start: Any) -> str:
    from sqlalchemy import text

    from imagewise.service.db import connect

    start.wait()
    with connect(db_url).begin() as conn:
        return str(conn.execute(text("select version_num from alembic_version")).scalar_one())


def _submit_at_once(db_url: str, start: Any) -> int:
    from imagewise.service.db import connect
    from imagewise.service.queue import SqlJobQueue

    queue = SqlJobQueue(connect(db_url))
    start.wait()
    return queue.submit("layer", "layer:sha256:same", {"n": 1})


def test_serve_token_cli(tmp_path: Path) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli
    from imagewise.service.db import connect
    from imagewise.service.tokens import scope_of

    db = f"sqlite:///{tmp_path / 't.sqlite'}"
    made = CliRunner().invoke(cli, ["serve", "token", "ci", "--scope", "write", "--db", db])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("iwt_") and scope_of(connect(db), token) == "write"
    again = CliRunner().invoke(cli, ["serve", "token", "ci", "--db", db])
    assert again.exit_code == 2 and "exists" in again.output
    gone = CliRunner().invoke(cli, ["serve", "token", "ci", "--revoke", "--db", db])
    assert gone.exit_code == 0 and scope_of(connect(db), token) is None
    run = CliRunner().invoke(
        cli, ["serve", "--listen", "127.0.0.1:1", "--db", db], env={"IMAGEWISE_SECRET": ""}
    )
    assert run.exit_code == 2 and "set IMAGEWISE_SECRET" in run.output


def test_harbor_push_webhooks_queue_checks(service: Service) -> None:
    api = httpx.Client(
        base_url=service.url, timeout=5, headers={"Authorization": f"Bearer {SECRET}"}
    )
    digest = "sha256:" + "a" * 64
    harbor = {
        "type": "PUSH_ARTIFACT",
        "occur_at": 1700000000,
        "operator": "admin",
        "event_data": {
            "resources": [
                {"digest": digest, "tag": "1.0", "resource_url": "harbor.example/library/app:1.0"}
            ],
            "repository": {"name": "app", "namespace": "library", "repo_full_name": "library/app"},
        },
    }
    got = api.post("/notifications", json=harbor)
    assert got.status_code == 202 and len(got.json()["queued"]) == 1
    from sqlalchemy import select

    from imagewise.service.db import jobs

    with service.engine.begin() as conn:
        payload = conn.execute(
            select(jobs.c.payload).where(jobs.c.key == f"check:{digest}")
        ).scalar_one()
    assert payload["registry"] == "harbor.example" and payload["repository"] == "library/app"


def test_watched_repositories_are_polled(tmp_path: Path, registry: RegistryServer) -> None:
    from fixtures_registry import unique_repo

    repo = unique_repo("watched")
    img = image([9710])
    push_image(registry, repo, "1.0", img)
    svc = Service(
        db_url=f"sqlite:///{tmp_path / 'w.sqlite'}",
        secret=SECRET,
        port=0,
        config={"watch": [{"repository": f"{registry.host}/{repo}", "interval": 1}]},
    )
    svc.start()
    try:
        api = _api(svc)
        _wait(
            lambda: any(
                r["digest"] == img.manifest_digest and r["status"] != "pending"
                for r in api.get("/api/v1/images").json()
            )
        )
        other = image([9711])
        push_image(registry, repo, "1.0", other)  # the tag moves: the next round sees it
        _wait(
            lambda: any(
                r["digest"] == other.manifest_digest and r["status"] != "pending"
                for r in api.get("/api/v1/images").json()
            )
        )
    finally:
        svc.close()


def test_schedules_queue_backups_and_space_reports(
    tmp_path: Path, registry: RegistryServer, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """Scheduled jobs run by the service's workers, their reports exported as metrics and
    judged by the alert rules (a storage limit the registry is over, a job that fails)."""
    from datetime import datetime, timezone

    from fixtures_registry import unique_repo

    from imagewise.service.scheduler import tick

    repo = unique_repo("sched")
    push_image(registry, repo, "1.0", image([9730]))
    jobs_file = tmp_path / "backups.yaml"
    jobs_file.write_text(
        f"backups:\n  - {{name: nightly, sources: ['{registry.host}/{repo}'], to: '{tmp_path / 'store'}', schedule: '* * * * *'}}\n"
    )
    svc = Service(
        db_url=f"sqlite:///{tmp_path / 's.sqlite'}",
        secret=SECRET,
        port=0,
        config={
            "schedules": [
                {
                    "name": "backups",
                    "cron": "*/5 * * * *",
                    "job": "backup-due",
                    "jobs_file": str(jobs_file),
                },
                {
                    "name": "space",
                    "cron": "0 * * * *",
                    "job": "space-report",
                    "refs": [f"{registry.host}/{repo}"],
                },
                {
                    "name": "broken",
                    "cron": "0 * * * *",
                    "job": "space-report",
                    "refs": ["127.0.0.1:9/nothing/here"],
                },
            ],
            "alerts": {
                "channels": {"hook": {"type": "webhook", "url": receiver[0]}},
                "rules": [
                    {"when": "storage_above", "max_bytes": 1000, "channels": ["hook"]},
                    {"when": "job_failed", "channels": ["hook"]},
                ],
            },
        },
    )
    at = datetime(2026, 12, 4, 10, 7, tzinfo=timezone.utc)
    assert tick(svc.engine, svc.queue, svc.scheduler.schedules, now=at) == [
        "backups",
        "space",
        "broken",
    ]
    assert tick(svc.engine, svc.queue, svc.scheduler.schedules, now=at) == []  # once per time
    assert tick(svc.engine, svc.queue, svc.scheduler.schedules, now=at.replace(minute=11)) == [
        "backups"
    ]
    svc.start()
    try:
        api = _api(svc)

        def scraped() -> str:
            text = api.get("/metrics").text
            ready = (
                "imagewise_repository_unique_bytes{" in text
                and "imagewise_backup_last_snapshot_timestamp_seconds{" in text
            )
            return text if ready else ""

        text = _wait(scraped, timeout=20)
        assert f'imagewise_repository_logical_bytes{{repository="{repo}"}}' in text  # type: ignore[operator]
        assert 'imagewise_backup_last_snapshot_timestamp_seconds{job="nightly"}' in text  # type: ignore[operator]
        from sqlalchemy import update

        from imagewise.service.db import jobs

        def failed() -> list[dict[str, Any]]:  # its retries made due at once
            with svc.engine.begin() as conn:
                conn.execute(update(jobs).where(jobs.c.state == "queued").values(not_before=0))
            return [m for m in receiver[1] if m["rule"] == "job_failed"]

        (alert,) = _wait(failed, timeout=30)  # type: ignore[misc]
        assert alert["title"] == "[FIRING] space-report job broken failed"
        storage = [m for m in receiver[1] if m["rule"] == "storage_above"]
        assert [m["title"] for m in storage] == [
            "[FIRING] space report space uses more storage than allowed"
        ]
    finally:
        svc.close()


def test_the_migrations_make_exactly_the_declared_schema(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine, text

    from imagewise.service.db import connect, metadata, migrate

    old = create_engine(db_url)
    migrate(old, "0001")  # a database of the first release, with a job in it
    with old.begin() as conn:
        conn.execute(
            text(
                "insert into jobs (kind, key, payload, state, priority, attempts, max_attempts,"
                " not_before, created) values ('check', 'k', '{}', 'done', 0, 1, 3, 0, 1)"
            )
        )
    old.dispose()
    engine = connect(db_url)  # upgraded on start
    connect(db_url)  # a second start finds the schema current and changes nothing
    with engine.begin() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar_one() == "0006"
        assert conn.execute(text("select key from jobs")).scalar_one() == "k"
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff


def test_scheduled_drills_are_recorded_as_metrics(tmp_path: Path, registry: RegistryServer) -> None:
    from fixtures_registry import unique_repo

    from imagewise.backup.run import backup_run
    from imagewise.service.scheduler import run_drill

    repo = unique_repo("drilled")
    push_image(registry, repo, "1.0", image([9740]))
    backup_run([f"{registry.host}/{repo}"], tmp_path / "store")
    svc = Service(db_url=f"sqlite:///{tmp_path / 'd.sqlite'}", secret=SECRET, port=0)
    job = {
        "name": "weekly",
        "store": str(tmp_path / "store"),
        "scratch": f"oci:{tmp_path / 'scratch'}",
    }
    assert run_drill(svc.engine, job) == "ok"
    from imagewise.service.metrics import exposition

    text = exposition(svc.engine, svc.queue).decode()
    assert 'imagewise_drill_ok{drill="weekly"} 1.0' in text
    assert 'imagewise_drill_last_success_timestamp_seconds{drill="weekly"}' in text
    svc.engine.dispose()


def test_scheduled_pull_and_startup_measures_are_metrics(
    tmp_path: Path, registry: RegistryServer
) -> None:
    """The `pull` and `startup` schedule jobs time a real cold pull from the registry and a real
    start-up (buildah) of the corpus' busybox image; /metrics shows them (拉取速度 / 启动时间)."""
    import shutil

    from conftest import corpus
    from fixtures_registry import unique_repo

    from imagewise.service.metrics import exposition
    from imagewise.service.scheduler import parse_schedules, run_pull, run_startup

    if shutil.which("buildah") is None:
        pytest.fail("start-up is measured with buildah (scripts/install-deps installs it)")
    repo = unique_repo("timed")
    push_image(registry, repo, "1.0", image([9750, 9751]))
    ref = f"{registry.host}/{repo}:1.0"
    busybox = "oci-archive:" + str(
        corpus("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")
    )
    pull, startup = parse_schedules(
        [
            {"name": "pulls", "cron": "0 * * * *", "job": "pull", "images": [ref], "runs": 2},
            {
                "name": "boot",
                "cron": "0 * * * *",
                "job": "startup",
                "image": busybox,
                "command": "sh -c 'sleep 0.2; echo ready; sleep 30'",
                "log": "^ready$",
                "runs": 1,
            },
        ]
    )
    svc = Service(db_url=f"sqlite:///{tmp_path / 'm.sqlite'}", secret=SECRET, port=0)
    try:
        assert run_pull(svc.engine, pull) == "ok" and run_startup(svc.engine, startup) == "ok"
        text = exposition(svc.engine, svc.queue).decode()
        rate = re.search(
            rf'imagewise_pull_bytes_per_second{{image="{re.escape(ref)}"}} (\S+)', text
        )
        assert rate and float(rate.group(1)) > 0, text[-3000:]
        boot = re.search(rf'imagewise_startup_seconds{{image="{re.escape(busybox)}"}} (\S+)', text)
        assert boot and 0.2 <= float(boot.group(1)) < 30, text[-3000:]
        with pytest.raises(ConfigError, match="pull needs images"):
            parse_schedules([{"name": "x", "cron": "0 * * * *", "job": "pull"}])
        with pytest.raises(ConfigError, match="runs must be"):
            parse_schedules([{**startup, "runs": 0}])
    finally:
        svc.engine.dispose()
