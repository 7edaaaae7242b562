"""``imagewise sync`` between two real registries and into an OCI layout: skopeo's YAML, blobs
sent once per run, an incremental second run of manifest HEADs only, prune, dry run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import (
    PASSWORD,
    USERNAME,
    RegistryServer,
    push_image,
    start_registry,
    stop_registry,
    unique_repo,
)
from storage_support import image

from imagewise.cli.main import cli
from imagewise.registry.client import RegistryClient
from imagewise.registry.http import Request


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    src, dst = start_registry(tmp_path / "src"), start_registry(tmp_path / "dst")
    yield src, dst
    stop_registry(src)
    stop_registry(dst)


def _seed(src: RegistryServer) -> dict[str, str]:
    base = [8600, 8601]
    digests = {}
    for repo, tag, top in (
        ("app", "1.0", 8610),
        ("app", "1.1", 8611),
        ("web", "1.0", 8620),
        ("web", "2.0", 8621),
        ("lib", "v1.0", 8630),
        ("lib", "v2.0", 8631),
        ("tool", "1.1.0", 8640),
        ("tool", "1.2.0", 8641),
        ("tool", "1.3.0", 8642),
    ):
        digests[f"{repo}:{tag}"] = push_image(src, repo, tag, image([*base, top])).manifest_digest
    return digests


def _config(tmp_path: Path, src: RegistryServer, extra: str = "") -> Path:
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(
        f"{src.host}:\n"
        "  tls-verify: false\n"
        "  images:\n"
        "    app: []\n"
        "    web: ['1.0']\n"
        "  images-by-tag-regex:\n"
        "    lib: ^v1\\.\n"
        "  images-by-semver:\n"
        "    tool: '>= 1.2.0'\n" + extra
    )
    return cfg


def _count(client: RegistryClient, counts: Counter[str]) -> None:
    def hook(r: Request) -> None:
        path = r.path
        kind = (
            "manifest"
            if "/manifests/" in path
            else "tags"
            if path.endswith("/tags/list")
            else "blob"
        )
        counts[f"{r.method} {kind}"] += 1
        if r.method == "PUT" and "/blobs/uploads/" in path:
            counts["upload " + str(r.params.get("digest"))] += 1

    client.session.client.on_request.append(hook)


def test_sync_then_resync_then_prune(
    pair: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    src, dst = pair
    digests = _seed(src)
    cfg = _config(tmp_path, src)
    RegistryClient.clear_shared()
    dst_counts: Counter[str] = Counter()
    _count(RegistryClient.get(dst.host), dst_counts)
    code, out = _run("sync", str(cfg), f"docker://{dst.host}/mirror", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/sync/v1"
    synced = {i["source"].split("/", 1)[1]: i for i in doc["images"]}
    assert set(synced) == {"app:1.0", "app:1.1", "web:1.0", "lib:v1.0", "tool:1.2.0", "tool:1.3.0"}
    assert all(i["action"] == "copied" for i in synced.values())
    client = RegistryClient(dst.host, dst.url, insecure=True)
    for name in synced:
        repo, tag = name.split(":")
        assert str(client.head_manifest(f"mirror/{repo}", tag).digest) == digests[name]
    # every blob sent once: the shared base layers uploaded once, mounted everywhere else
    uploads = {k: n for k, n in dst_counts.items() if k.startswith("upload ")}
    assert uploads and set(uploads.values()) == {1}, uploads
    # the two base layers: sent to one repository, mounted into the three others
    assert doc["blobs_mounted"] >= 2 * 3
    # a second run with nothing new: manifest HEADs only on the destination
    dst_counts.clear()
    code, out = _run("sync", str(cfg), f"docker://{dst.host}/mirror", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["counts"] == {"up-to-date": 6}
    assert set(dst_counts) == {"HEAD manifest"} and dst_counts["HEAD manifest"] == 6, dst_counts
    # the source drops app:1.0; --prune removes it from the mirror (dry run first)
    RegistryClient(src.host, src.url, insecure=True).delete_manifest("app", digests["app:1.0"])
    code, out = _run(
        "sync", str(cfg), f"docker://{dst.host}/mirror", "--prune", "--dry-run", "--format", "json"
    )
    assert code == 0, out
    assert json.loads(out)["pruned"] == [
        {
            "repository": "mirror/app",
            "tag": "1.0",
            "digest": digests["app:1.0"],
            "action": "would-delete",
        }
    ]
    assert "1.0" in client.list_tags("mirror/app")
    code, out = _run("sync", str(cfg), f"docker://{dst.host}/mirror", "--prune")
    assert code == 0 and "deleted" in out, out
    assert client.list_tags("mirror/app") == ["1.1"]


def test_sync_into_one_oci_layout(
    pair: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    src, _ = pair
    _seed(src)
    cfg = _config(tmp_path, src)
    layout = tmp_path / "bundle"
    code, out = _run("sync", str(cfg), f"oci:{layout}", "--format", "json")
    assert code == 0, out
    index = json.loads((layout / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert names == {"app:1.0", "app:1.1", "web:1.0", "lib:v1.0", "tool:1.2.0", "tool:1.3.0"}
    blobs = list((layout / "blobs" / "sha256").iterdir())
    assert len(blobs) == 2 + 6 * 3  # the base's two layers once; per image: layer, config, manifest
    code, out = _run("sync", str(cfg), f"oci:{layout}", "--format", "json")
    assert code == 0 and json.loads(out)["counts"] == {"up-to-date": 6}, out
    code, out = _run("files", f"oci:{layout}:tool:1.3.0", "--format", "json")
    assert code == 0, out


def test_credentials_from_the_config(
    registry_basic: RegistryServer, registry: RegistryServer, tmp_path: Path
) -> None:
    repo = unique_repo("sync-auth")
    from fixtures_registry import build_image

    RegistryClient.clear_shared()
    # push with the credentials (the test's own client)
    from imagewise.registry.credentials import Credentials

    authed = RegistryClient(
        registry_basic.host,
        registry_basic.url,
        insecure=True,
        credentials=Credentials(USERNAME, PASSWORD),
    )
    img = build_image((6,), seed=8701)
    import io

    for desc in (img.config, *img.layers):
        authed.upload_blob(repo, desc, io.BytesIO(img.blobs[str(desc.digest)]))
    authed.put_manifest(repo, "1.0", img.manifest_raw, "application/vnd.oci.image.manifest.v1+json")
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(
        f"{registry_basic.host}:\n  credentials: {{username: {USERNAME}, password: {PASSWORD}}}\n"
        f"  images:\n    {repo}: ['1.0']\n"
    )
    dest_prefix = unique_repo("sync-dst")
    code, out = _run("sync", str(cfg), f"docker://{registry.host}/{dest_prefix}")
    assert code == 0, out
    client = RegistryClient(registry.host, registry.url, insecure=True)
    assert str(client.head_manifest(f"{dest_prefix}/{repo}", "1.0").digest) == img.manifest_digest
    assert PASSWORD not in out


def test_bad_configs_and_failures(registry: RegistryServer, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    for text, message in (
        ("[1, 2]\n", "expected a map of registry"),
        ("localhost:5000:\n  imagez: {}\n", "unknown key imagez"),
        ("localhost:5000:\n  images-by-tag-regex: {x: '('}\n", "images-by-tag-regex.x"),
    ):
        cfg.write_text(text)
        code, out = _run("sync", str(cfg), f"docker://{registry.host}/m")
        assert code == 2 and message in out and out.count("\n") == 1, (text, out)
    code, out = _run("sync", str(tmp_path / "missing.yaml"), f"docker://{registry.host}/m")
    assert code == 2 and "not found" in out, out
    cfg.write_text(f"{registry.host}:\n  images:\n    nope/none: ['1.0']\n")
    code, out = _run("sync", str(cfg), f"docker://{registry.host}/m")
    assert code == 2 and "failed" in out and "nope/none" in out, out
