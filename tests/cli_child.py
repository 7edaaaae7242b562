"""The imagewise CLI in a child process, for tests of what a kill, a full disk or a file size
limit does to the files it writes."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: run the CLI so that writing a file in the directory $DIE_IN kills the process after 1 KiB
DIE_WRITING = """
import builtins, os, signal, sys

class Dying:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[:1024])
        self.f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, name):
        return getattr(self.f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

def dying(real):
    def opener(file, mode="r", *args, **kw):
        f = real(file, mode, *args, **kw)
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else file
        if any(c in mode for c in "wax+") and \\
                os.path.dirname(os.path.abspath(path)) == os.environ["DIE_IN"]:
            return Dying(f)
        return f
    return opener

builtins.open, os.fdopen = dying(builtins.open), dying(os.fdopen)
from imagewise.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def imagewise(
    *args: str,
    stdin: bytes | None = None,
    limit: int | None = None,
    die_writing_in: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI in a child process; ``limit``: its file size limit (how a full disk looks
    to a writer); ``die_writing_in``: it is killed while it writes a file in that directory."""

    def set_limit() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
    run = ["-m", "imagewise"]
    if die_writing_in is not None:
        run, env["DIE_IN"] = ["-c", DIE_WRITING], str(die_writing_in.resolve())
    return subprocess.run(
        [sys.executable, *run, *args],
        input=stdin,
        capture_output=True,
        env=env,
        preexec_fn=set_limit,
        timeout=300,
        check=False,
    )
