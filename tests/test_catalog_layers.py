"""The catalog is the final filesystem's view, with the layer that introduced each package and
base-image attribution; catalogers as visitors in a shared pass; the layer cache round trip."""

from __future__ import annotations

import gzip
from pathlib import Path

from fixtures_images import (
    TarFile,
    alpine_rootfs,
    build_image,
    tar_bytes,
    write_docker_archive,
)
from sbom_images import build_history, catalog_layers

from imagewise.layers.model import Entry, Visitor
from imagewise.sbom.catalog import Catalog, base_layer_count, catalog, catalog_from_visitor
from imagewise.sbom.visitor import CatalogVisitor
from imagewise.sources import open_source

APK_A = b"P:alpha\nV:1.0-r0\nA:x86_64\nL:MIT\no:alpha\n\nP:beta\nV:2.0-r1\nA:x86_64\nL:GPL-2.0-only\no:betasrc\n\n"
APK_AB_GAMMA = APK_A + b"P:gamma\nV:3.0-r0\nA:x86_64\nL:MIT\no:gamma\n\n"
OS_RELEASE = b'ID=alpine\nVERSION_ID=3.19.4\nPRETTY_NAME="Alpine Linux v3.19"\n'
META = "usr/lib/python3.12/site-packages/{0}-{1}.dist-info/METADATA"


def _meta(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def _keys(cat: Catalog) -> set[tuple[str, str, str]]:
    return {(p.type, p.name, p.version) for p in cat.packages}


def test_rewritten_db_keeps_introducing_layer(tmp_path: Path) -> None:
    base = tar_bytes({"etc/os-release": OS_RELEASE, "lib/apk/db/installed": APK_A})
    app = tar_bytes({"lib/apk/db/installed": APK_AB_GAMMA})
    cat = catalog_layers(tmp_path, [base, app])
    by_name = {p.name: p for p in cat.packages}
    assert set(by_name) == {"alpha", "beta", "gamma"}
    alpha, gamma = by_name["alpha"], by_name["gamma"]
    assert alpha.introduced_by is not None and alpha.introduced_by.layer_index == 0
    assert [loc.layer_index for loc in alpha.locations] == [0, 1]  # introduced, then final copy
    assert alpha.from_base is True and gamma.from_base is False
    assert gamma.introduced_by is not None and gamma.introduced_by.layer_index == 1
    assert alpha.introduced_by.layer.startswith("sha256:")
    assert (
        by_name["beta"].purl
        == "pkg:apk/alpine/beta@2.0-r1?arch=x86_64&distro=alpine-3.19.4&upstream=betasrc"
    )
    assert by_name["beta"].source_name == "betasrc" and by_name["beta"].distro == "alpine:3.19.4"
    assert cat.base_layers == 1 and "CMD" in cat.base_rule


def test_deleted_and_hidden_evidence_removes_packages(tmp_path: Path) -> None:
    base = tar_bytes(
        {
            "lib/apk/db/installed": APK_A,
            META.format("keep", "1.0"): _meta("keep", "1.0"),
            META.format("gone", "1.0"): _meta("gone", "1.0"),
            "app/node_modules/x/package.json": b'{"name": "x", "version": "1.0.0"}',
            "opt/bin/tool/package.json": b'{"name": "tool", "version": "0.1.0"}',
        }
    )
    app = tar_bytes(
        {
            "lib/apk/.wh.db": b"",  # whiteout of a parent directory
            "usr/lib/python3.12/site-packages/.wh.gone-1.0.dist-info": b"",
            "app/node_modules/.wh..wh..opq": b"",  # opaque: lower node_modules hidden
            "app/node_modules/y/package.json": b'{"name": "y", "version": "2.0.0"}',
            "opt/bin/tool/package.json": TarFile(kind="symlink", linkname="/dev/null"),
        }
    )
    cat = catalog_layers(tmp_path, [base, app])
    assert _keys(cat) == {("pypi", "keep", "1.0"), ("npm", "y", "2.0.0")}


def test_recreated_after_delete_counts_from_new_layer(tmp_path: Path) -> None:
    l0 = tar_bytes({META.format("a", "1"): _meta("a", "1")})
    l1 = tar_bytes({"usr/lib/python3.12/site-packages/.wh.a-1.dist-info": b""})
    l2 = tar_bytes({META.format("a", "1"): _meta("a", "1")})
    cat = catalog_layers(tmp_path, [l0, l1, l2])
    (pkg,) = cat.packages
    assert [loc.layer_index for loc in pkg.locations] == [2] and pkg.from_base is False


def test_same_package_in_two_places_is_one_package_with_two_locations(tmp_path: Path) -> None:
    layer = tar_bytes(
        {
            "a/node_modules/ms/package.json": b'{"name":"ms","version":"2.1.3"}',
            "b/node_modules/ms/package.json": b'{"name":"ms","version":"2.1.3"}',
        }
    )
    cat = catalog_layers(tmp_path, [layer])
    (pkg,) = cat.packages
    assert sorted(loc.path for loc in pkg.locations) == [
        "a/node_modules/ms/package.json",
        "b/node_modules/ms/package.json",
    ]
    assert pkg.purl == "pkg:npm/ms@2.1.3"


def test_broken_evidence_is_skipped_with_reason(tmp_path: Path) -> None:
    layer = tar_bytes(
        {
            "app/package.json": b'{"name": "x", ',
            "opt/lib/broken.jar": b"PK\x03\x04 not really a zip",
            "var/lib/rpm/Packages": b"\0" * 64,
            META.format("ok", "1"): _meta("ok", "1"),
        }
    )
    cat = catalog_layers(tmp_path, [layer])
    assert _keys(cat) == {("pypi", "ok", "1")}
    reasons = {s.path: s.reason for s in cat.skipped}
    assert "malformed package.json" in reasons["app/package.json"]
    assert "Java archive" in reasons["opt/lib/broken.jar"]
    assert "Berkeley DB" in reasons["var/lib/rpm/Packages"]


def test_base_rule_from_history_and_label() -> None:
    img = build_image([b"", b""], history=build_history(1, 1), compression="")

    class _Img:  # only the fields base_layer_count reads
        def __init__(self, labels: dict[str, str]) -> None:
            from imagewise.oci.model import ImageConfig, parse_manifest

            self.config = ImageConfig.parse(img.config)
            if labels:
                object.__setattr__(self.config, "labels", labels)
            self.manifest = parse_manifest(img.manifest)

    assert base_layer_count(_Img({}))[0] == 1  # type: ignore[arg-type]
    named = base_layer_count(_Img({"org.opencontainers.image.base.layers": "2"}))  # type: ignore[arg-type]
    assert (named.layers, named.rule) == (2, "label org.opencontainers.image.base.layers")
    assert base_layer_count(_Img({"org.opencontainers.image.base.layers": "2"}))[0] == 2  # type: ignore[arg-type]
    only_base = build_image([b""], history=build_history(1, 0), compression="")
    from imagewise.oci.model import ImageConfig, parse_manifest

    class _Base:
        config = ImageConfig.parse(only_base.config)
        manifest = parse_manifest(only_base.manifest)

    count, rule = base_layer_count(_Base())  # type: ignore[arg-type]
    assert count is None and "base image" in rule


class _AlsoReads(Visitor):
    """Another content-reading visitor in the same pass (exercises shared content)."""

    name = "also-reads"

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def wants_content(self, entry: Entry) -> bool:
        return entry.path.endswith("installed")

    def visit(self, entry: Entry) -> None:
        if entry.path.endswith("installed") and entry.is_file:
            self.seen[entry.path] = len(entry.read())


def test_visitor_shares_one_pass_and_cache_round_trip(tmp_path: Path) -> None:
    from imagewise.cache import LayerCache
    from imagewise.layers.passes import run_pass

    tar = gzip.decompress(alpine_rootfs("3.19.4").read_bytes())
    app = tar_bytes({META.format("flask", "3.0.0"): _meta("Flask", "3.0.0")})
    img = build_image([tar, app], history=build_history(1, 1))
    ref = write_docker_archive(img, tmp_path / "a.tar")
    with open_source(ref) as src:
        image = src.image()
        v, other = CatalogVisitor(), _AlsoReads()
        run_pass(image, [v, other])
        shared = catalog_from_visitor(v, image)
        assert other.seen["lib/apk/db/installed"] > 1000
        alone = catalog(image)
        cache = LayerCache(tmp_path / "cache")
        first = catalog(image, cache=cache)
        second = catalog(image, cache=cache)
        assert cache.hits >= 2
    assert shared.packages == alone.packages == first.packages == second.packages
    assert len([p for p in alone.packages if p.type == "apk"]) == 15
    assert ("pypi", "flask", "3.0.0") in _keys(alone)
    flask = next(p for p in second.packages if p.name == "flask")
    assert flask.from_base is False and flask.introduced_by is not None
    assert flask.introduced_by.layer == str(image.layers[1].diff_id)


def test_deb_licenses_and_distro_fallbacks(tmp_path: Path) -> None:
    copyright = (
        b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        b"Files: *\nLicense: GPL-3+ with Bison exception\n\nFiles: lib/*\n"
        b"License: LGPL-2.1+\n On Debian systems see /usr/share/common-licenses/LGPL-2.1.\n"
    )
    layer = tar_bytes(
        {
            "etc/debian_version": b"12.5\n",
            "var/lib/dpkg/status": b"Package: bison\nStatus: install ok installed\nVersion: 2:3.8.2+dfsg-1\n"
            b"Architecture: amd64\n",
            "usr/share/doc/bison/copyright": copyright,
        }
    )
    cat = catalog_layers(tmp_path, [layer])
    (pkg,) = cat.packages
    assert pkg.licenses == ("GPL-3+", "LGPL-2.1+", "LGPL-2.1")
    assert (
        cat.distro is not None and cat.distro.label == "debian:12"
    )  # no os-release: debian_version
    assert pkg.purl == "pkg:deb/debian/bison@2:3.8.2%2Bdfsg-1?arch=amd64&distro=debian-12"


def test_evidence_replaced_by_symlink_in_next_layer_same_path(tmp_path: Path) -> None:
    """The same path as the last entry of one layer and the first of the next, different kinds."""
    l0 = tar_bytes({"a/package.json": b'{"name":"a","version":"1.0.0"}'})
    l1 = tar_bytes(
        {
            "a/package.json": TarFile(kind="symlink", linkname="../b/package.json"),
            "b/package.json": b'{"name":"b","version":"2.0.0"}',
        }
    )
    cat = catalog_layers(tmp_path, [l0, l1])
    assert _keys(cat) == {("npm", "b", "2.0.0")} and cat.skipped == ()


def test_python_vcs_install_purl_matches_syft(tmp_path: Path) -> None:
    """PEP 610 direct_url.json adds ``vcs_url`` to the purl; syft's expected purl for its fixture."""
    import json

    from conftest import corpus
    from packageurl import PackageURL

    root = corpus(
        "sbom-fixtures",
        "syft",
        "syft",
        "pkg",
        "cataloger",
        "python",
        "testdata",
        "site-packages",
        "nested",
    )
    site = "usr/lib/python3/site-packages/"
    layer = tar_bytes(
        {
            site + p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
    )
    cat = catalog_layers(tmp_path, [layer])
    ours = {p.name: p.purl for p in cat.packages}
    rows = [
        json.loads(line)
        for line in (corpus("sbom-fixtures") / "expected_packages.jsonl").read_text().splitlines()
    ]
    row = next(r for r in rows if r["case"] == "dist-info+egg-info site-packages directory")
    for expected in row["packages"]:
        assert PackageURL.from_string(ours[expected["Name"]]) == PackageURL.from_string(
            expected["PURL"]
        )
    assert "vcs_url" in ours["pygments"]


def test_lockfiles_declare_only_where_nothing_is_installed(tmp_path: Path) -> None:
    import json as _json

    lock = _json.dumps(
        {
            "name": "app",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "packages": {
                "": {"name": "app", "version": "1.0.0"},
                "node_modules/ms": {"version": "2.1.3"},
                "node_modules/fsevents": {
                    "version": "2.3.3",
                    "optional": True,
                },  # not installed here
            },
        }
    ).encode()
    layer = tar_bytes(
        {
            # an app with node_modules installed: installed package.json files are the truth
            "srv/a/package-lock.json": lock,
            "srv/a/package.json": b'{"name": "app", "version": "1.0.0"}',
            "srv/a/node_modules/ms/package.json": b'{"name": "ms", "version": "2.1.3"}',
            # an app copied without node_modules: its lockfile declares what it will use
            "srv/b/package-lock.json": lock.replace(b"2.1.3", b"2.1.2"),
            # an upstream dev lockfile shipped with a globally installed module
            "usr/share/nodejs/nanoid/pnpm-lock.yaml": b"lockfileVersion: 5.4\npackages:\n"
            b"  /left-pad/1.3.0:\n    dev: false\n",
            "usr/share/nodejs/nanoid/package.json": b'{"name": "nanoid", "version": "3.3.4"}',
        }
    )
    cat = catalog_layers(tmp_path, [layer])
    assert _keys(cat) == {
        ("npm", "app", "1.0.0"),
        ("npm", "ms", "2.1.3"),
        ("npm", "ms", "2.1.2"),
        ("npm", "fsevents", "2.3.3"),
        ("npm", "nanoid", "3.3.4"),
    }
    fsevents = next(p for p in cat.packages if p.name == "fsevents")
    assert [loc.path for loc in fsevents.locations] == ["srv/b/package-lock.json"]
