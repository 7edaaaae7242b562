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
        assert not console_messages(detail.stderr)
        assert shot.stat().st_size > 5000 and detail_shot.stat().st_size > 5000
        # without a token the pages are closed, and a token never shows in a page
        assert httpx.get(f"{svc.url}/ui/").status_code == 401
        assert token not in page.stdout and token not in detail.stdout
    finally:
        svc.close()
