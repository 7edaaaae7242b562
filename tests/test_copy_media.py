"""Local sinks and sources under failure and interop: blobs damaged in place, killed copies,
layers the source cannot vouch for, layouts other tools read by tag, bare paths, platforms."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import (
    build_index,
    random_image,
    random_layer,
    tar_bytes,
    write_docker_archive,
    write_oci_layout,
)

from imagewise.cli.main import cli
from imagewise.copy import copy
from imagewise.errors import DigestMismatch, ImageFormatError, PlatformNotFound
from imagewise.oci import media
from imagewise.sources import open_source


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_every_layer(ref: str) -> int:
    with open_source(ref) as s:
        n = 0
        for layer in s.image().layers:
            with layer.open() as f:
                while f.read(1 << 20):
                    pass
            n += 1
        return n


# ------------------------------------------------------------------ 1. sinks keep what is whole


def test_rerun_rewrites_a_blob_damaged_in_place(tmp_path: Path) -> None:
    img = random_image(seed=31)
    src = write_oci_layout(img, tmp_path / "src")
    dst = f"oci:{tmp_path / 'out'}:1"
    assert copy(src, dst).blobs_copied == 4
    blob = tmp_path / "out" / "blobs" / "sha256" / img.layer_digests[1][7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    blob.write_bytes(bytes(data))
    again = copy(src, dst)
    assert (again.blobs_copied, again.blobs_skipped) == (1, 3)
    assert sha(blob.read_bytes()) == img.layer_digests[1]
    assert read_every_layer(dst) == 3


def test_next_copy_removes_what_a_killed_copy_left(tmp_path: Path) -> None:
    img = random_image(seed=32)
    src = write_oci_layout(img, tmp_path / "src")
    out = tmp_path / "out"
    copy(src, f"oci:{out}:1")
    left = [out / "blobs" / "sha256" / ".tmp-killed1", out / ".tmp-index"]
    for p in left:
        p.write_bytes(b"half")
    # an archive copy killed while staging, and one killed while packing
    stale = tmp_path / ".imagewise-oci-archive-dead1"
    (stale / "blobs").mkdir(parents=True)
    (stale / ".tmp-pack").write_bytes(b"half an archive")
    copy(src, f"oci:{out}:2")
    copy(src, f"oci-archive:{tmp_path / 'a.tar'}:1")
    assert not [p for p in left if p.exists()]
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "out", "src"]


def test_a_live_copy_keeps_its_temporaries(tmp_path: Path) -> None:
    """Temporary files and staging directories of a copy still running are not touched."""
    img = random_image(seed=33)
    src = write_oci_layout(img, tmp_path / "src")
    out = tmp_path / "out"
    copy(src, f"oci:{out}:1")
    live = out / "blobs" / "sha256" / ".tmp-live"
    live.write_bytes(b"being written")
    staging = tmp_path / ".imagewise-docker-archive-live"
    staging.mkdir()
    fd_layout = os.open(out / "blobs", os.O_RDONLY)
    fd_staging = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(fd_layout, fcntl.LOCK_SH)  # what a writer into the layout holds
        fcntl.flock(fd_staging, fcntl.LOCK_EX)  # what an archive sink holds on its staging dir
        copy(src, f"oci:{out}:2")
        copy(src, f"docker-archive:{tmp_path / 'd.tar'}:x/y:1")
        assert live.exists() and staging.exists()
    finally:
        os.close(fd_layout)
        os.close(fd_staging)
    copy(src, f"oci:{out}:3")
    copy(src, f"docker-archive:{tmp_path / 'd.tar'}:x/y:1")
    assert not live.exists() and not staging.exists()


def test_failed_copy_leaves_no_skeleton_layout(tmp_path: Path) -> None:
    img = random_image(seed=34)
    src = write_oci_layout(img, tmp_path / "src")
    blob = tmp_path / "src" / "blobs" / "sha256" / img.layer_digests[-1][7:]
    blob.write_bytes(blob.read_bytes()[:-1] + b"X")
    with pytest.raises(DigestMismatch):
        copy(src, f"oci:{tmp_path / 'new'}:1")
    assert not (tmp_path / "new").exists()
    # an existing directory stays, without what the copy began to write
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, out = run("copy", src, f"oci:{tmp_path / 'mine'}:1")
    assert code == 2 and "digest mismatch" in out
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------ 2. layers the source cannot vouch for


def kaniko_archive(path: Path, seed: int, damage: str = "") -> tuple[str, list[bytes]]:
    """A kaniko-style docker-archive: gzip layers named ``<n>.tar.gz``, whose digests a reader
    can only get by hashing the members themselves. ``damage``: ``"deflate"`` flips a byte
    inside the compressed data of layer 1; ``"diff_id"`` gives layer 1 another layer's diff_id."""
    import random

    rng = random.Random(seed)
    tars = [random_layer(rng, 4, 4096, prefix=f"layer{i}") for i in range(3)]
    gzs = [gzip.compress(t, mtime=0) for t in tars]
    diff_ids = [sha(t) for t in tars]
    if damage == "deflate":
        bad = bytearray(gzs[1])
        bad[len(bad) // 2] ^= 0x55
        gzs[1] = bytes(bad)
    elif damage == "diff_id":
        diff_ids[1] = sha(tars[0])
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(3)],
        }
    ).encode()
    files: dict[str, bytes] = {f"{i}.tar.gz": g for i, g in enumerate(gzs)}
    files[f"{sha(config)}"] = config
    files["manifest.json"] = json.dumps(
        [
            {
                "Config": sha(config),
                "RepoTags": ["k/app:1"],
                "Layers": [f"{i}.tar.gz" for i in range(3)],
            }
        ]
    ).encode()
    path.write_bytes(tar_bytes(files))  # type: ignore[arg-type]
    return f"docker-archive:{path}", gzs


@pytest.mark.parametrize(
    "dest", ["oci:{d}/out:1", "oci-archive:{d}/out.tar:1", "docker-archive:{d}/out.tar:k/app:1"]
)
def test_corrupt_gzip_layer_of_a_docker_archive_is_not_mirrored(tmp_path: Path, dest: str) -> None:
    src, _ = kaniko_archive(tmp_path / "in.tar", seed=1, damage="deflate")
    code, out = run("copy", src, dest.format(d=tmp_path))
    assert code == 2, out
    assert "layer sha256:" in out and "internal error" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tar"]


def test_layer_that_decompresses_to_another_diff_id_is_not_mirrored(tmp_path: Path) -> None:
    src, gzs = kaniko_archive(tmp_path / "in.tar", seed=2, damage="diff_id")
    with pytest.raises(DigestMismatch, match=rf"layer {sha(gzs[1])} decompressed"):
        copy(src, f"oci:{tmp_path / 'out'}:1")
    assert not (tmp_path / "out").exists()


def test_sound_docker_archives_still_copy(tmp_path: Path) -> None:
    src, _ = kaniko_archive(tmp_path / "in.tar", seed=3)
    with open_source(src) as s:
        doubted = [x for x in s.image().layers if not s.vouches_for(x.descriptor)]
        assert len(doubted) == 3
    result = copy(src, f"oci:{tmp_path / 'out'}:1")
    assert result.blobs_copied == 4
    assert read_every_layer(f"oci:{tmp_path / 'out'}:1") == 3
    kaniko = corpus("dive", "test-kaniko-image.tar")
    copy(f"docker-archive:{kaniko}", f"oci:{tmp_path / 'kaniko'}")
    # an OCI layout's digests come from its manifest, not from its bytes: nothing to doubt
    with open_source(f"oci:{tmp_path / 'kaniko'}") as s:
        assert all(s.vouches_for(x.descriptor) for x in s.image().layers)


# ------------------------------------------------------------------ 6. layouts other tools read by tag


def tool(*args: str) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"{args}: {out.stderr}"
    return out.stdout


def untar(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")
    return dest


def umoci_layers(layout: Path, tag: str) -> list[str]:
    out = json.loads(tool("umoci", "stat", "--json", "--image", f"{layout}:{tag}"))
    return [h["layer"]["digest"] for h in out["history"] if h.get("layer")]


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_every_sink_is_read_by_tag_by_skopeo_and_umoci(tmp_path: Path, fmt: str) -> None:
    img = random_image(seed=41, layers=2, fmt=fmt)
    src = write_docker_archive(img, tmp_path / "in.tar", "x/y:1", style="oci")
    layout, oarchive, darchive = tmp_path / "lay", tmp_path / "o.tar", tmp_path / "d.tar"
    results = [
        copy(src, f"oci:{layout}:t"),
        copy(src, f"oci-archive:{oarchive}:t"),
        copy(src, f"docker-archive:{darchive}:x/y:t"),
    ]
    for r in results:
        assert r.media_type == media.OCI_MANIFEST
        assert r.source_digest == img.digest
        assert r.converted == (fmt == "docker")  # an OCI image keeps its digest
        assert r.digest == results[0].digest
    for ref in (f"oci:{layout}:t", f"oci-archive:{oarchive}:t", f"docker-archive:{darchive}:x/y:t"):
        got = json.loads(tool("skopeo", "inspect", ref))
        if ref.startswith("docker-archive:"):  # skopeo reads it as uncompressed layers
            assert got["Layers"] == img.diff_ids, ref
        else:
            assert got["Layers"] == img.layer_digests, ref
            assert got["Digest"] == results[0].digest
    for lay in (layout, untar(oarchive, tmp_path / "o"), untar(darchive, tmp_path / "d")):
        assert umoci_layers(lay, "t") == img.layer_digests


def test_manifest_list_becomes_an_oci_index_skopeo_reads_by_tag(tmp_path: Path) -> None:
    amd = random_image(seed=42, platform=("linux", "amd64", ""), fmt="docker")
    arm = random_image(seed=43, platform=("linux", "arm64", "v8"), fmt="docker")
    index = build_index([amd, arm], docker=True)
    src = write_oci_layout(index, tmp_path / "src", "m", nested_index=True)
    for dest in (f"oci:{tmp_path / 'lay'}:m", f"oci-archive:{tmp_path / 'o.tar'}:m"):
        result = copy(src, dest)
        assert result.source_digest == index.digest != result.digest
        assert result.media_type == media.OCI_INDEX and result.manifests == 3
        raw = json.loads(tool("skopeo", "inspect", "--raw", dest))
        assert raw["mediaType"] == media.OCI_INDEX
        assert [m["mediaType"] for m in raw["manifests"]] == [media.OCI_MANIFEST] * 2
        for plat, img in (("arm64", arm), ("amd64", amd)):
            got = json.loads(tool("skopeo", "--override-arch", plat, "inspect", dest))
            assert got["Layers"] == img.layer_digests
    # the converted index is a valid source again, and its children keep their layers
    with open_source(f"oci:{tmp_path / 'lay'}:m") as s:
        assert [str(x.digest) for x in s.image().layers] == amd.layer_digests
    # the command line says the digest changed
    code, out = run("copy", src, f"oci:{tmp_path / 'cli'}:m")
    assert code == 0 and f"the source digest was {index.digest}" in out


# ------------------------------------------------------------------ 7. bare paths


@pytest.mark.parametrize(
    ("arg", "missing"),
    [
        ("{d}/nope.tar", "{d}/nope.tar"),
        ("nope.tar", "nope.tar"),
        ("./nope.tar", "./nope.tar"),
        ("nope.tar.gz", "nope.tar.gz"),
        ("./nope", "./nope"),
        ("../nope/app", "../nope/app"),
        ("./backup/app:1.3", "./backup/app"),
        ("nope.tar:1", "nope.tar"),
    ],
)
def test_missing_paths_are_reported_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arg: str, missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in ("inspect", "analyze", "files"):
        code, out = run(command, arg.format(d=tmp_path))
        assert code == 2
        assert (
            out.strip()
            == f"imagewise: error: {missing.format(d=tmp_path)}: no such file or directory"
        )


def test_bare_existing_paths_are_local_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = random_image(seed=44, layers=1)
    monkeypatch.chdir(tmp_path)
    write_oci_layout(img, tmp_path / "backup" / "app", "1.3")
    write_docker_archive(img, tmp_path / "app.tar", "x/y:2")
    for arg, reference in (
        ("backup/app:1.3", "oci:backup/app:1.3"),
        ("backup/app", "oci:backup/app"),
        ("./backup/app:1.3", "oci:./backup/app:1.3"),
        ("app.tar", "docker-archive:app.tar"),
        ("app.tar:x/y:2", "docker-archive:app.tar:docker.io/x/y:2"),
    ):
        code, out = run("inspect", "--format", "json", arg)
        assert code == 0, (arg, out)
        doc = json.loads(out)
        assert doc["reference"] == reference
        assert [x["diff_id"] for x in doc["layers"]] == img.diff_ids
    code, out = run("inspect", "backup/app:2.0")
    assert code == 2 and "backup/app: no image tagged '2.0'; tags: 1.3" in out


def test_bare_destinations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = random_image(seed=45, layers=1)
    src = write_oci_layout(img, tmp_path / "src", "1")
    monkeypatch.chdir(tmp_path)
    code, out = run("copy", src, "./out:1")
    assert code == 2
    assert "'./out:1' looks like a path: name the destination format, e.g. oci:./out:1" in out
    assert not (tmp_path / "out").exists()
    code, out = run("copy", src, "src:again")  # an existing layout directory
    assert code == 0 and out.startswith("oci:src:again ")


# ------------------------------------------------------------------ 8. platforms


def test_platform_of_a_single_platform_image_must_match(tmp_path: Path) -> None:
    img = random_image(seed=46, platform=("linux", "amd64", ""))
    src = write_oci_layout(img, tmp_path / "src", "1")
    for args in (
        ["inspect", "--platform", "linux/arm64", src],
        ["copy", "--platform", "linux/arm64", src, f"oci:{tmp_path / 'out'}"],
        ["analyze", "--platform", "linux/arm64", src],
    ):
        code, out = run(*args)
        assert code == 2, (args, out)
        assert "no image for platform linux/arm64; available: linux/amd64" in out
    assert not (tmp_path / "out").exists()
    with pytest.raises(PlatformNotFound):
        copy(src, f"docker-archive:{tmp_path / 'd.tar'}", platform="linux/s390x")
    assert copy(src, f"oci:{tmp_path / 'ok'}", platform="linux/amd64").digest == img.digest
    code, _ = run("inspect", "--platform", "linux/amd64", src)
    assert code == 0


def test_copy_help_and_platform_help_agree() -> None:
    code, out = run("copy", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "copied whole, every platform, unless --platform picks one" in text
    assert "default: every platform of a multi-platform image" in text
    assert "default: this host's" not in text


def test_malformed_index_in_layout_is_format_error(tmp_path: Path) -> None:
    (tmp_path / "lay").mkdir()
    (tmp_path / "lay" / "index.json").write_text(
        '{"manifests": [{"digest": "sha256:x", "size": 1}]}'
    )
    with pytest.raises(ImageFormatError, match=r"index: manifests\[0\]\.digest"):
        open_source(f"oci:{tmp_path / 'lay'}")
