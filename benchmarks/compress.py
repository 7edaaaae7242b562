"""gzip vs zstd levels on the benchmark image's layers: size, compression time, decompression
throughput, side by side in one run (what ``imagewise copy --compress`` trades).

The layers are those of ``benchmarks/analyze.py`` (an Alpine rootfs, then runtime, app, cache,
rewrite and chmod layers of source-like, binary-like and already-compressed files; ``--size-mb``
uncompressed in all). Each codec compresses every layer tar with the same library
``imagewise copy --compress`` uses (zlib through ``gzip`` for gzip levels over 3, isal for 1-3;
``zstandard``), then decompresses it with what the layer walk uses (isal for gzip, zstandard).
Prints, per codec: compressed MB and ratio to the uncompressed tars, compression seconds, and
decompression MB/s (uncompressed bytes per second, best of ``--repeat``).

    python benchmarks/compress.py [--size-mb 100] [--repeat 3]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import io
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODECS = [("gzip", 1), ("gzip", 6), ("gzip", 9), ("zstd", 1), ("zstd", 3), ("zstd", 9), ("zstd", 19)]


def compress(algo: str, level: int, data: bytes) -> bytes:
    from imagewise.recompress import _compressor

    out = io.BytesIO()
    c = _compressor(algo, level, out.write)
    for i in range(0, len(data), 1 << 20):
        c.write(data[i : i + (1 << 20)])
    c.close()
    return out.getvalue()


def decompress(algo: str, blob: bytes) -> int:
    from imagewise.archive.decompress import open_decompressed

    mt = "application/vnd.oci.image.layer.v1.tar+" + algo
    n = 0
    with open_decompressed(io.BytesIO(blob), mt) as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "benchmarks")]
    from analyze import build_layers

    layers, _ = build_layers(args.size_mb)
    total = sum(len(t) for t in layers)
    print(f"{len(layers)} layers, {total / 1e6:.1f} MB uncompressed; best of {args.repeat}")
    print(f"{'codec':<10}{'MB':>9}{'ratio':>8}{'comp s':>9}{'decomp MB/s':>13}")
    for algo, level in CODECS:
        t0 = time.perf_counter()
        blobs = [compress(algo, level, t) for t in layers]
        comp = time.perf_counter() - t0
        size = sum(len(b) for b in blobs)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = sum(decompress(algo, b) for b in blobs)
            best = min(best, time.perf_counter() - t0)
        assert n == total
        print(
            f"{algo + '-' + str(level):<10}{size / 1e6:>9.1f}{size / total:>8.3f}"
            f"{comp:>9.2f}{total / 1e6 / best:>13.0f}"
        )


if __name__ == "__main__":
    main()
