"""Reading images from OCI layouts, OCI archives and docker-archives (real and self-built)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus
from fixtures_images import (
    BuiltImage,
    build_index,
    random_image,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

from imagewise.errors import (
    DigestMismatch,
    ImageFormatError,
    NotAnImage,
    PlatformNotFound,
    TooLarge,
)
from imagewise.oci import media
from imagewise.oci.model import Platform
from imagewise.sources import detect_local, open_source

PLAIN_TARS = [
    "test-estargz-image.tar",
    "test-gzip-image.tar",
    "test-uncompressed-image.tar",
    "test-zstd-image.tar",
]


def read_all_layers(src: Any, platform: Platform | None = None) -> list[str]:
    """Read every layer blob to EOF (verifying digests); returns the sha256 of each."""
    img = src.image(platform)
    out = []
    for layer in img.layers:
        with layer.open_compressed() as f:
            h = hashlib.sha256()
            while chunk := f.read(1 << 16):
                h.update(chunk)
        out.append("sha256:" + h.hexdigest())
    return out


# ---------------------------------------------------------------- real archives


def test_dive_docker_save_archive() -> None:
    path = corpus("dive", "test-docker-image.tar")
    with open_source(f"docker-archive:{path}") as src:
        img = src.image()
        assert len(img.layers) == 14
        assert img.manifest.media_type == media.DOCKER_MANIFEST
        # legacy docker save layers are uncompressed: the blob digest is the diff_id
        assert [str(x.digest) for x in img.layers] == [str(d) for d in img.config.diff_ids]
        assert all(x.media_type == media.DOCKER_LAYER for x in img.layers)
        assert read_all_layers(src) == [str(x.digest) for x in img.layers]
        assert img.layers[1].created_by.startswith("/bin/sh -c #(nop) ADD file:")
        assert src.repo_tags == ("dive-test:latest",)


def test_dive_kaniko_archive_gzip_layers() -> None:
    path = corpus("dive", "test-kaniko-image.tar")
    with open_source(f"docker-archive:{path}:dive-test:kaniko-latest") as src:
        img = src.image()
        assert len(img.layers) == 14
        assert all(x.media_type == media.DOCKER_LAYER_GZIP for x in img.layers)
        # kaniko names its layers by compressed digest; ours, computed by hashing, agree
        assert str(img.layers[0].digest).endswith(
            "5c4213be9af904dd74649d250f22023f532b2f9179ffcb15260b5eaa10d7a3b4"
        )
        assert read_all_layers(src) == [str(x.digest) for x in img.layers]
        assert str(img.manifest.config.digest).endswith(
            "ae16a51058a758c7963b2f9b23d1acfa201ce9cbefc8cb93845f8cd934fb144d"
        )


def test_dive_kaniko_archive_walks_its_self_hashed_layers() -> None:
    """Layers named by hashing them at open are not hashed again when walked, and the walk's
    end-of-stream check still passes."""
    from imagewise.layers.model import Visitor
    from imagewise.layers.passes import run_pass

    class Count(Visitor):
        n = 0

        def visit(self, entry: object) -> None:
            self.n += 1

    path = corpus("dive", "test-kaniko-image.tar")
    with open_source(f"docker-archive:{path}:dive-test:kaniko-latest") as src:
        img = src.image()
        counter = Count()
        run_pass(img, [counter])
        assert counter.n > 0
        stream = src.open_blob(img.layers[0].descriptor)
        assert stream._hashed  # type: ignore[attr-defined]
        stream.read()
        assert stream.check() == img.layers[0].digest  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    [
        "test-oci-gzip-image.tar",
        "test-oci-zstd-image.tar",
        "test-oci-uncompressed-image.tar",
        "test-oci-estargz-image.tar",
    ],
)
@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_dive_oci_archives(name: str, transport: str) -> None:
    path = corpus("dive", name)
    with open_source(f"{transport}:{path}") as src:
        img = src.image()  # an arm64 image; a single-image layout is taken whatever the host
        assert img.platform == Platform("linux", "arm64")
        assert len(img.layers) == 1
        assert read_all_layers(src) == [str(img.layers[0].digest)]
    with tarfile.open(path) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["digest"] == str(img.digest)


@pytest.mark.parametrize("name", PLAIN_TARS)
@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive", ""])
def test_plain_tars_are_not_images(name: str, transport: str) -> None:
    path = corpus("dive", name)
    with pytest.raises(NotAnImage) as e:
        open_source(f"{transport}:{path}" if transport else str(path)).image()
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "not" in msg


def test_busybox_oci_archives() -> None:
    found = sorted(corpus("rootfs", "busybox").glob("*/*-oci.tar"))
    assert len(found) == 6
    for path in found:
        version = path.name.split("-")[1] + "-" + path.name.split("-")[2]  # 1.38.0-musl
        with open_source(f"oci-archive:{path}:busybox:{version}") as src:
            img = src.image()
            assert img.platform == Platform("linux", "amd64")
            assert img.layers[0].media_type == media.OCI_LAYER_GZIP
            assert read_all_layers(src) == [str(img.layers[0].digest)]
            ref_dir = path.parent
            assert json.loads((ref_dir / "index.json").read_text())["manifests"][0][
                "digest"
            ] == str(img.digest)


def test_busybox_wrong_tag_lists_tags() -> None:
    path = corpus("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")
    with pytest.raises(ImageFormatError, match="busybox:1.38.0-musl"):
        open_source(f"oci-archive:{path}:nope").image()


# ---------------------------------------------------------------- self-built images


@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-legacy", "docker-oci"])
@pytest.mark.parametrize("compression", ["gzip", "", "zstd"])
def test_formats_and_compressions(
    image_factory: Callable[..., tuple[str, BuiltImage]], kind: str, compression: str
) -> None:
    transport, built = image_factory(kind, seed=7, compression=compression)
    with open_source(transport) as src:
        img = src.image()
        assert [str(d) for d in img.config.diff_ids] == built.diff_ids
        assert str(img.manifest.config.digest) == built.config_digest
        digests = read_all_layers(src)
        if kind == "docker-legacy":
            # old docker save stores the uncompressed tars; the synthesized manifest says so
            assert digests == built.diff_ids
            assert all(x.media_type in (media.DOCKER_LAYER, media.OCI_LAYER) for x in img.layers)
        else:
            assert str(img.digest) == built.digest  # the stored manifest, byte for byte
            assert digests == built.layer_digests
        for layer, tar in zip(img.layers, built.layer_tars):
            with layer.open() as f:
                assert f.read() == tar


def test_gzipped_docker_save(tmp_path: Path) -> None:
    built = random_image(seed=3, fmt="docker")
    t = write_docker_archive(
        built, tmp_path / "img.tar.gz", "app:1", style="legacy", gzip_archive=True
    )
    with open_source(t) as src:
        assert read_all_layers(src) == built.diff_ids


def test_docker_archive_selects_by_tag_and_index(tmp_path: Path) -> None:
    a, b = random_image(seed=1, fmt="docker"), random_image(seed=2, fmt="docker")
    pa, pb = tmp_path / "a", tmp_path / "b"
    for img, p, tag in ((a, pa, "one/app:1"), (b, pb, "quay.io/two/app:2")):
        p.mkdir()
        write_docker_archive(img, p / "x.tar", tag)
    # combine both into one multi-image archive the way `docker save a b` does
    combined = tmp_path / "both.tar"
    manifest: list[Any] = []
    with tarfile.open(combined, "w") as out:
        for p in (pa, pb):
            with tarfile.open(p / "x.tar") as tf:
                for m in tf.getmembers():
                    if m.name == "manifest.json":
                        manifest += json.load(tf.extractfile(m))  # type: ignore[arg-type]
                    elif m.name != "repositories" and m.name not in out.getnames():
                        out.addfile(m, tf.extractfile(m) if m.isfile() else None)
        data = json.dumps(manifest).encode()
        import io

        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(data)
        out.addfile(ti, io.BytesIO(data))
    with pytest.raises(ImageFormatError, match="holds 2 images"):
        open_source(f"docker-archive:{combined}").image()
    assert (
        str(open_source(f"docker-archive:{combined}:one/app:1").image().config.digest)
        == a.config_digest
    )
    assert (
        str(open_source(f"docker-archive:{combined}:quay.io/two/app:2").image().config.digest)
        == b.config_digest
    )
    assert (
        str(open_source(f"docker-archive:{combined}:@1").image().config.digest) == b.config_digest
    )
    with pytest.raises(ImageFormatError, match="no image tagged"):
        open_source(f"docker-archive:{combined}:other:1").image()


def test_multi_platform_layout(tmp_path: Path) -> None:
    amd = random_image(seed=1, platform=("linux", "amd64", ""))
    arm = random_image(seed=2, platform=("linux", "arm64", "v8"))
    index = build_index([amd, arm])
    for nested in (False, True):
        t = write_oci_layout(index, tmp_path / f"l{nested}", "multi", nested_index=nested)
        with open_source(t) as src:
            assert src.image(Platform("linux", "amd64")).digest.hex == amd.digest[7:]
            assert str(src.image(Platform.parse("linux/arm64")).digest) == arm.digest
            with pytest.raises(PlatformNotFound) as e:
                src.image(Platform.parse("linux/s390x"))
            assert "linux/amd64" in str(e.value) and "linux/arm64/v8" in str(e.value)


def test_untagged_single_and_indexed(tmp_path: Path) -> None:
    img = random_image(seed=4)
    t = write_oci_layout(img, tmp_path / "lay", tag=None)
    assert t == f"oci:{tmp_path / 'lay'}"
    assert str(open_source(t).image().digest) == img.digest
    assert str(open_source(t + ":@0").image().digest) == img.digest
    with pytest.raises(ImageFormatError, match="no image @3"):
        open_source(t + ":@3").image()


def test_detect_local(tmp_path: Path) -> None:
    img = random_image(seed=5)
    write_oci_layout(img, tmp_path / "lay")
    write_docker_archive(img, tmp_path / "img.tar")
    assert detect_local(str(tmp_path / "lay")).transport == "oci"  # type: ignore[union-attr]
    assert detect_local(str(tmp_path / "img.tar")).transport == "docker-archive"  # type: ignore[union-attr]
    assert detect_local("alpine:3.20") is None
    assert str(open_source(str(tmp_path / "lay")).image().digest) == img.digest


# ---------------------------------------------------------------- bad input


def test_corrupt_blob_is_a_digest_mismatch(tmp_path: Path) -> None:
    img = random_image(seed=6)
    t = write_oci_layout(img, tmp_path / "lay")
    blob = tmp_path / "lay" / "blobs" / "sha256" / img.layer_digests[0][7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with open_source(t) as src, pytest.raises(DigestMismatch) as e:
        read_all_layers(src)
    assert img.layer_digests[0] in str(e.value)


def test_missing_blob_and_bad_json(tmp_path: Path) -> None:
    img = random_image(seed=6)
    t = write_oci_layout(img, tmp_path / "lay")
    (tmp_path / "lay" / "blobs" / "sha256" / img.layer_digests[1][7:]).unlink()
    with pytest.raises(ImageFormatError, match="missing"):
        read_all_layers(open_source(t))
    (tmp_path / "lay" / "index.json").write_text("{not json")
    with pytest.raises(ImageFormatError, match="not valid JSON"):
        open_source(t).image()
    (tmp_path / "lay" / "index.json").write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(TooLarge):
        open_source(t).image()


def test_manifest_json_not_json(tmp_path: Path) -> None:
    from fixtures_images import tar_bytes

    (tmp_path / "x.tar").write_bytes(tar_bytes({"manifest.json": b"[{oops"}))
    with pytest.raises(ImageFormatError, match="manifest.json is not valid JSON"):
        open_source(f"docker-archive:{tmp_path / 'x.tar'}").image()


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_archives(tmp_path: Path, cut: float) -> None:
    img = random_image(seed=8, size=20_000)
    for kind, writer in (
        ("docker-archive", write_docker_archive),
        ("oci-archive", write_oci_archive),
    ):
        full = tmp_path / f"{kind}.tar"
        writer(img, full)
        data = full.read_bytes()
        short = tmp_path / f"{kind}-short.tar"
        short.write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(ImageFormatError) as e, open_source(f"{kind}:{short}") as src:
            read_all_layers(src)
        assert "\n" not in str(e.value)


def test_not_a_tar_and_empty_and_dir(tmp_path: Path) -> None:
    (tmp_path / "text.tar").write_text("hello, I am not a tar archive\n" * 30)
    (tmp_path / "empty.tar").write_bytes(b"")
    (tmp_path / "junk.tar.gz").write_bytes(gzip.compress(b"not a tar" * 100))
    for name in ("text.tar", "empty.tar", "junk.tar.gz"):
        with pytest.raises(NotAnImage):
            open_source(f"docker-archive:{tmp_path / name}").image()
    with pytest.raises(NotAnImage, match="directory"):
        open_source(f"docker-archive:{tmp_path}")
    with pytest.raises(NotAnImage, match="not an OCI image layout"):
        open_source(f"oci:{tmp_path}").image()
    with pytest.raises(FileNotFoundError):
        open_source(f"oci:{tmp_path / 'nope'}")


def test_layout_is_not_modified_by_reading(tmp_path: Path) -> None:
    img = random_image(seed=9)
    t = write_oci_layout(img, tmp_path / "lay")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "lay").rglob("*"))
    read_all_layers(open_source(t))
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "lay").rglob("*"))
    assert before == after
    shutil.rmtree(tmp_path / "lay")


def test_alpine_minirootfs_image(alpine_layout: tuple[str, BuiltImage], tmp_path: Path) -> None:
    transport, built = alpine_layout
    with open_source(transport) as src:
        img = src.image()
        assert str(img.digest) == built.digest
        assert img.layers[0].created_by.startswith("/bin/sh -c #(nop) ADD file:alpine-minirootfs")
        with img.layers[0].open() as f, tarfile.open(fileobj=f, mode="r|") as tf:
            names = {m.name.lstrip("./") for m in tf}
    assert {"lib/apk/db/installed", "etc/alpine-release", "bin/busybox"} <= names
    # the same image as an old-style docker save, read back: same diff_id, uncompressed layer
    archive = write_docker_archive(built, tmp_path / "alpine.tar", "alpine:3.20")
    with open_source(archive + ":alpine:3.20") as src:
        assert [str(d) for d in src.image().config.diff_ids] == built.diff_ids
        assert read_all_layers(src) == built.diff_ids


@pytest.mark.parametrize("gz", [False, True])
def test_manifest_json_cannot_point_outside_the_archive(tmp_path: Path, gz: bool) -> None:
    from fixtures_images import tar_bytes

    img = random_image(seed=13, fmt="docker")
    outside = tmp_path / "secret.json"
    outside.write_bytes(img.config)
    files = {
        "manifest.json": json.dumps(
            [{"Config": "../secret.json", "RepoTags": ["x:1"], "Layers": ["/etc/passwd"]}]
        ).encode(),
        "ok.json": img.config,
    }
    data = tar_bytes(files)  # type: ignore[arg-type]
    archive = tmp_path / "sub" / "evil.tar"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ImageFormatError) as e:
        open_source(f"docker-archive:{archive}").image()
    assert "secret.json" in str(e.value)


def test_symlinked_and_hardlinked_layers(tmp_path: Path) -> None:
    from fixtures_images import TarFile, tar_bytes

    img = random_image(seed=14, layers=2, fmt="docker")
    t0, t1 = img.layer_tars
    files = {
        "shared.tar": t0,
        "a": TarFile(kind="dir"),
        "a/layer.tar": TarFile(kind="symlink", linkname="../shared.tar"),
        "b": TarFile(kind="dir"),
        "b/layer.tar": t1,
        "c": TarFile(kind="dir"),
        "c/layer.tar": TarFile(kind="hardlink", linkname="b/layer.tar"),
        "evil": TarFile(kind="symlink", linkname="../../etc/passwd"),
        "cfg.json": img.config,
        "manifest.json": json.dumps(
            [{"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": ["a/layer.tar", "c/layer.tar"]}]
        ).encode(),
    }
    (tmp_path / "x.tar").write_bytes(tar_bytes(files))
    with open_source(f"docker-archive:{tmp_path / 'x.tar'}") as src:
        assert read_all_layers(src) == img.diff_ids
    files["manifest.json"] = json.dumps(
        [{"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": ["evil", "c/layer.tar"]}]
    ).encode()
    (tmp_path / "y.tar").write_bytes(tar_bytes(files))
    with pytest.raises(ImageFormatError, match="evil"):
        open_source(f"docker-archive:{tmp_path / 'y.tar'}").image()


def test_reads_what_skopeo_writes(tmp_path: Path) -> None:
    img = random_image(seed=15, layers=2)
    lay = write_oci_layout(img, tmp_path / "lay", "v1")
    for dst in (
        f"docker-archive:{tmp_path / 'd.tar'}:foo/bar:1",
        f"oci-archive:{tmp_path / 'o.tar'}:v1",
    ):
        subprocess.run(
            ["skopeo", "--insecure-policy", "copy", lay, dst],
            check=True,
            capture_output=True,
            timeout=60,
        )
    with open_source(f"docker-archive:{tmp_path / 'd.tar'}:foo/bar:1") as src:
        got = src.image()
        assert [str(d) for d in got.config.diff_ids] == img.diff_ids
        assert read_all_layers(src) == img.diff_ids  # skopeo stores layers uncompressed
    with open_source(f"oci-archive:{tmp_path / 'o.tar'}:v1") as src:
        assert str(src.image().manifest.config.digest) == img.config_digest
        read_all_layers(src)


def test_reads_an_umoci_layout(tmp_path: Path) -> None:
    import random as _random

    from fixtures_images import random_layer

    tar = random_layer(_random.Random(16), files=3, size=1000)
    (tmp_path / "layer.tar").write_bytes(tar)
    lay = tmp_path / "um"
    for cmd in (
        ["umoci", "init", "--layout", str(lay)],
        ["umoci", "new", "--image", f"{lay}:t"],
        ["umoci", "raw", "add-layer", "--image", f"{lay}:t", str(tmp_path / "layer.tar")],
        ["umoci", "config", "--image", f"{lay}:t", "--config.user", "1000"],
    ):
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    with open_source(f"oci:{lay}:t") as src:
        img = src.image()
        assert img.config.user == "1000"
        assert [str(d) for d in img.config.diff_ids] == [
            "sha256:" + hashlib.sha256(tar).hexdigest()
        ]
        with img.layers[0].open() as f:
            assert f.read() == tar


class _Trickle:
    """A stream handing out at most ``step`` bytes per ``readinto``."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self.calls = data, step, 0

    def readinto(self, b: Any) -> int:
        self.calls += 1
        n = min(self._step, len(b), len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_fill_reads_until_full_or_the_end() -> None:
    from imagewise.fileio import fill

    view = memoryview(bytearray(10))
    s = _Trickle(b"abcdefghijklm", 3)
    assert fill(s, view) == 10 and bytes(view) == b"abcdefghij"
    assert fill(s, view) == 3 and bytes(view[:3]) == b"klm"  # short only at the end
    assert fill(s, view) == 0


@pytest.mark.parametrize("size", [0, 5, 1 << 20, 2 << 20, (2 << 20) + 7])
def test_write_blob_writes_what_it_checked(tmp_path: Path, size: int) -> None:
    """One reused buffer per blob; the sizes hit the buffer's edges (1 MiB)."""
    import io

    from imagewise.errors import DigestMismatch
    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor
    from imagewise.sources.oci_layout import write_blob

    data = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
    data = data[:size]
    desc = Descriptor("application/octet-stream", Digest.of(data), size)
    out = tmp_path / "blob"
    assert write_blob(str(out), _Trickle(data, 100_000), desc) == size  # type: ignore[arg-type]
    assert out.read_bytes() == data
    wrong = tmp_path / "wrong"
    bads = [data[:-1] + b"!" if size else b"!", data + b"x"] + ([data[: size // 2]] if size else [])
    for bad in bads:
        with pytest.raises(DigestMismatch):
            write_blob(str(wrong), io.BytesIO(bad), desc)  # type: ignore[arg-type]
        assert not wrong.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]  # no temporary file left


def test_streams_with_only_read_are_read_into_a_buffer_too(tmp_path: Path) -> None:
    """A blob stream with ``read`` and no ``readinto`` (a plugin's source, say) is copied the
    same way, directly and under a verifying reader."""
    import io

    from imagewise.errors import DigestMismatch
    from imagewise.fileio import fill
    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor
    from imagewise.sources.blobio import VerifyingReader
    from imagewise.sources.oci_layout import write_blob

    class OnlyRead:
        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._f.read(min(n, 1000) if n >= 0 else n)  # short reads

    data = os.urandom(3 * 1024 * 1024 + 11)
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    view = memoryview(bytearray(4096))
    assert fill(OnlyRead(data), view) == 4096 and bytes(view) == data[:4096]
    write_blob(str(tmp_path / "a"), OnlyRead(data), desc)  # type: ignore[arg-type]
    verified = VerifyingReader(OnlyRead(data), desc.digest, desc.size)
    write_blob(str(tmp_path / "b"), verified, desc)  # type: ignore[arg-type]
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == data
    with pytest.raises(DigestMismatch):
        bad = VerifyingReader(OnlyRead(data[:-1] + b"!"), desc.digest, desc.size)
        write_blob(str(tmp_path / "c"), bad, desc)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
