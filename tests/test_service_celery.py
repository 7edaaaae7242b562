"""The service on Celery with a real Redis broker (redis-server started here): the config's
`broker:` makes `imagewise serve` API and scheduler only, and `imagewise worker` processes run
the jobs. Scan on push end to end; kill -9 of a worker mid-job (the job completes on the
other worker, one result); Redis restarted with jobs in flight (none lost)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import corpus
from deploy_support import compose_command, with_values
from fixtures_redis import RedisServer
from fixtures_registry import push_image, start_registry, stop_registry
from service_support import celery_workers_ready, healthy, wait_for
from storage_support import image

from imagewise.service.run import Service
from imagewise.service.tokens import create_token

SECRET = "celery-notify-secret"
BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")


class Fleet:
    """A service with a broker, and `imagewise worker` processes on the same database."""

    def __init__(self, tmp_path: Path, redis: RedisServer, stale: float = 3.0) -> None:
        self.db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
        self.config = tmp_path / "imagewise.yaml"
        self.config.write_text(f"broker: {redis.url}\n")
        self.env = {**os.environ, "IMAGEWISE_BUILDAH_ROOT": str(tmp_path / "buildah")}
        self.stale = stale
        self.service = Service(
            db_url=self.db, secret=SECRET, port=0, config={"broker": redis.url}, stale=stale
        )
        self.workers: list[subprocess.Popen[bytes]] = []

    def add_worker(self) -> subprocess.Popen[bytes]:
        """The compose file's worker command, on this test's config and database."""
        args = with_values(
            compose_command("worker"), {"--config": str(self.config), "--db": self.db}
        )
        proc = subprocess.Popen(
            ["imagewise", *args, "--stale-after", str(self.stale)],
            env=self.env,
            start_new_session=True,  # its own group: killed whole, pool children and jobs too
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    def api(self, scope: str = "admin") -> httpx.Client:
        token = create_token(self.service.engine, f"t-{time.monotonic_ns()}", scope)
        return httpx.Client(
            base_url=self.service.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.service.close()


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    f = Fleet(tmp_path, redis_server)
    f.service.start()
    yield f
    f.close()


def _job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    return next(j for j in api.get("/api/v1/jobs").json() if j["id"] == job_id)


def test_scan_on_push_through_the_broker(fleet: Fleet, tmp_path: Path) -> None:
    fleet.add_worker()
    fleet.add_worker()
    celery_workers_ready(fleet.service.queue, 2)
    reg = start_registry(
        tmp_path / "reg", notify_url=f"{fleet.service.url}/notifications", secret=SECRET
    )
    try:
        img = image([9800, 9801])
        push_image(reg, "app", "1.0", img)
        api = fleet.api("read")

        def checked() -> list[dict[str, Any]]:
            rows = api.get("/api/v1/images").json()
            return [
                r for r in rows if r["digest"] == img.manifest_digest and r["status"] != "pending"
            ]

        rows = wait_for(checked, 60, "the pushed image's check")
        assert rows[0]["repository"] == "app" and rows[0]["status"] in ("PASS", "FAIL")

        # split by content (on by default with a broker): one `layer` job per layer, then the
        # check joins their results without reading a layer; the result is written before the
        # job is marked done: wait for that too
        def ended() -> list[dict[str, Any]]:
            jobs = api.get("/api/v1/jobs").json()
            return jobs if all(j["state"] == "done" for j in jobs) else []

        jobs = wait_for(ended, 30, "the jobs marked done")
        layers = sorted(j["key"] for j in jobs if j["kind"] == "layer")
        assert layers == sorted(f"layer:{d.digest}" for d in img.layers)
        (check,) = [j for j in jobs if j["kind"] == "check"]
        assert check["attempts"] == 1  # waiting for its layers is not a failed attempt
        # each layer read once: by a worker that took its job, or by the check holding it
        by_jobs = sum(1 for j in jobs if j["kind"] == "layer" and j["outcome"] == "analysed")
        held = [j for j in jobs if j["kind"] == "layer" and j["outcome"] != "analysed"]
        assert all(j["outcome"].startswith("analysed by the check of") for j in held), jobs
        assert check["outcome"].endswith(
            f"{by_jobs} layer(s) from the fleet's layer results, {len(held)} analysed"
        ), check
        assert "imagewise_image_layers{" in api.get("/metrics").text
    finally:
        stop_registry(reg)


def _slow_build(tmp_path: Path, name: str) -> dict[str, str]:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM oci-archive:{corpus(*BUSYBOX)}\nRUN sleep 4 && echo {name} > /built\n"
    )
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        f"images:\n  {name}: {{context: {name}, tags: ['localhost/iw-{name}-{os.getpid()}:1']}}\n"
    )
    return {"build_file": str(spec), "name": name, "lint_fail_on": "none"}


def test_kill_9_of_a_worker_mid_job(fleet: Fleet, tmp_path: Path) -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail("the job here is a build: buildah as root (scripts/install-deps installs it)")
    first = fleet.add_worker()
    api = fleet.api()
    job_id = api.post("/api/v1/builds", json=_slow_build(tmp_path, "victim")).json()["job"]
    wait_for(lambda: _job(api, job_id)["state"] == "running", 60, "the build to start")
    time.sleep(1.0)  # into its RUN step
    os.killpg(first.pid, signal.SIGKILL)  # the worker, its pool and the build it runs
    first.wait()
    fleet.add_worker()  # another worker takes the job over once its heartbeats are stale
    done = wait_for(
        lambda: _job(api, job_id)["state"] in ("done", "failed") and _job(api, job_id),
        120,
        "the job",
    )
    assert done["state"] == "done" and done["attempts"] == 2, done
    from imagewise.service.scheduler import all_reports

    builds = all_reports(fleet.service.engine, "build")
    assert [r["status"] for r in builds["victim/victim"]] == ["built"]  # one result


def test_a_redis_restart_loses_no_job(fleet: Fleet, redis_server: RedisServer) -> None:
    fleet.add_worker()
    api = fleet.api()
    body = {"registry": "127.0.0.1:9", "repository": "gone", "digest": "sha256:" + "1" * 64}
    redis_server.stop()  # the broker is down while jobs come in
    queued = [
        api.post("/api/v1/checks", json={**body, "tag": str(n)}).json()["job"] for n in range(3)
    ]
    assert len(set(queued)) == 1  # one digest, one job however many requests
    redis_server.start()  # back, without the messages it never got
    ended = wait_for(
        lambda: _job(api, queued[0])["state"] in ("done", "failed") and _job(api, queued[0]),
        120,
        "the job sent again after the restart",
    )
    assert ended["attempts"] >= 1  # it ran (the registry is unreachable: it fails after retries)


def test_the_compose_serve_command_serves_with_a_broker(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The compose file's serve command, on this test's config, database and port: API and
    scheduler only (no worker processes of its own), jobs sent to the broker."""
    from fixtures_registry import free_port

    config = tmp_path / "imagewise.yaml"
    config.write_text(f"broker: {redis_server.url}\n")
    port = free_port()
    args = with_values(
        compose_command("serve"),
        {
            "--listen": f"127.0.0.1:{port}",
            "--config": str(config),
            "--db": f"sqlite:///{tmp_path / 's.sqlite'}",
        },
    )
    proc = subprocess.Popen(
        ["imagewise", *args],
        env={**os.environ, "IMAGEWISE_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), 30, "the service")
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children == []  # with a broker the jobs run on `imagewise worker`s, not here
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_a_backlog_is_not_sent_again_but_lost_messages_are(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Jobs waiting behind a backlog still have their messages in the broker: recovery sends
    nothing; after the broker lost them (restarted) it sends each once."""
    from imagewise.service.celery_backend import CeleryJobQueue
    from imagewise.service.db import connect

    queue = CeleryJobQueue(connect(f"sqlite:///{tmp_path / 'q.sqlite'}"), redis_server.url, 1.0)
    for n in range(3):
        queue.submit("check", f"check:{n}", {"n": n})
    time.sleep(1.2)  # waiting longer than stale, nobody working
    assert queue.broker_depth() == 3 and queue.recover(1.0) == 0
    redis_server.stop()
    redis_server.start()  # without its messages
    assert queue.broker_depth() == 0 and queue.recover(1.0) == 3
    assert queue.broker_depth() == 3 and queue.recover(1.0) == 0
