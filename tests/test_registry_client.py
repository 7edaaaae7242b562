"""Registry client against the real distribution registry (no auth): blobs, manifests, uploads,
mounts, tags, catalog, delete."""

from __future__ import annotations

import io
import json

import pytest
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.errors import DigestMismatch, NotFound
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, Index, parse_manifest
from imagewise.reference import ImageReference
from imagewise.registry.client import RegistryClient
from imagewise.sources.registry import RegistrySink, RegistrySource


def client(server: RegistryServer) -> RegistryClient:
    return RegistryClient.get(server.host, server.url)


def ref(server: RegistryServer, repo: str, tag: str = "v1") -> ImageReference:
    return ImageReference.parse(f"{server.host}/{repo}:{tag}")


def blob_desc(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", Digest.of(data), len(data))


def test_push_then_pull_round_trips_manifest_bytes_and_blobs(registry: RegistryServer) -> None:
    repo = unique_repo("rt")
    built = push_image(registry, repo, "v1", build_image((3000, 5000, 100), seed=1))
    src = RegistrySource(ref(registry, repo))
    image = src.image()
    assert str(image.digest) == built.manifest_digest
    assert src.top().raw == built.manifest_raw  # byte-identical
    assert image.config.raw == built.blobs[str(built.config.digest)]
    assert [str(layer.diff_id) for layer in image.layers] == json.loads(image.config.raw)["rootfs"][
        "diff_ids"
    ]
    for layer in image.layers:
        with layer.open_compressed() as f:
            assert f.read() == built.blobs[str(layer.digest)]
    # by digest too, and HEAD gives the same digest without a body
    by_digest = RegistrySource(
        ImageReference.parse(f"{registry.host}/{repo}@{built.manifest_digest}")
    )
    assert by_digest.top().raw == built.manifest_raw
    head = client(registry).head_manifest(repo, "v1")
    assert str(head.digest) == built.manifest_digest
    assert head.media_type == media.OCI_MANIFEST
    assert head.size == len(built.manifest_raw)


def test_docker_media_types_negotiated(registry: RegistryServer) -> None:
    repo = unique_repo("docker-mt")
    built = push_image(registry, repo, "v1", build_image((100,), seed=2, media="docker"))
    fetched = client(registry).get_manifest(repo, "v1")
    assert fetched.media_type == media.DOCKER_MANIFEST
    assert str(fetched.digest) == built.manifest_digest


def test_index_pushed_and_children_fetched_by_digest(registry: RegistryServer) -> None:
    repo = unique_repo("index")
    a = push_image(registry, repo, "amd64", build_image((100,), seed=3))
    index_raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media.OCI_MANIFEST,
                    "digest": a.manifest_digest,
                    "size": len(a.manifest_raw),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    sink = RegistrySink(ref(registry, repo, "multi"))
    sink.put_manifest(parse_manifest(index_raw), top=True)
    src = RegistrySource(ref(registry, repo, "multi"))
    top = src.top()
    assert isinstance(top, Index) and top.raw == index_raw
    from imagewise.oci.model import Platform

    image = src.image(Platform("linux", "amd64"))
    assert str(image.digest) == a.manifest_digest


def test_has_blob_uses_head_and_skips_present(registry: RegistryServer) -> None:
    repo = unique_repo("head")
    sink = RegistrySink(ref(registry, repo))
    data = b"hello blob" * 100
    desc = blob_desc(data)
    assert not sink.has_blob(desc)
    sink.put_blob(desc, io.BytesIO(data))
    assert sink.has_blob(desc)


def test_chunked_upload(registry: RegistryServer) -> None:
    repo = unique_repo("chunked")
    c = RegistryClient(registry.host, registry.url)
    c.chunk_threshold = 1000
    c.chunk_size = 4096
    data = bytes(range(256)) * 70  # 17920 bytes -> 5 PATCH requests
    desc = blob_desc(data)
    c.upload_blob(repo, desc, io.BytesIO(data))
    assert c.has_blob(repo, desc.digest)
    with c.open_blob(repo, desc) as f:
        assert f.read() == data
    c.close()


def test_upload_with_wrong_content_raises_digest_mismatch(registry: RegistryServer) -> None:
    repo = unique_repo("badup")
    data = b"A" * 5000
    desc = blob_desc(data)
    c = client(registry)
    with pytest.raises(DigestMismatch):
        c.upload_blob(repo, desc, io.BytesIO(b"B" * 5000))
    assert not c.has_blob(repo, desc.digest)
    c2 = RegistryClient(registry.host, registry.url)
    c2.chunk_threshold, c2.chunk_size = 100, 1024
    with pytest.raises(DigestMismatch):
        c2.upload_blob(repo, desc, io.BytesIO(b"B" * 5000))
    assert not c2.has_blob(repo, desc.digest)
    c2.close()


def test_cross_repository_mount(registry: RegistryServer) -> None:
    src_repo, dst_repo = unique_repo("mnt-src"), unique_repo("mnt-dst")
    data = b"mount me" * 500
    desc = blob_desc(data)
    client(registry).upload_blob(src_repo, desc, io.BytesIO(data))
    sink = RegistrySink(ref(registry, dst_repo))
    assert not sink.has_blob(desc)
    assert sink.mount_blob(desc, src_repo) is True
    assert sink.has_blob(desc)
    # a blob the source repository does not hold: 202, upload falls back on the opened session
    other = b"not there" * 10
    odesc = blob_desc(other)
    assert sink.mount_blob(odesc, src_repo) is False
    sink.put_blob(odesc, io.BytesIO(other))
    assert sink.has_blob(odesc)


def test_tags_pagination_and_catalog(registry: RegistryServer) -> None:
    repo = unique_repo("tags")
    built = push_image(registry, repo, "t0", build_image((10,), seed=4))
    sink = RegistrySink(ref(registry, repo, "x"))
    names = [f"t{i}" for i in range(1, 7)]
    for name in names:
        RegistrySink(ref(registry, repo, name)).put_manifest(
            parse_manifest(built.manifest_raw), top=True
        )
    del sink
    c = client(registry)
    assert sorted(c.list_tags(repo, page_size=2)) == sorted(["t0", *names])
    assert c.list_tags(repo, page_size=2) == c.list_tags(repo)
    catalog = c.catalog(page_size=3)
    assert repo in catalog
    assert len(catalog) == len(set(catalog))


def test_delete_manifest_by_tag(registry: RegistryServer) -> None:
    repo = unique_repo("del")
    built = push_image(registry, repo, "gone", build_image((10,), seed=5))
    c = client(registry)
    deleted = c.delete_manifest(repo, "gone")
    assert str(deleted) == built.manifest_digest
    with pytest.raises(NotFound) as e:
        c.get_manifest(repo, built.manifest_digest)
    assert e.value.status == 404 and e.value.code == "MANIFEST_UNKNOWN"


def test_not_found_errors_carry_status_and_code(registry: RegistryServer) -> None:
    c = client(registry)
    with pytest.raises(NotFound) as e:
        c.get_manifest(unique_repo("missing"), "latest")
    assert e.value.status == 404
    assert e.value.code in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN")
    assert "HTTP 404" in str(e.value)
    with pytest.raises(NotFound) as e2:
        c.list_tags(unique_repo("missing"))
    assert e2.value.code == "NAME_UNKNOWN"
    desc = blob_desc(b"absent")
    with pytest.raises(NotFound), c.open_blob("some/repo", desc) as f:
        f.read()


def test_manifest_by_digest_is_verified(registry: RegistryServer) -> None:
    repo = unique_repo("mdig")
    built = push_image(registry, repo, "v1", build_image((10,), seed=6))
    raw = built.manifest_raw
    # overwrite the manifest revision's bytes in storage: the registry serves them unchecked
    path = registry.blob_data_path(built.manifest_digest)
    path.write_bytes(raw.replace(b'"schemaVersion"', b'"schemaversion"'))
    with pytest.raises(DigestMismatch) as e:
        client(registry).get_manifest(repo, built.manifest_digest)
    assert e.value.expected == built.manifest_digest


def test_put_manifest_under_wrong_digest_refused(registry: RegistryServer) -> None:
    repo = unique_repo("wrongdig")
    built = push_image(registry, repo, "v1", build_image((10,), seed=8))
    other = Digest.of(b"something else")
    with pytest.raises(DigestMismatch):
        client(registry).put_manifest(repo, str(other), built.manifest_raw, media.OCI_MANIFEST)
