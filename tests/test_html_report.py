"""The HTML report: self-contained, bounded in size, and rendered by headless Chromium with no
console errors (the treemap's script really runs), plus a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import corpus
from test_analysis_dive import W, e
from test_analysis_reclaimable import analyse

from imagewise.analysis.model import ImageAnalysis
from imagewise.report.html import Section, render_analysis, render_page

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required (apt-get install -y chromium)")
        pytest.skip("chromium not installed (outside CI)")
    return path


def browse(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=3000", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def corpus_analysis() -> ImageAnalysis:
    from imagewise.analysis import analyze
    from imagewise.sources import open_source

    with open_source(f"docker-archive:{corpus('dive', 'test-docker-image.tar')}") as src:
        return analyze(src.image())


def test_self_contained(corpus_analysis: ImageAnalysis) -> None:
    html = render_analysis(corpus_analysis)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html
    for text in ("/root/saved.txt", "Waste and fixes", "combine RUN 6 and RUN 7", "98.44 %"):
        assert text in html


def test_renders_with_no_console_errors(chromium: str, corpus_analysis: ImageAnalysis,
                                        tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_analysis(corpus_analysis))
    proc = browse(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    assert dom.count('class="tm') >= 3  # the treemap script drew its boxes
    assert "bin/" in dom and "<svg" in dom


def test_console_errors_are_detected(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(render_page("x", [Section("s", "S", "<script>missingFunction()</script>")]))
    proc = browse(chromium, page, tmp_path, "--dump-dom")
    assert any("missingFunction" in m for m in console_messages(proc.stderr))


def test_screenshot(chromium: str, corpus_analysis: ImageAnalysis, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_analysis(corpus_analysis))
    shot = tmp_path / "shot.png"
    proc = browse(chromium, page, tmp_path, "--window-size=1280,1600", f"--screenshot={shot}")
    assert shot.is_file(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1600)
    assert len(data) > 30_000  # a rendered page, not a blank canvas


def test_many_files_stay_a_small_page() -> None:
    entries = [e(f"usr/lib/pkg{i // 500}/f{i}", size=100 + i % 7) for i in range(50_000)]
    a = analyse([entries, [e("usr/lib/pkg3", W)]])
    html = render_analysis(a)
    assert len(html) < 150_000
    assert "(" in html and "more)" in html


def test_extra_sections_for_other_commands(corpus_analysis: ImageAnalysis) -> None:
    extra = Section("vulns", "Vulnerabilities", "<p>none</p>")
    html = render_analysis(corpus_analysis, extra=[extra])
    assert '<a href="#vulns">Vulnerabilities</a>' in html and '<section id="vulns">' in html
    assert html.index('id="largest"') < html.index('id="vulns"')


def test_json_payload_cannot_close_the_script(tmp_path: Path) -> None:
    html = render_page("t", [], data={"tree": {"n": "</script><b>x", "s": 1, "f": 1}})
    assert "</script><b>" not in html
