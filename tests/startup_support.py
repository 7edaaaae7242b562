"""What a command line imports: runs it in a child process as the console script does and
returns its status and the modules it imported (start-up guards)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: runs one command line as the console script does and prints the modules it imported
CHILD = """
import contextlib, io, json, sys
from imagewise.cli.main import run
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = run(sys.argv[1:])
    except SystemExit as e:  # as imagewise.cli.main.main takes it
        code = e.code or 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(argv: list[str], cwd: Path, pythonpath: str = str(SRC)) -> tuple[int, set[str]]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    return out["code"], set(out["modules"])
