"""Chromium for the HTML report tests (a pytest plugin listed in conftest): the ``chromium``
fixture, loading a page headless, its console messages and measurements taken by a page script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def measure(chromium: str, html: str, tmp: Path, script: str, width: int = 1280) -> Any:
    """Load ``html`` in Chromium at ``width`` pixels and return what ``script`` (the body of a
    function run after layout) returns, as JSON."""
    import html as html_mod
    import json

    probe = (
        "<script>window.addEventListener('load',function(){var r=(function(){"
        + script
        + "})();document.documentElement.setAttribute('data-iw-measure',"
        "JSON.stringify(r));});</script></body>"
    )
    page = tmp / "measured.html"
    page.write_text(html.replace("</body>", probe, 1))
    proc = browse(chromium, page, tmp, f"--window-size={width},1000", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'data-iw-measure="([^"]*)"', proc.stdout)
    assert m, "the page script did not run"
    return json.loads(html_mod.unescape(m.group(1)))


#: a page script: how many lines each occurrence of the rule ids in ``IDS`` takes
RULE_LINES = """
    var out = [], walk = document.createTreeWalker(document.querySelector(SCOPE), NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
        var node = walk.currentNode;
        IDS.forEach(function (id) {
            var at = node.textContent.indexOf(id);
            if (at < 0) { return; }
            var r = document.createRange();
            r.setStart(node, at); r.setEnd(node, at + id.length);
            var tops = {};
            Array.prototype.forEach.call(r.getClientRects(), function (b) {
                if (b.width > 0) { tops[Math.round(b.top)] = 1; } });
            out.push([id, Object.keys(tops).length]);
        });
    }
    return out;"""


def rule_lines(
    chromium: str, html: str, tmp: Path, ids: list[str], scope: str, width: int
) -> list[list[Any]]:
    import json

    script = RULE_LINES.replace("IDS", json.dumps(ids)).replace("SCOPE", json.dumps(scope))
    return measure(chromium, html, tmp, script, width=width)
