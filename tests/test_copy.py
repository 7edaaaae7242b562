"""``copy`` between every file format, sinks' guarantees, and the CLI of copy and inspect."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import build_index, random_image, write_docker_archive, write_oci_layout

from imagewise.cli.main import cli
from imagewise.copy import copy
from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.sources import open_sink, open_source


def index_entries(layout: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((layout / "index.json").read_text())["manifests"]


def test_chain_preserves_digest(tmp_path: Path) -> None:
    img = random_image(seed=11, layers=4, compression="zstd")
    src = write_oci_layout(img, tmp_path / "src", "v1")
    steps = [
        f"oci-archive:{tmp_path / 'a.tar'}:v1",
        f"docker-archive:{tmp_path / 'd.tar'}:app:v1",
        f"oci:{tmp_path / 'dst'}:v2",
    ]
    for dst in steps:
        result = copy(src, dst)
        assert result.digest == img.digest
        assert result.blobs_copied == 5 and result.blobs_skipped == 0
        with open_source(dst) as s:
            assert str(s.image().digest) == img.digest
        src = dst
    assert index_entries(tmp_path / "dst") == [
        {
            "mediaType": img.media_type,
            "digest": img.digest,
            "size": len(img.manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v2"},
            "platform": {"architecture": "amd64", "os": "linux"},
        }
    ]


def test_second_copy_skips_present_blobs_and_moves_tag(tmp_path: Path) -> None:
    a, b = random_image(seed=1), random_image(seed=2)
    sa = write_oci_layout(a, tmp_path / "a")
    sb = write_oci_layout(b, tmp_path / "b")
    dst = f"oci:{tmp_path / 'out'}:stable"
    assert copy(sa, dst).blobs_copied == 4
    again = copy(sa, dst)
    assert (again.blobs_copied, again.blobs_skipped) == (0, 4)
    copy(sb, dst)  # the tag moves to b
    copy(sa, f"oci:{tmp_path / 'out'}:old")
    entries = index_entries(tmp_path / "out")
    tags = {e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"] for e in entries}
    assert tags == {"stable": b.digest, "old": a.digest}
    assert not [p for p in (tmp_path / "out").rglob(".tmp-*")]


def test_multi_platform_copy(tmp_path: Path) -> None:
    amd = random_image(seed=1, platform=("linux", "amd64", ""))
    arm = random_image(seed=2, platform=("linux", "arm64", "v8"))
    index = build_index([amd, arm])
    src = write_oci_layout(index, tmp_path / "src", "multi", nested_index=True)
    whole = copy(src, f"oci:{tmp_path / 'all'}:m")
    assert whole.digest == index.digest and whole.manifests == 3
    assert (tmp_path / "all" / "blobs" / "sha256" / index.digest[7:]).read_bytes() == index.raw
    one = copy(src, f"oci:{tmp_path / 'arm'}:m", platform="linux/arm64")
    assert one.digest == arm.digest and one.manifests == 1
    # a docker-archive holds one image: the host's platform unless told otherwise
    host = copy(src, f"docker-archive:{tmp_path / 'd.tar'}")
    assert host.digest == amd.digest
    arm_archive = copy(src, f"docker-archive:{tmp_path / 'd2.tar'}", platform="linux/arm64/v8")
    assert arm_archive.digest == arm.digest


def test_sink_refuses_wrong_bytes(tmp_path: Path) -> None:
    data = b"hello blob"
    desc = Descriptor("application/octet-stream", Digest.of(b"other bytes"), len(data))
    for dst in (f"oci:{tmp_path / 'lay'}", f"docker-archive:{tmp_path / 'x.tar'}"):
        with open_sink(dst) as sink:
            with pytest.raises(DigestMismatch):
                sink.put_blob(desc, io.BytesIO(data))
            assert not sink.has_blob(desc)
    assert not list((tmp_path / "lay").rglob(".tmp-*"))
    assert not (tmp_path / "x.tar").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imagewise")]


def test_failed_copy_leaves_no_archive(tmp_path: Path) -> None:
    img = random_image(seed=3)
    src = write_oci_layout(img, tmp_path / "src")
    blob = tmp_path / "src" / "blobs" / "sha256" / img.layer_digests[0][7:]
    blob.write_bytes(blob.read_bytes()[:-1] + b"X")
    with pytest.raises(DigestMismatch):
        copy(src, f"oci-archive:{tmp_path / 'out.tar'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_docker_archive_sink_format(tmp_path: Path) -> None:
    img = random_image(seed=5, fmt="docker")
    copy(
        write_oci_layout(img, tmp_path / "src"),
        f"docker-archive:{tmp_path / 'out.tar'}:myorg/app:3",
    )
    import tarfile

    with tarfile.open(tmp_path / "out.tar") as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        repos = json.load(tf.extractfile("repositories"))  # type: ignore[arg-type]
    assert names[:4] == ["manifest.json", "index.json", "oci-layout", "repositories"]
    assert manifest == [
        {
            "Config": f"blobs/sha256/{img.config_digest[7:]}",
            "RepoTags": ["myorg/app:3"],
            "Layers": [f"blobs/sha256/{d[7:]}" for d in img.layer_digests],
        }
    ]
    assert repos == {"myorg/app": {"3": img.layer_digests[-1][7:]}}


def test_skopeo_reads_our_archives(tmp_path: Path) -> None:
    img = random_image(seed=6, layers=2)  # OCI media types: skopeo's oci: reads only those
    src = write_docker_archive(
        random_image(seed=6, layers=2, fmt="docker"), tmp_path / "in.tar", "x/y:1"
    )
    copy(src, f"docker-archive:{tmp_path / 'out.tar'}:x/y:1")
    out = json.loads(
        subprocess.run(
            ["skopeo", "inspect", f"docker-archive:{tmp_path / 'out.tar'}"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    with open_source(f"docker-archive:{tmp_path / 'out.tar'}") as s:
        assert out["Layers"] == [str(x.digest) for x in s.image().layers]
    copy(write_oci_layout(img, tmp_path / "lay0"), f"oci:{tmp_path / 'lay'}:t")
    out = json.loads(
        subprocess.run(
            ["skopeo", "inspect", f"oci:{tmp_path / 'lay'}:t"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    assert out["Digest"] == img.digest and out["Layers"] == img.layer_digests


# ------------------------------------------------------------------ CLI


def test_cli_copy_and_inspect(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = corpus("dive", "test-docker-image.tar")
    r = runner.invoke(
        cli, ["copy", str(archive), f"oci:{tmp_path / 'lay'}:dive", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["schema"] == "imagewise/copy/v1" and res["blobs_copied"] == 15
    r = runner.invoke(cli, ["inspect", f"oci:{tmp_path / 'lay'}:dive", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["schema"] == "imagewise/inspect/v1" and doc["digest"] == res["digest"]
    assert doc["platform"] == "linux/amd64" and len(doc["layers"]) == 14
    assert set(doc["layers"][0]) == {"digest", "diff_id", "size", "media_type", "created_by"}
    assert doc["layers"][0]["diff_id"] == doc["layers"][0]["digest"]
    assert doc["config"]["cmd"] == ["sh"]
    r = runner.invoke(cli, ["inspect", f"oci:{tmp_path / 'lay'}:dive"])
    assert r.exit_code == 0 and res["digest"] in r.output and "#(nop) ADD file:" in r.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["inspect", "docker-archive:{dive}/test-zstd-image.tar"], "not an image"),
        (["inspect", "{dive}/test-gzip-image.tar"], "not an image"),
        (["inspect", "oci:/nonexistent/dir"], "no such file"),
        (["inspect", "Not A Ref"], "invalid reference"),
        (["copy", "{dive}/test-docker-image.tar", "oci:/tmp/x:@1"], "cannot be a destination"),
        (["inspect", "--platform", "linux", "{dive}/test-docker-image.tar"], "malformed platform"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], fragment: str) -> None:
    dive = str(corpus("dive"))
    r = CliRunner().invoke(cli, [a.format(dive=dive) for a in args])
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and fragment in r.output and "Traceback" not in r.output


def test_oci_archive_destination_must_be_a_file(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="directory"):
        open_sink(f"oci-archive:{tmp_path}")


def test_layout_with_several_images_needs_a_tag(tmp_path: Path) -> None:
    a, b = random_image(seed=1), random_image(seed=2)
    copy(write_oci_layout(a, tmp_path / "a"), f"oci:{tmp_path / 'out'}:one")
    copy(write_oci_layout(b, tmp_path / "b"), f"oci:{tmp_path / 'out'}:two")
    with pytest.raises(ImageFormatError, match="holds 2 images.*one, two"):
        open_source(f"oci:{tmp_path / 'out'}").image()
    assert str(open_source(f"oci:{tmp_path / 'out'}:two").image().digest) == b.digest


def test_concurrent_copies_into_one_layout_keep_every_tag(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [random_image(seed=s, layers=1, files=1, size=64) for s in range(8)]
    sources = [write_oci_layout(img, tmp_path / f"src{i}") for i, img in enumerate(images)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: copy(sources[i], f"oci:{tmp_path / 'out'}:t{i}"), range(8)))
    tags = {
        e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"]
        for e in index_entries(tmp_path / "out")
    }
    assert tags == {f"t{i}": img.digest for i, img in enumerate(images)}


def test_progress_is_reported_per_blob(tmp_path: Path) -> None:
    from imagewise.progress import Reporter

    class Recorder(Reporter):
        def __init__(self) -> None:
            self.started: dict[str, int | None] = {}
            self.advanced: dict[str, int] = {}
            self.finished: set[str] = set()

        def start(self, key: str, description: str, total: int | None = None) -> None:
            self.started[key] = total

        def advance(self, key: str, amount: int) -> None:
            self.advanced[key] = self.advanced.get(key, 0) + amount

        def done(self, key: str) -> None:
            self.finished.add(key)

    img = random_image(seed=12, layers=3, size=50_000)
    rec = Recorder()
    result = copy(write_oci_layout(img, tmp_path / "src"), f"oci:{tmp_path / 'out'}", reporter=rec)
    sizes = {d: len(b) for d, b in img.blobs.items()}
    total = {"copy": sum(sizes.values())}
    assert rec.started == sizes | total and rec.advanced == sizes | total
    assert rec.finished == set(sizes) | {"copy"}
    assert result.bytes_copied == sum(sizes.values())
    again = Recorder()
    copy(write_oci_layout(img, tmp_path / "src"), f"oci:{tmp_path / 'out'}", reporter=again)
    assert again.advanced == total  # skipped blobs count towards the total, no per-blob bars
