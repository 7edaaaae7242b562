"""Bounded memory on a 200k-file image: peak RSS of ``imagewise analyze`` measured in a child."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from manyfiles_image import write_layout

FILES = 200_000
RSS_LIMIT_KB = 300 * 1024
LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(json.loads(sys.argv[1]))
_, status, usage = os.wait4(p.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
def test_200k_files_peak_rss_below_300mb(tmp_path: Path) -> None:
    ref = write_layout(tmp_path / "layout", FILES, compression="gzip")
    out = tmp_path / "a.json"
    # a small launcher forks the analysis: Linux keeps a child's peak RSS across exec, so
    # forking straight from this (big) test process would count the test's own memory
    cmd = [sys.executable, "-m", "imagewise", "analyze", ref, "--format", "json", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps(cmd)], capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    peak_kb = int(proc.stdout.strip())
    assert peak_kb < RSS_LIMIT_KB, f"peak RSS {peak_kb // 1024} MB"
    doc = json.loads(out.read_text())
    # layer 0: 200 directories of 1000 files (a quarter with 8-12 bytes); layer 1 rewrites
    # 10 files in each of 199 directories and deletes directory d0001 (1000 files)
    assert doc["final_files"] == FILES - 1000
    assert [layer["entries"] for layer in doc["layers"]] == [FILES + 200, 199 + 199 * 10 + 1, 0]
    assert doc["layers"][0]["dive_files"] == FILES + 200 + 2  # + usr, usr/share
    rewritten = 199 * 10
    assert len(doc["inefficient_files"]) == rewritten
    deleted = sum(len(b"%d-%d\n" % (1, i)) for i in range(0, 1000, 4))
    overwritten = sum(len(b"%d-%d\n" % (d, i)) for d in range(200) if d != 1
                      for i in range(0, 1000, 100))
    assert doc["reclaimable_bytes"] == deleted + overwritten
