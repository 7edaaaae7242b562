"""Bounded memory on images of very many small files: peak RSS of ``imagewise analyze`` and
``imagewise check`` measured in a child, against 0.5 KB per file above the same command's peak on
a tiny image (its start-up; the hardening issue's target: 3 million files in 1.5 GB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from manyfiles_image import write_layout, write_spread_archive

FILES = 200_000
PER_FILE_KB = 0.5
LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(json.loads(sys.argv[1]))
_, status, usage = os.wait4(p.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_kb(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Peak RSS (KiB) of ``cmd`` run in a child of a small launcher: Linux keeps a child's peak
    RSS across exec, so forking straight from this (big) test process would count its memory."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, json.dumps(cmd)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return int(proc.stdout.strip().splitlines()[-1])


def analyze_cmd(ref: str, out: str = os.devnull) -> list[str]:
    return [sys.executable, "-m", "imagewise", "analyze", ref, "--format", "json", "-o", out]


def check_cmd(ref: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "imagewise",
        "check",
        ref,
        "--format",
        "json",
        "-o",
        os.devnull,
        "--offline",
        "--allow-incomplete",
    ]


@pytest.mark.slow
def test_200k_files_peak_rss_below_half_a_kb_per_file(tmp_path: Path) -> None:
    ref = write_layout(tmp_path / "layout", FILES, compression="gzip")
    tiny = write_layout(tmp_path / "tiny", 10, compression="gzip")
    out = tmp_path / "a.json"
    base = peak_kb(analyze_cmd(tiny))
    peak = peak_kb(analyze_cmd(ref, str(out)))
    assert peak < base + PER_FILE_KB * FILES, f"peak RSS {peak // 1024} MB, start {base // 1024} MB"
    doc = json.loads(out.read_text())
    # layer 0: 200 directories of 1000 files (a quarter with 8-12 bytes); layer 1 rewrites
    # 10 files in each of 199 directories and deletes directory d0001 (1000 files)
    assert doc["final_files"] == FILES - 1000
    assert [layer["entries"] for layer in doc["layers"]] == [FILES + 200, 199 + 199 * 10 + 1, 0]
    assert doc["layers"][0]["dive_files"] == FILES + 200 + 2  # + usr, usr/share
    rewritten = 199 * 10
    assert len(doc["inefficient_files"]) == rewritten
    deleted = sum(len(b"%d-%d\n" % (1, i)) for i in range(0, 1000, 4))
    overwritten = sum(
        len(b"%d-%d\n" % (d, i)) for d in range(200) if d != 1 for i in range(0, 1000, 100)
    )
    assert doc["reclaimable_bytes"] == deleted + overwritten


@pytest.mark.slow
@pytest.mark.parametrize("command", [analyze_cmd, check_cmd], ids=["analyze", "check"])
def test_many_small_files_in_a_docker_archive_below_half_a_kb_per_file(
    tmp_path: Path, command: Callable[[str], list[str]]
) -> None:
    """The shape users hit (three layers of small files, half of each rewritten by the next) in
    a ``docker save`` archive, whose layers are walked in place: neither the analysis state,
    nor the mapped pages of the archive, nor the layer cache's records (``check`` fills the
    cache, then reads it back) may cost more than 0.5 KB a file."""
    files = 150_000
    ref = write_spread_archive(tmp_path / "many.tar", files)
    tiny = write_spread_archive(tmp_path / "tiny.tar", 3)
    env = dict(os.environ, IMAGEWISE_CACHE_DIR=str(tmp_path / "cache"), IMAGEWISE_OFFLINE="1")
    base = peak_kb(command(tiny), env)
    limit = base + PER_FILE_KB * files
    runs = [peak_kb(command(ref), env)]
    if command is check_cmd:
        runs.append(peak_kb(command(ref), env))  # warm: entries and results from the layer cache
    for peak in runs:
        assert peak < limit, f"peak RSS {peak // 1024} MB, limit {limit // 1024:.0f} MB"
