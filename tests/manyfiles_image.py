"""A generated OCI layout with very many files (for the memory test and the benchmark).

Tar headers are written directly (ustar, computed checksum): Python's tarfile needs ~17 s for
200k entries, this needs about one. Layout: layer 0 holds ``files`` small files in directories of
1000; layer 1 rewrites 1 % of them and deletes one directory; layer 2 is empty.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import IO

BLOCK = 512


def _header(name: str, size: int, typeflag: bytes, mode: int = 0o644) -> bytes:
    if len(name) > 100:
        raise ValueError(name)
    h = bytearray(BLOCK)
    h[0 : len(name)] = name.encode()
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % 1_700_000_000
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _entry(name: str, data: bytes) -> bytes:
    pad = -len(data) % BLOCK
    return _header(name, len(data), b"0") + data + b"\0" * pad


def layer_tar(files: int, rewrite: bool = False) -> bytes:
    parts: list[bytes] = []
    dirs = max(1, files // 1000)
    for d in range(dirs):
        if rewrite and d == 1:
            parts.append(_header(f"usr/share/.wh.d{d:04d}", 0, b"0"))
            continue
        parts.append(_header(f"usr/share/d{d:04d}/", 0, b"5", 0o755))
        if rewrite:
            for i in range(0, 1000, 100):
                parts.append(_entry(f"usr/share/d{d:04d}/f{i:05d}", b"changed %d %d\n" % (d, i)))
            continue
        for i in range(min(1000, files - d * 1000)):
            data = b"%d-%d\n" % (d, i) if i % 4 == 0 else b""
            parts.append(_entry(f"usr/share/d{d:04d}/f{i:05d}", data))
    parts.append(b"\0" * (2 * BLOCK))
    return b"".join(parts)


def write_layout(path: str | Path, files: int, compression: str = "gzip") -> str:
    """Write the image as an OCI layout at ``path``; returns ``oci:PATH:latest``."""
    root = Path(path)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return "sha256:" + hexd

    tars = [layer_tar(files), layer_tar(files, rewrite=True), layer_tar(0)[-2 * BLOCK :]]
    layers, diff_ids = [], []
    for t in tars:
        blob = gzip.compress(t, compresslevel=1, mtime=0) if compression == "gzip" else t
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compression == "gzip" else "")
        layers.append({"mediaType": mt, "digest": put(blob), "size": len(blob)})
        diff_ids.append("sha256:" + hashlib.sha256(t).hexdigest())
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"/bin/sh -c step {i}"} for i in range(len(tars))],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(config),
                "size": len(config),
            },
            "layers": layers,
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return f"oci:{os.fspath(root)}:latest"


# --- the shape users hit: layers of many small files, half of each rewritten by the next ----------


def _spread_layer(
    out: IO[bytes], k: int, files: int, per_dir: int = 100, unique: bool = False
) -> str:
    """Layer ``k`` of :func:`write_spread_archive`, written to ``out``; returns its diff_id.

    Layer k writes ``files`` files in directories of ``per_dir``, directories numbered from
    ``k * dirs / 2``: the first half of them rewrite the second half of layer k-1's files, the
    rest are new. The last layer also deletes the first directory (``rm -rf`` of a cache).
    File names repeat in every directory (``mod007.py``, as ``index.js`` does in node_modules)
    unless ``unique``."""
    h = hashlib.sha256()

    def put(data: bytes) -> None:
        h.update(data)
        out.write(data)

    dirs = max(1, files // per_dir)
    start = k * dirs // 2
    base = "usr/lib/python3.12/site-packages"
    if k == 0:
        for p in ("usr/", "usr/lib/", "usr/lib/python3.12/", base + "/"):
            put(_header(p, 0, b"5", 0o755))
    elif k == 2:
        put(_header(f"{base}/.wh.pkg{0:06d}", 0, b"0"))
    for d in range(start, start + dirs):
        put(_header(f"{base}/pkg{d:06d}/", 0, b"5", 0o755))
        for i in range(min(per_dir, files - (d - start) * per_dir)):
            data = b"v%d %d %d\n" % (k, d, i) * (i % 8)
            name = f"m{d:06d}_{i:03d}.py" if unique else f"mod{i:03d}.py"
            put(_entry(f"{base}/pkg{d:06d}/{name}", data))
    put(b"\0" * (2 * BLOCK))
    return "sha256:" + h.hexdigest()


def write_spread_archive(
    path: str | Path, files: int, layers: int = 3, unique: bool = False
) -> str:
    """A docker-archive (``docker save`` layout, uncompressed layers) of ``layers`` layers of
    ``files // layers`` small files each, half of each layer rewritten by the next; written
    straight to disk (a million files need no memory here). Returns ``docker-archive:PATH``."""
    import tempfile

    per_layer = files // layers
    dest = Path(path)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp, open(dest, "wb") as out:
        diff_ids, names = [], []

        def member(name: str, size: int) -> None:
            out.write(_header(name, size, b"0"))

        def pad(size: int) -> None:
            out.write(b"\0" * (-size % BLOCK))

        for k in range(layers):
            part = Path(tmp) / f"{k}.tar"
            with open(part, "wb") as f:
                diff_ids.append(_spread_layer(f, k, per_layer, unique=unique))
            name = f"{diff_ids[-1][7:]}/layer.tar"
            names.append(name)
            size = part.stat().st_size
            member(name, size)
            with open(part, "rb") as f:
                while chunk := f.read(1 << 22):
                    out.write(chunk)
            pad(size)
            part.unlink()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [
                    {"created_by": f"/bin/sh -c pip install batch{i}"} for i in range(layers)
                ],
            }
        ).encode()
        cfg_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps(
            [{"Config": cfg_name, "RepoTags": ["many:latest"], "Layers": names}]
        ).encode()
        for name, data in ((cfg_name, config), ("manifest.json", manifest)):
            member(name, len(data))
            out.write(data)
            pad(len(data))
        out.write(b"\0" * (2 * BLOCK))
    return f"docker-archive:{os.fspath(dest)}"
