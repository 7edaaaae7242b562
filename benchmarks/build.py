"""``imagewise build`` against bare ``buildah bud`` on the same Dockerfile, side by side, and
the second build's speed-up from the layer cache.

The context: a Dockerfile ``FROM scratch`` with ``--steps`` COPY/LABEL steps over files of
``--size-mb`` in all. Timed, each as a fresh process, best of ``--repeat``:

* overhead: ``imagewise build CONTEXT --lint-fail-on none --no-layers`` vs ``buildah bud
  --isolation chroot`` (gates off, no cache; target: at most 1.1x buildah's wall time);
* cache: the first ``imagewise build`` with ``--layers`` in a fresh vfs storage, then the second
  on the same storage: the speed-up printed;
* registry cache: a Dockerfile on the busybox image of the corpus with CPU-bound ``RUN`` steps,
  built with ``--cache-to`` a local ``docker-registry`` in a fresh storage, then with
  ``--cache-from`` in another fresh storage (a new CI runner): the speed-up printed.

    python benchmarks/build.py [--size-mb 40] [--steps 6] [--repeat 3]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0,):
        raise SystemExit(f"{cmd[:4]} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=40)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    buildah = shutil.which("buildah")
    if buildah is None:
        raise SystemExit("buildah is not installed")
    with tempfile.TemporaryDirectory(prefix="iw-bench-build-") as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        rng = random.Random(3)
        lines = ["FROM scratch"]
        for i in range(args.steps):
            (ctx / f"f{i}.bin").write_bytes(rng.randbytes(args.size_mb * 1_000_000 // args.steps))
            lines += [f"COPY f{i}.bin /data/f{i}.bin", f'LABEL step{i}="{i}"']
        (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
        iw = [sys.executable, "-m", "imagewise", "build", str(ctx), "--lint-fail-on", "none"]
        bare: list[float] = []
        ours: list[float] = []
        first: list[float] = []
        second: list[float] = []
        for trial in range(args.repeat):
            store = Path(tmp) / f"storage-{trial}"
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "src"),
                "CONTAINERS_STORAGE_CONF": str(Path(tmp) / f"storage-{trial}.conf"),
            }
            (Path(tmp) / f"storage-{trial}.conf").write_text(
                f'[storage]\ndriver = "vfs"\ngraphroot = "{store}"\nrunroot = "{store}-run"\n'
            )
            bare.append(timed([buildah, "--storage-driver", "vfs", "bud", "--isolation", "chroot", "-t", f"localhost/bare:{trial}", str(ctx)], env))
            ours.append(timed([*iw, "--no-layers", "-t", f"localhost/ours:{trial}"], env))
            first.append(timed([*iw, "-t", f"localhost/cached:{trial}"], env))
            second.append(timed([*iw, "-t", f"localhost/cached:{trial}"], env))
        b, o = min(bare), min(ours)
        print(f"{args.steps} COPY+LABEL steps, {args.size_mb} MB context; best of {args.repeat}")
        print(f"buildah bud      {b:.2f} s")
        print(f"imagewise build  {o:.2f} s   ratio {o / b:.2f}x (target <= 1.1x): {'PASS' if o / b <= 1.1 else 'FAIL'}")
        f, s = min(first), min(second)
        print(f"layer cache      first {f:.2f} s, second {s:.2f} s: {f / s:.1f}x faster")
        registry_cache(Path(tmp), args.repeat)


def registry_cache(tmp: Path, repeat: int) -> None:
    """First build pushing its steps to a registry, second in a fresh storage pulling them."""
    sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]
    from conftest import corpus
    from copy_image import Registry

    busybox = corpus("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")
    ctx = tmp / "ctx-run"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM oci-archive:{busybox}\n"
        + "".join(
            f"RUN seq 1 150000 | md5sum > /sum{i} && seq 1 150000 | sha256sum >> /sum{i}\n"
            for i in range(4)
        )
    )
    reg = Registry(tmp / "registry")
    try:
        first: list[float] = []
        second: list[float] = []
        for trial in range(repeat):
            cache = f"{reg.host}/cache-{trial}"
            iw = [sys.executable, "-m", "imagewise", "build", str(ctx), "--lint-fail-on", "none"]
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            env["IMAGEWISE_BUILDAH_ROOT"] = str(tmp / f"fresh-a-{trial}")
            first.append(timed([*iw, "-t", f"localhost/rc:{trial}", "--cache-to", cache], env))
            env["IMAGEWISE_BUILDAH_ROOT"] = str(tmp / f"fresh-b-{trial}")
            second.append(timed([*iw, "-t", f"localhost/rc:{trial}", "--cache-from", cache], env))
        f, s = min(first), min(second)
        print(
            f"registry cache   first {f:.2f} s (--cache-to), second in a fresh storage "
            f"{s:.2f} s (--cache-from): {f / s:.1f}x faster"
        )
    finally:
        reg.stop()


if __name__ == "__main__":
    main()
