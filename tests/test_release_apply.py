"""release.apply against the real registry: manifest PUT only, digests equal the source.

The registry's storage is shared by the session and some tests corrupt blobs in it on purpose
(same content, same digest), so these images use seeds of their own (51xx)."""

from __future__ import annotations

import json

import pytest
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.registry.client import RegistryClient
from imagewise.release.apply import apply_tags
from imagewise.release.tagging import plan_tags


def _client(registry: RegistryServer) -> RegistryClient:
    """A client of its own: the shared one of a reused port may hold another registry's tokens."""
    return RegistryClient(registry.host, registry.url, insecure=True)


def test_apply_tags_puts_source_manifest(
    registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique_repo("tag")
    built = push_image(registry, repo, "build", build_image((10, 20), seed=5105))
    client = _client(registry)
    source = str(client.head_manifest(repo, "build").digest)
    tags = plan_tags([], semver="1.4.2", env="staging")
    blob_calls: list[str] = []
    for name in ("has_blob", "open_blob", "read_blob", "upload_blob", "mount_blob"):
        monkeypatch.setattr(client, name, lambda *a, _n=name, **k: blob_calls.append(_n))
    changes = apply_tags(client, repo, "build", tags)
    assert [c.tag for c in changes] == ["1.4.2", "1.4", "1", "staging"]
    assert all(c.old is None and c.new == source for c in changes)
    for tag in tags:
        got = client.get_manifest(repo, tag)
        assert got.raw == built.manifest_raw
    assert blob_calls == []  # manifests only: no blob checked, read, mounted or uploaded
    # again: nothing moves
    again = apply_tags(client, repo, "build", tags)
    assert not any(c.changed for c in again)


def test_dry_run_changes_nothing(registry: RegistryServer) -> None:
    repo = unique_repo("tag")
    push_image(registry, repo, "build", build_image((10,), seed=5106))
    client = _client(registry)
    changes = apply_tags(client, repo, "build", ["2.0.0"], dry_run=True)
    assert changes[0].old is None and changes[0].changed
    assert "2.0.0" not in client.list_tags(repo)


def test_index_bytes_put_as_is(registry: RegistryServer) -> None:
    repo = unique_repo("tag")
    a, b = build_image((10,), seed=5107), build_image((12,), seed=5108)
    push_image(registry, repo, "a", a)
    push_image(registry, repo, "b", b)
    client = _client(registry)
    mt = "application/vnd.oci.image.index.v1+json"
    descs = []
    for tag, arch in (("a", "amd64"), ("b", "arm64")):
        d = client.head_manifest(repo, tag)
        descs.append(
            {
                "mediaType": d.media_type,
                "digest": str(d.digest),
                "size": d.size,
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt, "manifests": descs}).encode()
    client.put_manifest(repo, "multi", raw, mt)
    changes = apply_tags(client, repo, "multi", ["3.0.0"])
    assert client.get_manifest(repo, "3.0.0").raw == raw
    assert changes[0].new == str(client.head_manifest(repo, "multi").digest)
