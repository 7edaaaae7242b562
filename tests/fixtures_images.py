"""Image fixtures: real images the tests build themselves, written byte by byte in every format.

The builders are independent of imagewise's own sinks (they write the files directly), so tests
of the sources check imagewise against the formats, not against itself.

Building blocks (plain functions, usable from any test or benchmark):

* ``tar_bytes(files)`` a deterministic tar from ``{path: bytes | TarFile}`` (fixed mtimes);
* ``random_layer(rng, files=..., size=...)`` a tar of random files;
* ``build_image(layers, compression=..., fmt="oci"|"docker", ...)`` -> :class:`BuiltImage`,
  the manifest, config and blobs of an image made of those layer tars;
* ``build_index([img, ...])`` -> :class:`BuiltIndex`, a multi-platform index over images;
* ``write_oci_layout(img_or_index, dir, tag)``, ``write_oci_archive(...)``,
  ``write_docker_archive(img, file, repo_tag, style="legacy"|"oci")`` write them out and return
  the transport string to open them with (``oci:DIR:TAG`` ...);
* ``alpine_image(version)`` an image whose single layer is a real Alpine minirootfs.

Fixtures: ``random_image_layout`` (``(transport, image)`` of a 3-layer gzip OCI layout),
``image_factory`` (``image_factory(kind, seed=..., compression=..., layers=...)`` with kind
``oci`` / ``oci-archive`` / ``docker-legacy`` / ``docker-oci``), and ``alpine_layout`` (Alpine
3.20.3's minirootfs as a one-layer OCI layout, session-scoped).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {
    ("oci", ""): "application/vnd.oci.image.layer.v1.tar",
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("docker", ""): "application/vnd.docker.image.rootfs.diff.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
FIXED_MTIME = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TarFile:
    """A tar entry with explicit metadata. ``kind``: file, dir, symlink, hardlink."""

    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"
    linkname: str = ""
    uid: int = 0
    gid: int = 0


def tar_bytes(files: dict[str, bytes | TarFile], mtime: int = FIXED_MTIME) -> bytes:
    """A deterministic (GNU format, fixed mtime, root-owned) tar of ``files`` in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, spec in files.items():
            f = spec if isinstance(spec, TarFile) else TarFile(spec)
            ti = tarfile.TarInfo(name)
            ti.mtime = mtime
            ti.mode = f.mode
            ti.uid, ti.gid = f.uid, f.gid
            if f.kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = f.mode if f.mode != 0o644 else 0o755
                tf.addfile(ti)
            elif f.kind in ("symlink", "hardlink"):
                ti.type = tarfile.SYMTYPE if f.kind == "symlink" else tarfile.LNKTYPE
                ti.linkname = f.linkname
                tf.addfile(ti)
            else:
                ti.size = len(f.data)
                tf.addfile(ti, io.BytesIO(f.data))
    return buf.getvalue()


def random_layer(
    rng: random.Random, files: int = 4, size: int = 2048, prefix: str = "data"
) -> bytes:
    """A tar of ``files`` random files (``prefix/<n>.bin``) of about ``size`` bytes each."""
    out: dict[str, bytes | TarFile] = {prefix: TarFile(kind="dir")}
    for i in range(files):
        out[f"{prefix}/{i}.bin"] = rng.randbytes(max(1, size + rng.randint(-size // 4, size // 4)))
    return tar_bytes(out)


def compress(data: bytes, compression: str) -> bytes:
    """``gzip`` (deterministic: mtime 0), ``zstd`` or ``""`` (as is)."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "":
        return data
    raise ValueError(compression)


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image: manifest and config bytes, every blob by digest, the layer tars."""

    manifest: bytes
    config: bytes
    blobs: dict[str, bytes] = field(repr=False)
    layer_tars: tuple[bytes, ...] = field(repr=False)
    media_type: str = OCI_MANIFEST
    platform: tuple[str, str, str] = ("linux", "amd64", "")

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def manifest_doc(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def layer_digests(self) -> list[str]:
        return [x["digest"] for x in self.manifest_doc["layers"]]

    @property
    def diff_ids(self) -> list[str]:
        return [sha256(t) for t in self.layer_tars]

    def descriptor(self) -> dict[str, Any]:
        os_, arch, variant = self.platform
        plat = {"architecture": arch, "os": os_} | ({"variant": variant} if variant else {})
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
            "platform": plat,
        }


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform OCI index (or Docker manifest list) over several images."""

    raw: bytes
    images: tuple[BuiltImage, ...]
    media_type: str = OCI_INDEX

    @property
    def digest(self) -> str:
        return sha256(self.raw)

    @property
    def blobs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for img in self.images:
            out.update(img.blobs)
            out[img.digest] = img.manifest
        return out


def build_image(
    layers: list[bytes],
    *,
    compression: str = "gzip",
    fmt: str = "oci",
    history: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    platform: tuple[str, str, str] = ("linux", "amd64", ""),
    annotations: dict[str, str] | None = None,
) -> BuiltImage:
    """An image from uncompressed layer tars. ``history`` defaults to one entry per layer;
    ``config`` is the container config (``User``, ``Env``, ``Cmd`` ...)."""
    if fmt == "docker" and compression == "zstd":
        raise ValueError("Docker v2 manifests have no zstd layer type; use fmt='oci'")
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for t in layers:
        blob = compress(t, compression)
        blobs[sha256(blob)] = blob
        layer_descs.append(
            {
                "mediaType": LAYER_TYPES[(fmt, compression)],
                "size": len(blob),
                "digest": sha256(blob),
            }
        )
    os_, arch, variant = platform
    cfg: dict[str, Any] = {
        "architecture": arch,
        "os": os_,
        "created": CREATED,
        "config": config
        if config is not None
        else {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layers]},
        "history": history
        if history is not None
        else [
            {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD layer{i}.tar /"}
            for i in range(len(layers))
        ],
    }
    if variant:
        cfg["variant"] = variant
    config_raw = json.dumps(cfg, sort_keys=True).encode()
    blobs[sha256(config_raw)] = config_raw
    mt = OCI_MANIFEST if fmt == "oci" else DOCKER_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {
            "mediaType": OCI_CONFIG if fmt == "oci" else DOCKER_CONFIG,
            "size": len(config_raw),
            "digest": sha256(config_raw),
        },
        "layers": layer_descs,
    }
    if annotations:
        doc["annotations"] = annotations
    manifest = json.dumps(doc, indent=2).encode()
    return BuiltImage(manifest, config_raw, blobs, tuple(layers), mt, platform)


def random_image(
    seed: int = 0,
    layers: int = 3,
    files: int = 4,
    size: int = 2048,
    compression: str = "gzip",
    fmt: str = "oci",
    platform: tuple[str, str, str] = ("linux", "amd64", ""),
) -> BuiltImage:
    """An image of ``layers`` random layers, reproducible from ``seed``."""
    rng = random.Random(seed)
    tars = [random_layer(rng, files, size, prefix=f"layer{i}") for i in range(layers)]
    return build_image(tars, compression=compression, fmt=fmt, platform=platform)


def build_index(images: list[BuiltImage], docker: bool = False) -> BuiltIndex:
    mt = DOCKER_LIST if docker else OCI_INDEX
    doc = {"schemaVersion": 2, "mediaType": mt, "manifests": [i.descriptor() for i in images]}
    return BuiltIndex(json.dumps(doc, indent=2).encode(), tuple(images), mt)


# ------------------------------------------------------------------ writers


def _write_blobs(root: Path, blobs: dict[str, bytes]) -> None:
    d = root / "blobs" / "sha256"
    d.mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (d / digest.split(":", 1)[1]).write_bytes(data)


def write_oci_layout(
    img: BuiltImage | BuiltIndex,
    path: str | Path,
    tag: str | None = "latest",
    *,
    nested_index: bool = False,
) -> str:
    """Write an OCI layout. An index is listed in index.json by its platforms' manifests, or,
    with ``nested_index``, as one entry pointing at the index blob. Returns ``oci:PATH[:TAG]``."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    ann = {"org.opencontainers.image.ref.name": tag} if tag else {}
    if isinstance(img, BuiltIndex):
        blobs = dict(img.blobs)
        blobs[img.digest] = img.raw
        if nested_index:
            entries = [
                {"mediaType": img.media_type, "digest": img.digest, "size": len(img.raw)}
                | ({"annotations": ann} if ann else {})
            ]
        else:
            entries = [i.descriptor() | ({"annotations": ann} if ann else {}) for i in img.images]
    else:
        blobs = dict(img.blobs)
        blobs[img.digest] = img.manifest
        entries = [
            {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)}
            | ({"annotations": ann} if ann else {})
        ]
    _write_blobs(root, blobs)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index))
    return f"oci:{root}" + (f":{tag}" if tag else "")


def _tar_dir(src: Path, dest: Path) -> None:
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tf:
        for p in sorted(src.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(src)), recursive=False)


def write_oci_archive(
    img: BuiltImage | BuiltIndex, path: str | Path, tag: str | None = "latest"
) -> str:
    """An OCI layout packed in an uncompressed tar. Returns ``oci-archive:FILE[:TAG]``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_oci_layout(img, tmp, tag)
        _tar_dir(Path(tmp), Path(path))
    return f"oci-archive:{path}" + (f":{tag}" if tag else "")


def write_docker_archive(
    img: BuiltImage,
    path: str | Path,
    repo_tag: str | None = "test/image:latest",
    style: str = "legacy",
    gzip_archive: bool = False,
) -> str:
    """A ``docker save`` archive. ``style="legacy"``: ``<id>/layer.tar`` (uncompressed, as old
    Docker writes it, whatever the image's compression) and ``<config-hex>.json``;
    ``style="oci"``: Docker 25+ with ``blobs/sha256/*``, ``index.json`` and ``oci-layout``.
    ``gzip_archive`` gzips the whole tarball (``docker save | gzip``). Returns the transport."""
    files: dict[str, bytes | TarFile] = {}
    cfg_hex = img.config_digest.split(":")[1]
    repo, _, tag = (repo_tag or "").rpartition(":")
    if style == "legacy":
        layer_paths = []
        parent = ""
        for t in img.layer_tars:
            lid = hashlib.sha256((parent + sha256(t)).encode()).hexdigest()
            files[f"{lid}"] = TarFile(kind="dir")
            files[f"{lid}/VERSION"] = b"1.0"
            files[f"{lid}/json"] = json.dumps(
                {"id": lid, "parent": parent} if parent else {"id": lid}
            ).encode()
            files[f"{lid}/layer.tar"] = t
            layer_paths.append(f"{lid}/layer.tar")
            parent = lid
        files[f"{cfg_hex}.json"] = img.config
        last = layer_paths[-1].split("/")[0] if layer_paths else ""
    elif style == "oci":
        files["blobs"] = TarFile(kind="dir")
        files["blobs/sha256"] = TarFile(kind="dir")
        blobs = dict(img.blobs)
        blobs[img.digest] = img.manifest
        for digest, data in blobs.items():
            files[f"blobs/sha256/{digest.split(':')[1]}"] = data
        layer_paths = [f"blobs/sha256/{d.split(':')[1]}" for d in img.layer_digests]
        ann = (
            {
                "io.containerd.image.name": f"docker.io/{repo_tag}",
                "org.opencontainers.image.ref.name": tag,
            }
            if repo_tag
            else {}
        )
        desc = {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)}
        files["index.json"] = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [desc | ({"annotations": ann} if ann else {})],
            }
        ).encode()
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        last = img.layer_digests[-1].split(":")[1] if img.layer_digests else ""
    else:
        raise ValueError(style)
    cfg_path = f"{cfg_hex}.json" if style == "legacy" else f"blobs/sha256/{cfg_hex}"
    files["manifest.json"] = json.dumps(
        [{"Config": cfg_path, "RepoTags": [repo_tag] if repo_tag else None, "Layers": layer_paths}]
    ).encode()
    if repo_tag:
        files["repositories"] = json.dumps({repo: {tag: last}}).encode()
    data = tar_bytes(files)
    Path(path).write_bytes(gzip.compress(data, mtime=0) if gzip_archive else data)
    return f"docker-archive:{path}"


# ------------------------------------------------------------------ real rootfs

ALPINE_VERSIONS = ("3.18.9", "3.19.4", "3.20.3")


def alpine_rootfs(version: str = "3.20.3") -> Path:
    from conftest import corpus

    return corpus("rootfs", "alpine", f"alpine-minirootfs-{version}-x86_64.tar.gz")


def alpine_image(
    version: str = "3.20.3", compression: str = "gzip", extra_layers: list[bytes] | None = None
) -> BuiltImage:
    """Alpine's minirootfs as the base layer (plus ``extra_layers``), config like the official image."""
    tar = gzip.decompress(alpine_rootfs(version).read_bytes())
    layers = [tar, *(extra_layers or [])]
    history = [
        {
            "created": CREATED,
            "created_by": f"/bin/sh -c #(nop) ADD file:alpine-minirootfs-{version} in / ",
        }
    ]
    history += [
        {"created": CREATED, "created_by": f"/bin/sh -c echo extra {i}"}
        for i in range(len(layers) - 1)
    ]
    history.insert(
        1,
        {
            "created": CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
            "empty_layer": True,
        },
    )
    return build_image(
        layers,
        compression=compression,
        history=history,
        config={
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
        },
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def random_image_layout(tmp_path: Path) -> tuple[str, BuiltImage]:
    """(``oci:DIR:latest``, image) for a reproducible 3-layer gzip image."""
    img = random_image(seed=1)
    return write_oci_layout(img, tmp_path / "layout", "latest"), img


@pytest.fixture
def image_factory(tmp_path: Path) -> Callable[..., tuple[str, BuiltImage]]:
    """``image_factory(kind="oci"|"oci-archive"|"docker-legacy"|"docker-oci", seed=0, **build)``
    writes a random image in that format under tmp_path and returns (transport, image)."""
    counter = iter(range(10_000))

    def make(kind: str = "oci", seed: int = 0, **kw: Any) -> tuple[str, BuiltImage]:
        n = next(counter)
        if (
            kind.startswith("docker")
            and "fmt" not in kw
            and kw.get("compression", "gzip") != "zstd"
        ):
            kw["fmt"] = "docker"
        img = random_image(seed=seed, **kw)
        if kind == "oci":
            return write_oci_layout(img, tmp_path / f"layout{n}", "latest"), img
        if kind == "oci-archive":
            return write_oci_archive(img, tmp_path / f"img{n}.tar", "latest"), img
        if kind in ("docker-legacy", "docker-oci"):
            style = "legacy" if kind == "docker-legacy" else "oci"
            return write_docker_archive(img, tmp_path / f"img{n}.tar", style=style), img
        raise ValueError(kind)

    return make


@pytest.fixture(scope="session")
def alpine_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, BuiltImage]:
    """(``oci:DIR:3.20``, image) for Alpine 3.20.3's minirootfs as a one-layer gzip image."""
    img = alpine_image("3.20.3")
    path = tmp_path_factory.mktemp("alpine") / "layout"
    return write_oci_layout(img, path, "3.20"), img
