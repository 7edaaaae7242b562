"""The service's dashboard in headless Chromium: the pages render, link up, show the checked
image and its trend, log no console error; screenshots are kept in the test's directory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from browser import FLAGS, console_messages
from fixtures_registry import RegistryServer, push_image, unique_repo
from storage_support import image

from imagewise.service.run import Service
from imagewise.service.tokens import create_token


def _open(chromium: str, url: str, tmp: Path, shot: Path) -> subprocess.CompletedProcess[str]:
    subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={tmp / 'p'}",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={tmp / 'p'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dashboard_pages(chromium: str, tmp_path: Path, registry: RegistryServer) -> None:
    svc = Service(db_url=f"sqlite:///{tmp_path / 'ui.sqlite'}", secret="s", port=0)
    svc.start()
    try:
        repo = unique_repo("ui")
        img = image([9720, 9721])
        push_image(registry, repo, "1.0", img)
        token = create_token(svc.engine, "ui", "read")
        writer = create_token(svc.engine, "w", "write")
        api = httpx.Client(
            base_url=svc.url, timeout=5, headers={"Authorization": f"Bearer {writer}"}
        )
        body = {
            "registry": registry.host,
            "repository": repo,
            "tag": "1.0",
            "digest": img.manifest_digest,
        }
        assert api.post("/api/v1/checks", json=body).status_code == 202
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if api.get(f"/api/v1/images/{img.manifest_digest}").status_code == 200:
                break
            time.sleep(0.1)
        shot = tmp_path / "overview.png"
        page = _open(chromium, f"{svc.url}/ui/login?token={token}", tmp_path, shot)
        assert page.returncode == 0, page.stderr[-2000:]
        assert repo in page.stdout and f"/ui/images/{img.manifest_digest}" in page.stdout
        assert "Verdicts" in page.stdout and not console_messages(page.stderr)
        detail_shot = tmp_path / "image.png"
        detail = _open(
            chromium,
            f"{svc.url}/ui/login?token={token}&next=/ui/images/{img.manifest_digest}",
            tmp_path,
            detail_shot,
        )
        assert "Size over time" in detail.stdout and "<svg" in detail.stdout
        assert "Findings of the newest check" in detail.stdout
        assert "Vulnerabilities (critical and high) over time" in detail.stdout
        layers = detail.stdout.split('id="layers"')[1].split("</section>")[0]
        assert layers.count("<tr>") == 1 + 2  # the head and the image's two layers
        assert not console_messages(detail.stderr)
        assert shot.stat().st_size > 5000 and detail_shot.stat().st_size > 5000
        # without a token the pages are closed, and a token never shows in a page
        assert httpx.get(f"{svc.url}/ui/").status_code == 401
        assert token not in page.stdout and token not in detail.stdout
        _more_pages(chromium, svc, tmp_path, token, writer, repo)
    finally:
        svc.close()


def _more_pages(
    chromium: str, svc: Service, tmp_path: Path, token: str, writer: str, repo: str
) -> None:
    """Repositories, jobs (with a failed job retried through its button's form) and alerts
    (with a ticket) render without console errors."""
    from sqlalchemy import insert

    from imagewise.service.db import alerts, jobs, tickets

    with svc.engine.begin() as conn:
        failed = conn.execute(
            insert(jobs).values(
                kind="sync",
                key="schedule:mirror:1",
                payload={},
                state="failed",
                priority=0,
                attempts=3,
                max_attempts=3,
                not_before=0,
                created=time.time() - 60,
                finished=time.time(),
                error="RuntimeError: registry gone",
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(alerts).values(
                key="disk:space report hub", state="firing", last_sent=time.time()
            )
        )
        conn.execute(
            insert(tickets).values(
                channel="gh",
                key="disk:space report hub",
                ticket="7",
                url="https://github.example/acme/platform/issues/7",
                state="open",
                created=time.time(),
            )
        )
    pages = {
        "repositories": ("Repositories", repo),
        "jobs": ("Jobs", "RuntimeError: registry gone"),
        "alerts": ("Alerts", "disk:space report hub"),
    }
    for name, (title, text) in pages.items():
        shot = tmp_path / f"{name}.png"
        got = _open(chromium, f"{svc.url}/ui/login?token={token}&next=/ui/{name}", tmp_path, shot)
        assert got.returncode == 0 and title in got.stdout and text in got.stdout, name
        assert not console_messages(got.stderr), name
        assert shot.stat().st_size > 5000 and token not in got.stdout
    jobs_dom = _open(
        chromium, f"{svc.url}/ui/login?token={token}&next=/ui/jobs", tmp_path, tmp_path / "j.png"
    ).stdout
    assert f'action="/ui/jobs/{failed}/retry"' in jobs_dom and 'http-equiv="refresh"' in jobs_dom
    assert (
        'href="https://github.example/acme/platform/issues/7"'
        in _open(
            chromium,
            f"{svc.url}/ui/login?token={token}&next=/ui/alerts",
            tmp_path,
            tmp_path / "a.png",
        ).stdout
    )
    # the retry button's form: a read token may not, a write token's cookie may
    reader = httpx.Client(base_url=svc.url, cookies={"iw_token": token}, follow_redirects=False)
    assert reader.post(f"/ui/jobs/{failed}/retry").status_code == 403
    write = httpx.Client(base_url=svc.url, cookies={"iw_token": writer}, follow_redirects=False)
    done = write.post(f"/ui/jobs/{failed}/retry")
    assert done.status_code == 303 and done.headers["location"] == "/ui/jobs"
    with svc.engine.begin() as conn:
        from sqlalchemy import select

        state, attempts = conn.execute(
            select(jobs.c.state, jobs.c.attempts).where(jobs.c.id == failed)
        ).one()
    assert (state, attempts) in (("queued", 0), ("running", 1), ("failed", 1), ("queued", 1))
    api = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {writer}"})
    assert api.post("/api/v1/jobs/999999/retry").status_code == 409
