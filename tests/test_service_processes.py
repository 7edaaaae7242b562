"""`imagewise serve --worker-processes`: jobs run in `imagewise worker` processes; `kill -9` of
the service takes its workers and their jobs down with it, and after a restart the job that was
running is taken back and runs to the end, once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import corpus
from fixtures_registry import free_port
from service_support import healthy, wait_for

BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return status != "Z"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_kill_9_of_the_service_and_the_job_runs_again_after_a_restart(tmp_path: Path) -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail("the job here is a build: buildah as root (scripts/install-deps installs it)")
    tag = f"iw-kill-{os.getpid()}"
    ctx = tmp_path / "slow"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM oci-archive:{corpus(*BUSYBOX)}\nRUN sleep 4 && echo {tag} > /built\n"
    )
    spec = tmp_path / "imagewise-build.yaml"
    spec.write_text(f"images:\n  slow: {{context: slow, tags: ['localhost/{tag}:1']}}\n")
    db = f"sqlite:///{tmp_path / 'svc.sqlite'}"
    env = {
        **os.environ,
        "IMAGEWISE_SECRET": "s" * 24,
        "IMAGEWISE_BUILDAH_ROOT": str(tmp_path / "buildah"),
    }
    token = subprocess.run(
        ["imagewise", "serve", "token", "t", "--scope", "admin", "--db", db],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()

    marker = tag

    def builds_left() -> str:
        ps = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
        return "\n".join(ln for ln in ps.splitlines() if marker in ln and not ln.startswith("Z"))

    def start() -> tuple[subprocess.Popen[bytes], httpx.Client]:
        port = free_port()
        proc = subprocess.Popen(
            ["imagewise", "serve", "--listen", f"127.0.0.1:{port}", "--db", db]
            + ["--worker-processes", "2", "--workers", "1", "--stale-after", "3"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=5,
            headers={"Authorization": f"Bearer {token}"},
        )

        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), 30, "the service to listen")
        return proc, api

    def job(api: httpx.Client, job_id: int) -> dict[str, object]:
        return next(j for j in api.get("/api/v1/jobs").json() if j["id"] == job_id)

    service, api = start()
    try:
        body = {"build_file": str(spec), "name": "kill", "lint_fail_on": "none"}
        job_id = api.post("/api/v1/builds", json=body).json()["job"]
        wait_for(lambda: job(api, job_id)["state"] == "running", 30, "the build to start")
        workers = wait_for(
            lambda: len(_children(service.pid)) == 2 and _children(service.pid), 10, "2 workers"
        )
        wait_for(lambda: f"echo {tag}" in builds_left(), 20, "the build's RUN step under way")
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait()
    wait_for(lambda: not any(_alive(p) for p in workers), 10, "the workers to die with the service")
    wait_for(lambda: not builds_left(), 10, "the killed build's processes to be gone")
    service, api = start()
    try:
        done = wait_for(
            lambda: job(api, job_id)["state"] in ("done", "failed") and job(api, job_id),
            90,
            "the job",
        )
        assert done["state"] == "done" and done["attempts"] == 2, done
        assert 'imagewise_build_ok{build="kill",image="slow"} 1.0' in api.get("/metrics").text
        workers = _children(service.pid)
        assert len(workers) == 2
    finally:
        service.send_signal(signal.SIGTERM)  # a clean stop: the workers are stopped too
        service.wait(timeout=60)
    left = subprocess.run(
        ["ps", "-o", "pid,stat,args", "-p", ",".join(map(str, workers))],
        capture_output=True,
        text=True,
    ).stdout
    assert not any(_alive(p) for p in workers), left


def test_serve_with_no_config_starts_two_worker_processes(tmp_path: Path) -> None:
    """The README's command: no config, no --db (SQLite in the user data directory), two worker
    processes by default; SIGTERM stops them with the service."""
    port = free_port()
    env = {**os.environ, "IMAGEWISE_SECRET": "s" * 24, "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.Popen(
        ["imagewise", "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), 30, "the service to listen")
        workers = wait_for(
            lambda: len(_children(proc.pid)) == 2 and _children(proc.pid), 15, "workers"
        )
        assert (tmp_path / "data" / "imagewise" / "service.sqlite").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    wait_for(lambda: not any(_alive(p) for p in workers), 10, "the workers to stop")
