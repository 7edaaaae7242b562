"""Layer walk throughput against isal decompress-only throughput on the same gzip layer.

Usage: python benchmarks/layer_walk.py [--size-mb 200] [--repeat 3] [--cache DIR]

Builds (once, cached) a realistic gzip layer of about ``--size-mb`` compressed megabytes: a
directory tree of text files (source-like, config-like), binaries (structured, partly random),
already-compressed blobs; mostly small files (see ``_size``), a symlink every 50 files. Then, on the same bytes, in one run:

* baseline: ``python -c`` streaming ``isal.igzip`` decompression to EOF (1 MiB reads), timed
  inside the child so interpreter start-up is excluded;
* ours: ``walk_layer`` over the same file, draining every file's content as analyzers do
  (``entry.open().read(1 MiB)`` until EOF), in a child process too;
* ours + sha256: the same, hashing every file's content (what a digesting analyzer pays).

Prints MB/s (uncompressed tar bytes per second) for each, and the ratio ours / baseline.
Target: ours >= 70% of the baseline. Best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BASELINE = r"""
import sys, time
from isal import igzip
t = time.perf_counter()
n = 0
with igzip.open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        n += len(b)
print(n, time.perf_counter() - t)
"""

OURS = r"""
import sys, time, hashlib
from imagewise.layers.walk import walk_layer
hashing = sys.argv[2] == "sha256"
t = time.perf_counter()
n = files = 0
with open(sys.argv[1], "rb", buffering=0) as raw:
    for e in walk_layer(raw):
        if e.is_file:
            files += 1
            f = e.open()
            h = hashlib.sha256() if hashing else None
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
                if h is not None:
                    h.update(b)
print(n, time.perf_counter() - t, files)
"""

WORDS = ["the", "of", "and", "to", "in", "is", "for", "on", "that", "with", "as", "by", "at", "from", "this", "be", "are", "or", "it", "an", "have", "not", "which", "config", "server", "value", "return", "import", "def", "class", "self", "none", "true", "false", "error", "file", "path", "data", "user", "name", "type", "string", "int", "list", "dict", "http", "https", "version", "package", "install", "lib", "usr", "bin", "share", "include", "local", "etc", "var", "log", "cache", "tmp", "opt"]


def _text(rnd: random.Random, size: int) -> bytes:
    out = []
    n = 0
    while n < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 14)))
        if rnd.random() < 0.3:
            line = "    " + line + f" = {rnd.randint(0, 99999)}"
        out.append(line)
        n += len(line) + 1
    return ("\n".join(out)).encode()[:size]


def _binary(rnd: random.Random, size: int) -> bytes:
    # structured: repeated records with random fields, like object code / tables
    parts = []
    n = 0
    while n < size:
        rec = rnd.randbytes(rnd.randint(4, 24)) + bytes(rnd.randint(4, 40)) + b"\x48\x89\xe5\xc3"
        parts.append(rec * rnd.randint(1, 6))
        n += len(parts[-1])
    return b"".join(parts)[:size]


def _size(rnd: random.Random) -> int:
    """Log-uniform within three bands, like a distro or language-runtime layer: 80% small
    (100 B - 20 KB), 18% medium (20 - 500 KB), 2% large (0.5 - 4 MB)."""
    r = rnd.random()
    lo, hi = (2.0, 4.3) if r < 0.80 else (4.3, 5.7) if r < 0.98 else (5.7, 6.6)
    return int(10 ** rnd.uniform(lo, hi))


def build_layer(path: Path, size_mb: int, seed: int = 7) -> None:
    from isal import igzip

    rnd = random.Random(seed)
    target = size_mb * 1024 * 1024
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        gz = igzip.GzipFile(fileobj=out, mode="wb", compresslevel=2, mtime=0)
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
            i = 0
            while out.tell() < target:
                d = f"usr/lib/pkg{i // 200:04d}"
                if i % 200 == 0:
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    tf.addfile(ti)
                kind = rnd.random()
                size = _size(rnd)
                if kind < 0.55:
                    data, ext = _text(rnd, size), "py"
                elif kind < 0.85:
                    data, ext = _binary(rnd, size), "so"
                else:
                    data, ext = rnd.randbytes(size), "gz"
                ti = tarfile.TarInfo(f"{d}/file{i:06d}.{ext}")
                ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
                tf.addfile(ti, io.BytesIO(data))
                if i % 50 == 0:
                    ln = tarfile.TarInfo(f"{d}/link{i:06d}")
                    ln.type, ln.linkname = tarfile.SYMTYPE, f"file{i:06d}.{ext}"
                    tf.addfile(ln)
                i += 1
        gz.close()
    os.replace(tmp, path)


def _child(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout.split()
    return [float(x) for x in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "imagewise-bench"))
    a = ap.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    layer = cache / f"layer-v2-{a.size_mb}mb.tar.gz"
    if not layer.exists():
        t = time.perf_counter()
        print(f"building {layer} ...", file=sys.stderr)
        build_layer(layer, a.size_mb)
        print(f"built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    comp = layer.stat().st_size
    best: dict[str, float] = {}
    tar_bytes = 0.0
    files = 0.0
    for _ in range(a.repeat):
        n, t = _child(BASELINE, str(layer))
        tar_bytes = n
        best["baseline"] = min(best.get("baseline", 1e9), t)
        _, t, files = _child(OURS, str(layer), "drain")
        best["walk"] = min(best.get("walk", 1e9), t)
        _, t, files = _child(OURS, str(layer), "sha256")
        best["walk+sha256"] = min(best.get("walk+sha256", 1e9), t)
    mb = tar_bytes / 1e6
    print(f"layer: {comp / 1e6:.1f} MB gzip, {mb:.1f} MB tar, {int(files)} files")
    print(f"{'run':<34}{'seconds':>9}{'MB/s':>9}{'ratio':>8}")
    base = best["baseline"]
    rows = [("isal decompress only (python -c)", base), ("imagewise walk + drain", best["walk"]),
            ("imagewise walk + sha256 of files", best["walk+sha256"])]
    for name, t in rows:
        print(f"{name:<34}{t:>9.3f}{mb / t:>9.0f}{base / t:>8.0%}")
    ratio = base / best["walk"]
    print(f"walk throughput = {ratio:.0%} of isal decompress-only (target >= 70%): "
          f"{'PASS' if ratio >= 0.7 else 'FAIL'}")


if __name__ == "__main__":
    main()
