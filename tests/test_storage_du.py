"""``imagewise du`` on the real registry and on OCI layouts: logical, unique and shared bytes
checked against sums computed here from the images, and only manifests requested."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import CliRunner
from fixtures_registry import RegistryServer, push_image, unique_repo
from storage_support import closure_bytes, counting, image

from imagewise.cli.main import cli
from imagewise.registry.client import RegistryClient
from imagewise.storage.du import space_report
from imagewise.storage.inventory import read_registry


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_du_of_repositories_sharing_a_base(registry: RegistryServer) -> None:
    app, web = unique_repo("du-app"), unique_repo("du-web")
    base = [6101, 6102]
    a1 = image([*base, 6103])
    a2 = image([*base, 6104])
    w1 = image([*base, 6105])
    push_image(registry, app, "1.0", a1)
    push_image(registry, app, "1.1", a2)
    push_image(registry, app, "latest", a2)  # a second tag on one image: counted once
    push_image(registry, web, "1.0", w1)
    code, out = _run("du", f"{registry.host}/{app}", f"{registry.host}/{web}", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/du/v1"
    by_repo = {r["repository"]: r for r in doc["repositories"]}
    assert by_repo[app]["tags"] == 3 and by_repo[app]["images"] == 2
    assert by_repo[app]["logical_bytes"] == closure_bytes(a1) + closure_bytes(a2)
    base_bytes = sum(d.size for d in a1.layers[:2])
    assert by_repo[app]["unique_bytes"] == closure_bytes(a1) + closure_bytes(a2) - base_bytes
    logical = closure_bytes(a1) + closure_bytes(a2) + closure_bytes(w1)
    assert doc["logical_bytes"] == logical
    assert doc["unique_bytes"] == logical - 2 * base_bytes
    assert doc["shared_bytes"] == 2 * base_bytes
    assert doc["dedup_ratio"] == round(logical / (logical - 2 * base_bytes), 4)
    top = {b["digest"]: b["images"] for b in doc["top_blobs"]}
    assert top == {str(a1.layers[0].digest): 3, str(a1.layers[1].digest): 3}
    tags = {(t["repository"], t["tag"]): t["bytes"] for t in doc["tags"]}
    assert tags[(app, "latest")] == tags[(app, "1.1")] == closure_bytes(a2)
    assert doc["untagged"] is None  # the distribution API cannot list them
    code, out = _run("du", f"{registry.host}/{app}")
    assert code == 0 and "dedup ratio" in out and app in out, out


def test_du_reads_manifests_only(registry: RegistryServer) -> None:
    repo = unique_repo("du-count")
    for i in range(6):
        push_image(registry, repo, f"v{i}", image([6200, 6201 + i]))
    client = RegistryClient(registry.host, registry.url, insecure=True)
    with counting(client) as counts:
        report = space_report([read_registry(client, [repo])])
    assert counts == {"tags": 1, "manifest": 6}, counts
    assert report.repositories[0]["images"] == 6


def test_du_of_an_oci_layout_finds_untagged_manifests(tmp_path: Path) -> None:
    from fixtures_images import build_image, write_oci_layout

    img = build_image([b"x" * 100], compression="gzip")
    layout = tmp_path / "layout"
    write_oci_layout(img, layout, "1.0")
    # an orphan manifest: in the blob store, named by no index.json entry
    orphan = image([6301])
    blobs = layout / "blobs" / "sha256"
    for digest, data in orphan.blobs.items():
        (blobs / digest.split(":")[1]).write_bytes(data)
    (blobs / orphan.manifest_digest.split(":")[1]).write_bytes(orphan.manifest_raw)
    code, out = _run("du", f"oci:{layout}", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert [u["digest"] for u in doc["untagged"]] == [orphan.manifest_digest]
    assert doc["untagged"][0]["bytes"] == closure_bytes(orphan)
    code, out = _run("du", f"oci:{layout}", "--format", "html", "-o", str(tmp_path / "du.html"))
    assert code == 0, out
    page = (tmp_path / "du.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Most shared blobs" in page


def test_du_bad_input_is_one_line(tmp_path: Path) -> None:
    for ref, message in (
        ("notahost", "not a registry"),
        ("localhost:5000/app:1.0", "without a tag or digest"),
        (f"oci:{tmp_path}", "not an OCI layout"),
        ("127.0.0.1:1", "127.0.0.1:1"),
    ):
        code, out = _run("du", ref)
        assert code == 2 and message in out and out.count("\n") == 1, (ref, out)
