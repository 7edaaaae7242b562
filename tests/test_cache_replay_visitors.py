"""Layers replayed from the layer cache come to the visitors as batches with no content
(``layers.passes.replay_columns``): each content visitor must give what it gave when it read the
layers, including what a later layer's plain files do to an earlier layer's results (evidence
rewritten or replaced, a secret's file overwritten)."""

from __future__ import annotations

from pathlib import Path

from fixtures_images import TarFile, build_image, tar_bytes, write_oci_layout
from sbom_images import build_history
from secret_samples import GH, pem

from imagewise.cache import LayerCache
from imagewise.layers.passes import run_pass
from imagewise.sbom.catalog import catalog
from imagewise.secrets.visitor import SecretsVisitor
from imagewise.sources import open_source

APK_A = b"P:alpha\nV:1.0-r0\nA:x86_64\nL:MIT\no:alpha\n\n"
APK_AB = APK_A + b"P:beta\nV:2.0-r1\nA:x86_64\nL:MIT\no:beta\n\n"
META = "usr/lib/python3.12/site-packages/{0}-{1}.dist-info/METADATA"


def _ref(tmp_path: Path, layers: list[dict[str, object]]) -> str:
    tars = [tar_bytes(files) for files in layers]  # type: ignore[arg-type]
    img = build_image(tars, history=build_history(1, len(tars) - 1), compression="gzip")
    return write_oci_layout(img, tmp_path / "layout", "t")


def _packages(ref: str, cache: LayerCache | None) -> list[tuple[object, ...]]:
    with open_source(ref) as src:
        cat = catalog(src.image(), cache=cache)
    return [
        (
            p.type,
            p.name,
            p.version,
            p.from_base,
            [(loc.layer_index, loc.path) for loc in p.locations],
        )
        for p in cat.packages
    ]


def test_catalog_from_replayed_layers_equals_the_read_one(tmp_path: Path) -> None:
    layers: list[dict[str, object]] = [
        {
            "lib/apk/db/installed": APK_A,
            META.format("kept", "1.0"): b"Metadata-Version: 2.1\nName: kept\nVersion: 1.0\n",
            "opt/tool/package.json": b'{"name": "tool", "version": "0.1.0"}',
            "app/node_modules/x/package.json": b'{"name": "x", "version": "1.0.0"}',
        },
        {
            "lib/apk/db/installed": APK_AB,  # rewritten: alpha keeps its first layer
            "opt/tool/package.json": TarFile(kind="symlink", linkname="/dev/null"),  # replaced
            "app/node_modules/x/package.json": b"not json",  # rewritten, unparseable
            "app/readme.txt": b"plain file, no cataloger",
        },
    ]
    ref = _ref(tmp_path, layers)
    read = _packages(ref, None)
    cache = LayerCache(tmp_path / "cache")
    assert _packages(ref, cache) == read and cache.misses == 2
    assert _packages(ref, cache) == read and cache.hits == 2
    names = {p[1]: p for p in read}
    assert set(names) == {"alpha", "beta", "kept"}  # the replaced and the broken ones are gone
    assert [loc[0] for loc in names["alpha"][4]] == [0, 1]


def test_secrets_from_replayed_layers_equal_the_read_ones(tmp_path: Path) -> None:
    layers: list[dict[str, object]] = [
        {"etc/os-release": b"ID=demo\n"},
        {"root/.ssh/id_rsa": pem("RSA ").encode(), "app/.env": f"GITHUB_TOKEN={GH}\n".encode()},
        {"root/.ssh/id_rsa": b"overwritten\n"},  # a plain file over the key: removed later
    ]
    ref = _ref(tmp_path, layers)
    cache = LayerCache(tmp_path / "cache")

    def findings(cache: LayerCache | None) -> list[tuple[object, ...]]:
        v = SecretsVisitor()
        with open_source(ref) as src:
            run_pass(src.image(), [v], cache=cache)
        return sorted(
            (f.rule, f.location.layer_index, f.location.path, bool(f.extra.get("removed_later")))
            for f in v.findings
        )

    read = findings(None)
    assert read == [
        ("secret/github-token", 1, "app/.env", False),
        ("secret/private-key", 1, "root/.ssh/id_rsa", True),
    ]
    assert findings(cache) == read and cache.misses == 3
    assert findings(cache) == read and cache.hits == 3
