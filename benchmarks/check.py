#!/usr/bin/env python3
"""imagewise check vs dive --ci + syft scan, side by side on the same images.

Builds (once, under benchmarks/.work/check/) a realistic ~200 MB image: Alpine's real minirootfs
as the base layer, a "runtime" layer of Python dist-info packages and npm node_modules packages,
and app layers of mixed text and binary files, gzip-compressed, as a docker-archive (the format
all three tools read). A sibling image shares every layer but the top one.

Prints wall times and the ratios the issue asks for:
  cold:  imagewise check (empty layer cache)  /  (dive --ci + syft scan)   target <= 0.5
  warm:  imagewise check of the sibling with the cache filled by the first image, vs cold
         target >= 3x faster

imagewise runs with ``--offline``: neither peer fetches a vulnerability database either (this
machine has no route to OSV's bucket, where every attempt would cost a failed lookup); the
matching against the local database still runs.

Run: python benchmarks/check.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# keep benchmarks/ off the import path: a script here must never shadow a standard module
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / "benchmarks" / ".work" / "check"


def _text(rng: random.Random, n: int) -> bytes:
    words = [b"import", b"def", b"return", b"self", b"value", b"config", b"layer", b"image", b"data"]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])


def runtime_layer(rng: random.Random, pypi: int = 250, npm: int = 600) -> bytes:
    from fixtures_images import tar_bytes

    files: dict[str, bytes] = {}
    site = "usr/lib/python3.12/site-packages"
    for i in range(pypi):
        name, ver = f"pkg{i:04d}", f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        files[f"{site}/{name}-{ver}.dist-info/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\nLicense: MIT\n\n".encode())
        files[f"{site}/{name}-{ver}.dist-info/RECORD"] = b""
        for j in range(8):
            files[f"{site}/{name}/mod{j}.py"] = _text(rng, rng.randint(2_000, 30_000))
    for i in range(npm):
        name = f"npm-pkg-{i:04d}"
        files[f"app/node_modules/{name}/package.json"] = (
            f'{{"name": "{name}", "version": "1.{i % 40}.{i % 7}", "license": "ISC"}}'.encode())
        files[f"app/node_modules/{name}/index.js"] = _text(rng, rng.randint(1_000, 20_000))
    return tar_bytes(files)


def app_layer(rng: random.Random, mb: int, tag: str) -> bytes:
    from fixtures_images import tar_bytes

    files: dict[str, bytes] = {}
    total = 0
    i = 0
    while total < mb * 1_000_000:
        size = rng.choice([4_000, 40_000, 400_000, 2_000_000])
        data = rng.randbytes(size // 2) + _text(rng, size // 2)
        files[f"opt/{tag}/data/f{i:05d}.bin"] = data
        total += size
        i += 1
    return tar_bytes(files)


def build(dest: Path) -> tuple[Path, Path]:
    from fixtures_images import alpine_image, write_docker_archive

    a, b = dest / "image-a.tar", dest / "image-b.tar"
    if a.exists() and b.exists():
        return a, b
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    shared = [runtime_layer(rng), app_layer(rng, 80, "lib"), app_layer(rng, 60, "assets")]
    top_a, top_b = app_layer(rng, 20, "app-v1"), app_layer(rng, 20, "app-v2")
    print("building benchmark images (once) ...", file=sys.stderr)
    write_docker_archive(alpine_image(extra_layers=[*shared, top_a]), a, "bench/app:1.0.0", style="oci")
    write_docker_archive(alpine_image(extra_layers=[*shared, top_b]), b, "bench/app:1.0.1", style="oci")
    return a, b


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - t
    if res.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({res.returncode}): {res.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for tool in ("imagewise", "dive", "syft"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not on PATH (pip install -e '.[test]' brings dive and syft)")
    a, b = build(WORK)
    size = a.stat().st_size
    env = dict(os.environ, CI="true", SYFT_CHECK_FOR_APP_UPDATE="false")
    # time imagewise as installed for users: with bytecode (this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which recompiles every module on every start)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    with tempfile.TemporaryDirectory() as cache:  # warm-up: writes the bytecode once
        timed(["imagewise", "check", f"docker-archive:{b}", "--format", "json", "--offline"],
              dict(env, IMAGEWISE_CACHE_DIR=cache))
    iw_cold, peers, dive_t, syft_t, warm, cold_b = [], [], [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            e = dict(env, IMAGEWISE_CACHE_DIR=cache)
            iw_cold.append(timed(["imagewise", "check", f"docker-archive:{a}", "--format", "json", "--offline"], e))
            warm.append(timed(["imagewise", "check", f"docker-archive:{b}", "--format", "json", "--offline"], e))
        with tempfile.TemporaryDirectory() as cache:
            cold_b.append(timed(["imagewise", "check", f"docker-archive:{b}", "--format", "json", "--offline"],
                                dict(env, IMAGEWISE_CACHE_DIR=cache)))
        d = timed(["dive", "--ci", "--source", "docker-archive", str(a)], env)
        s = timed(["syft", "scan", f"docker-archive:{a}", "-o", "json", "-q"], env)
        dive_t.append(d)
        syft_t.append(s)
        peers.append(d + s)
    med = statistics.median
    print(f"image: {a.name} {size / 1e6:.0f} MB docker-archive (gzip layers), runs={args.runs}, median seconds")
    print(f"{'imagewise check (cold cache)':40s} {med(iw_cold):7.2f}")
    print(f"{'dive --ci':40s} {med(dive_t):7.2f}")
    print(f"{'syft scan -o json':40s} {med(syft_t):7.2f}")
    print(f"{'dive + syft':40s} {med(peers):7.2f}")
    print(f"ratio cold imagewise / (dive + syft): {med(iw_cold) / med(peers):.2f}x  (target <= 0.50)")
    print(f"{'sibling, cold cache':40s} {med(cold_b):7.2f}")
    print(f"{'sibling, warm cache (shared base)':40s} {med(warm):7.2f}")
    print(f"warm speed-up: {med(cold_b) / med(warm):.1f}x  (target >= 3)")


if __name__ == "__main__":
    main()
