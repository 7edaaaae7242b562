"""Builders for the layer tests: tars written by the standard library's ``tarfile`` (an
independent writer), and OCI image layouts written from them. No tests live here."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import zstandard


def member(
    name: str,
    kind: str = "file",
    data: bytes = b"",
    link: str = "",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 1_700_000_000,
) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
    ti.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "char": tarfile.CHRTYPE,
        "block": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    if kind == "file":
        ti.size = len(data)
    if kind in ("symlink", "hardlink"):
        ti.linkname = link
    if kind in ("char", "block"):
        ti.devmajor, ti.devminor = 1, 3
    return ti, data


def make_tar(
    members: Iterable[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isfile() else None)
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, 6, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    return data


_MEDIA = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "": "application/vnd.oci.image.layer.v1.tar",
}


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    hexd = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / hexd).write_bytes(data)
    return {"digest": f"sha256:{hexd}", "size": len(data)}


def _image(root: Path, layers: list[bytes], how: str, os_arch: str) -> dict[str, Any]:
    descs = []
    for tar in layers:
        d = _blob(root, compress(tar, how))
        d["mediaType"] = _MEDIA[how]
        descs.append(d)
    os_name, arch = os_arch.split("/")[:2]
    config = {
        "architecture": arch,
        "os": os_name,
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(t).hexdigest()}" for t in layers],
        },
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        "config": {},
    }
    cdesc = _blob(root, json.dumps(config).encode())
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cdesc,
        "layers": descs,
    }
    mdesc = _blob(root, json.dumps(manifest).encode())
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    mdesc["platform"] = {"architecture": arch, "os": os_name}
    return mdesc


def oci_layout(
    root: Path,
    layers: list[bytes],
    how: str = "gzip",
    platforms: dict[str, list[bytes]] | None = None,
) -> str:
    """Write an OCI layout holding one image made of the given uncompressed tars, or, with
    ``platforms`` ({"linux/arm64": [tar, ...]}), one image per platform under one index."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    images = platforms or {"linux/amd64": layers}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [_image(root, tars, how, p) for p, tars in images.items()],
    }
    (root / "index.json").write_text(json.dumps(index))
    return f"oci:{root}"


def random_files(n: int, seed: int = 1) -> list[tuple[tarfile.TarInfo, bytes]]:
    rnd = __import__("random").Random(seed)
    out = [member("data", "dir", mode=0o755)]
    for i in range(n):
        size = rnd.choice([0, 1, 100, 511, 512, 513, 4096, 70_000])
        out.append(member(f"data/f{i:05d}", data=os.urandom(size)))
    return out
