"""The HTML report: self-contained, bounded in size, and rendered by headless Chromium with no
console errors (the treemap's script really runs), plus a screenshot."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from analysis_support import W, analyse, e
from browser import browse, console_messages, measure
from conftest import corpus

from imagewise.analysis.model import ImageAnalysis
from imagewise.report.html import Section, render_analysis, render_page


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


def test_renders_with_no_console_errors(
    chromium: str, corpus_analysis: ImageAnalysis, tmp_path: Path
) -> None:
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


LONG = (
    "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends build-essential "
    "libpq-dev python3-dev && rm -rf /var/lib/apt/lists/* # the end of a long command"
)


def test_long_layer_commands_end_with_an_ellipsis_and_show_whole_on_hover(
    chromium: str, corpus_analysis: ImageAnalysis, tmp_path: Path
) -> None:
    layers = list(corpus_analysis.layers)
    layers[1] = layers[1].replace(created_by=LONG)
    layers[2] = layers[2].replace(
        created_by="/bin/sh -c #(nop) ADD file:" + "5d6b639e8b6b" * 6 + " in / "
    )
    a = corpus_analysis.replace(layers=tuple(layers))
    got = measure(
        chromium,
        render_analysis(a),
        tmp_path,
        """
        var out = [];
        document.querySelectorAll('#layers svg g').forEach(function (g) {
            var label = g.querySelectorAll('text')[2];
            out.push({title: g.querySelector('title').textContent, label: label.textContent,
                      right: label.getBBox().x + label.getComputedTextLength(),
                      width: g.ownerSVGElement.viewBox.baseVal.width});
        });
        return out;""",
        width=1000,
    )
    long_run, long_add = got[1], got[2]
    assert long_run["label"].endswith("…") and len(long_run["label"]) < len(LONG)
    assert long_run["title"].endswith("# the end of a long command")  # the hover text is whole
    assert long_add["label"].endswith("…") and long_add["title"].endswith(" in /")
    for layer in got:  # every label fits in the chart
        assert layer["right"] <= layer["width"], layer


def test_tiles_explain_reclaimable_against_save_up_to_in_one_line(
    chromium: str, corpus_analysis: ImageAnalysis, tmp_path: Path
) -> None:
    got = measure(
        chromium,
        render_analysis(corpus_analysis),
        tmp_path,
        """
        var p = document.getElementById('iw-save-vs-reclaimable');
        var cards = p.previousElementSibling.textContent;
        return {text: p.textContent, height: p.getBoundingClientRect().height,
                line: parseFloat(getComputedStyle(p).lineHeight), cards: cards};""",
    )
    assert "reclaimable" in got["cards"].lower() and "save up to" in got["cards"]
    assert "Reclaimable" in got["text"] and "save up to" in got["text"]
    assert got["height"] < 1.5 * got["line"]  # one line at 1280 pixels
