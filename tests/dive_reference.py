"""dive 0.13.1 as the reference for the analysis tests: its JSON and CI output for a
docker-archive, and the assertion that our figures equal its figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from imagewise.analysis import analyze
from imagewise.analysis.model import ImageAnalysis
from imagewise.sources import open_source


def need_tool(tool: str) -> str:
    """Path of ``tool``; a failure in CI, a skip elsewhere when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required for this test")
        pytest.skip(f"{tool} not installed (outside CI)")
    return path


def dive_json(archive: Path, tmp: Path) -> dict[str, Any]:
    dive = need_tool("dive")
    out = tmp / f"{archive.stem}.dive.json"
    subprocess.run(
        [dive, "--source", "docker-archive", str(archive), "-j", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())


def dive_ci(archive: Path) -> str:
    dive = need_tool("dive")
    proc = subprocess.run(
        [dive, "--ci", "--source", "docker-archive", str(archive)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)


def ours(archive: Path) -> ImageAnalysis:
    """imagewise's analysis of a docker-archive."""
    with open_source(f"docker-archive:{archive}") as src:
        return analyze(src.image())


def assert_same_as_dive(archive: Path, tmp: Path) -> ImageAnalysis:
    """Our figures for ``archive`` equal dive's (``--json`` and ``--ci``); returns our analysis."""
    ref = dive_json(archive, tmp)
    a = ours(archive)
    d = a.dive
    assert d.efficiency == ref["image"]["efficiencyScore"]
    assert d.wasted_bytes == ref["image"]["inefficientBytes"]
    assert d.size_bytes == ref["image"]["sizeBytes"]
    assert list(d.layer_sizes) == [layer["sizeBytes"] for layer in ref["layer"]]
    assert [x.dive_files for x in a.layers] == [len(x["fileList"]) for x in ref["layer"]]
    theirs = [(f["file"], f["count"], f["sizeBytes"]) for f in ref["image"]["fileReference"]]
    mine = [(f.path, f.count, f.wasted_bytes) for f in d.inefficient_files]
    assert sorted(mine) == sorted(theirs)
    assert [x[2] for x in mine] == [x[2] for x in theirs]  # same order by size
    if len(mine) <= 12:
        assert mine == theirs  # and exactly the same order where dive's sort is stable
    user = ref["image"]["sizeBytes"] - ref["layer"][0]["sizeBytes"]
    assert d.user_size_bytes == user
    if user:
        assert d.user_wasted_percent == ref["image"]["inefficientBytes"] / user
    text = dive_ci(archive)
    assert f"efficiency: {d.efficiency * 100:.4f} %" in text
    assert f"wastedBytes: {d.wasted_bytes} bytes" in text
    if user and d.wasted_bytes:
        assert f"userWastedPercent: {d.user_wasted_percent * 100:.4f} %" in text
    return a
