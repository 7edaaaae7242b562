"""SBOM output: imagewise JSON, table, CycloneDX 1.6 and SPDX 2.3 validated by the official
libraries; reading SBOMs back (ours and syft's); the ``imagewise sbom`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_images import build_image, tar_bytes, write_oci_layout
from sbom_images import apps_image, debian_small_image

from imagewise.sbom.catalog import Catalog, catalog
from imagewise.sbom.formats import render
from imagewise.sbom.model import TYPES
from imagewise.sbom.read import looks_like_sbom, read_sbom
from imagewise.sources import open_source


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sbom-out")
    write_oci_layout(apps_image(compression=""), root / "apps", "latest")
    write_oci_layout(debian_small_image(), root / "deb", "latest")
    odd = tar_bytes(
        {
            "lib/apk/db/installed": b"P:odd\nV:1-r0\nA:x86_64\nL:GPL2+ BSD License-Ref weird\n\n",
            "usr/lib/python3/site-packages/x-1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: x\nVersion: 1\nLicense: BSD License\n",
        }
    )
    write_oci_layout(build_image([odd], compression=""), root / "odd", "latest")
    return {k: f"oci:{root / k}:latest" for k in ("apps", "deb", "odd")}


@pytest.fixture(scope="module")
def catalogs(layouts: dict[str, str]) -> dict[str, Catalog]:
    out = {}
    for k, ref in layouts.items():
        with open_source(ref) as src:
            out[k] = catalog(src.image())
    return out


def _ident(cat: Catalog) -> set[tuple[str, str, str, str]]:
    return {(p.type, p.name, p.version, p.purl) for p in cat.packages}


@pytest.mark.parametrize("which", ["apps", "deb", "odd"])
def test_cyclonedx_valid_and_round_trips(
    catalogs: dict[str, Catalog], which: str, tmp_path: Path
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = render(catalogs[which], "cyclonedx-json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["metadata"]["component"]["type"] == "container"
    f = tmp_path / "bom.cdx.json"
    f.write_text(text)
    assert looks_like_sbom(f)
    back = read_sbom(f)
    assert _ident(back) == _ident(catalogs[which])
    orig = {p.purl: p for p in catalogs[which].packages}
    for p in back.packages:
        assert p.locations[0].path == orig[p.purl].introduced_by.path  # type: ignore[union-attr]
        assert p.from_base == orig[p.purl].from_base


@pytest.mark.parametrize("which", ["apps", "deb", "odd"])
def test_spdx_valid_and_round_trips(
    catalogs: dict[str, Catalog], which: str, tmp_path: Path
) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    text = render(catalogs[which], "spdx-json")
    f = tmp_path / "doc.spdx.json"
    f.write_text(text)
    document = parse_file(str(f))
    assert validate_full_spdx_document(document) == []
    assert len(document.packages) == len(catalogs[which].packages) + 1  # + the image itself
    back = read_sbom(f)
    assert _ident(back) == _ident(catalogs[which])


def test_unusual_licenses_survive_without_breaking_validity(catalogs: dict[str, Catalog]) -> None:
    cat = catalogs["odd"]
    odd = next(p for p in cat.packages if p.name == "odd")
    assert odd.licenses == ("GPL2+", "BSD", "License-Ref", "weird")
    spdx = json.loads(render(cat, "spdx-json"))
    entry = next(p for p in spdx["packages"] if p["name"] == "odd")
    assert entry["licenseDeclared"] == "NOASSERTION" and "GPL2+" in entry["licenseComments"]


def test_imagewise_json_envelope(catalogs: dict[str, Catalog]) -> None:
    doc = json.loads(render(catalogs["apps"], "json"))
    assert doc["schema"] == "imagewise/sbom/v1"
    assert doc["distro"]["id"] == "alpine" and doc["base_layers"] == 1
    for p in doc["packages"]:
        assert {"name", "version", "type", "purl", "licenses", "locations"} <= set(p)
        assert p["type"] in TYPES
        assert all(set(loc) == {"layer", "path"} for loc in p["locations"])
    types = {p["type"] for p in doc["packages"]}
    assert types == {"apk", "pypi", "npm", "golang", "maven"}
    musl = next(p for p in doc["packages"] if p["name"] == "musl")
    assert musl["from_base"] is True and musl["source"]["name"] == "musl"
    flask = next(p for p in doc["packages"] if p["name"] == "flask")
    assert flask["from_base"] is False


def test_table_lists_layer_and_base(catalogs: dict[str, Catalog]) -> None:
    text = render(catalogs["deb"], "table")
    line = next(ln for ln in text.splitlines() if ln.startswith("curl "))
    assert line.split()[-2:] == ["1", "app"]
    assert "Debian GNU/Linux 12 (bookworm)" in text.splitlines()[-1]


def test_reads_syft_sboms(
    layouts: dict[str, str], catalogs: dict[str, Catalog], tmp_path: Path
) -> None:
    """SBOMs written by another tool (syft) are accepted as input."""
    target = "oci-dir:" + layouts["deb"].split(":", 1)[1].rsplit(":", 1)[0]
    fmts = ("cyclonedx-json", "spdx-json", "json")
    subprocess.run(
        ["syft", "scan", target, "-q", *[a for f in fmts for a in ("-o", f"{f}={tmp_path / f}")]],
        check=True,
    )
    for fmt in fmts:
        back = read_sbom(tmp_path / fmt)
        ours = {(p.type, p.name, p.version) for p in catalogs["deb"].packages}
        theirs = {(p.type, p.name, p.version) for p in back.packages}
        assert ours <= theirs and theirs - ours == {("deb", "removed-pkg", "1.0-1")}
        assert back.distro is not None and back.distro.id == "debian"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagewise", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_formats_output_file_and_errors(layouts: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    r = _cli("sbom", layouts["deb"], "--format", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert {p["name"] for p in doc["packages"]} >= {"libc6", "curl", "ca-certificates"}
    cdx = tmp_path / "sbom.cdx.json"
    assert _cli("sbom", layouts["deb"], "-f", "cyclonedx-json", "-o", str(cdx)).returncode == 0
    r = _cli("sbom", str(cdx), "--format", "json")  # an SBOM file as input
    assert r.returncode == 0 and {p["name"] for p in json.loads(r.stdout)["packages"]} == {
        p["name"] for p in doc["packages"]
    }
    r = _cli("sbom", layouts["deb"])
    assert r.returncode == 0 and "libc6" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"bomFormat": "CycloneDX", ')
    r = _cli("sbom", str(bad))
    assert (
        r.returncode == 2
        and r.stderr.startswith("imagewise: error:")
        and "Traceback" not in r.stderr
    )
    r = _cli("sbom", "oci:" + str(tmp_path / "missing") + ":x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = _cli("sbom", layouts["deb"], "--format", "xml")
    assert r.returncode == 2
    r = _cli("sbom", "--list-catalogers")
    assert r.returncode == 0 and "go-module-binary" in r.stdout and "rpm-db" in r.stdout
    assert _cli("sbom").returncode == 2


def test_sbom_of_registry_image(registry, layouts: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No daemon: the SBOM of an image in a registry, read over the registry API."""
    from fixtures_registry import unique_repo

    from imagewise.copy import copy

    ref = f"docker://{registry.host}/{unique_repo('sbom')}:v1"
    copy(layouts["deb"], ref)
    out = tmp_path / "reg.json"
    r = _cli("sbom", ref, "-f", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    local = json.loads(render(catalog(open_source(layouts["deb"]).image()), "json"))
    assert json.loads(out.read_text())["packages"] == local["packages"]


# Licenses as Debian's e2fsprogs declares them: "GPL" alone reads as an SPDX expression, the rest
# as names, and CycloneDX 1.6 forbids an expression beside other licenses.
E2FSPROGS_COPYRIGHT = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2

Files: lib/et/* lib/ss/*
License: LGPL-2

Files: lib/uuid/*
License: BSD-3-Clause

Files: debian/*
License: GPL

Files: lib/ext2fs/kernel-jbd.h
License: Apache-2.0 OR MIT
"""


def _validate_cyclonedx_and_spdx(cat: Catalog, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    text = render(cat, "cyclonedx-json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    f = tmp_path / "doc.spdx.json"
    f.write_text(render(cat, "spdx-json"))
    assert validate_full_spdx_document(parse_file(str(f))) == []


def test_debian_licenses_mixing_an_expression_and_names_make_valid_cyclonedx(
    tmp_path: Path,
) -> None:
    from imagewise.sbom.cyclonedx import _licenses

    layer = tar_bytes(
        {
            "var/lib/dpkg/status": b"Package: e2fsprogs\nStatus: install ok installed\n"
            b"Architecture: amd64\nVersion: 1.47.0-2\n\n",
            "usr/share/doc/e2fsprogs/copyright": E2FSPROGS_COPYRIGHT,
        }
    )
    write_oci_layout(build_image([layer], compression=""), tmp_path / "e2fs", "latest")
    with open_source(f"oci:{tmp_path / 'e2fs'}:latest") as src:
        cat = catalog(src.image())
    pkg = next(p for p in cat.packages if p.name == "e2fsprogs")
    assert "GPL" in pkg.licenses and len(pkg.licenses) == 5
    _validate_cyclonedx_and_spdx(cat, tmp_path)
    comp = next(
        c
        for c in json.loads(render(cat, "cyclonedx-json"))["components"]
        if c["name"] == "e2fsprogs"
    )
    named = [x["license"].get("name") or x["license"].get("id") for x in comp["licenses"]]
    assert sorted(named) == sorted(pkg.licenses)  # not valid SPDX together: each listed

    from cyclonedx.contrib.license.factories import LicenseFactory

    both = _licenses(("MIT", "Apache-2.0 OR MIT"), LicenseFactory())  # valid together: one
    assert len(both) == 1 and str(both[0].value) == "(MIT) AND (Apache-2.0 OR MIT)"


PLAIN_TARS = {
    "test-gzip-image.tar",
    "test-estargz-image.tar",
    "test-uncompressed-image.tar",
    "test-zstd-image.tar",
}  # the corpus's negative cases: tars that are not images


def _corpus_images() -> list[str]:
    from conftest import CORPORA

    dive = sorted(f"dive/{p.name}" for p in (CORPORA / "dive").glob("*.tar"))
    busybox = sorted(
        str(p.relative_to(CORPORA)) for p in (CORPORA / "rootfs" / "busybox").glob("*/*-oci.tar")
    )
    alpine = sorted(
        str(p.relative_to(CORPORA)) for p in (CORPORA / "rootfs" / "alpine").glob("*.tar.gz")
    )
    return dive + busybox + alpine


@pytest.mark.parametrize("name", _corpus_images())
def test_every_corpus_image_gives_schema_valid_sboms(name: str, tmp_path: Path) -> None:
    """Every image of the corpus (dive's archives and layouts, busybox's OCI archives, Alpine's
    root filesystems as one-layer images) gives CycloneDX and SPDX that the official validators
    accept."""
    from conftest import corpus

    from imagewise.errors import NotAnImage

    path = corpus(*name.split("/"))
    if path.name in PLAIN_TARS:
        with pytest.raises(NotAnImage):
            open_source(str(path)).image()
        return
    ref = str(path)
    if name.endswith("-oci.tar"):
        ref = f"oci-archive:{path}"
    elif name.endswith(".tar.gz"):  # a root filesystem: the layer of a one-layer image
        write_oci_layout(
            build_image([path.read_bytes()], compression=""), tmp_path / "img", "latest"
        )
        ref = f"oci:{tmp_path / 'img'}:latest"
    with open_source(ref) as src:
        cat = catalog(src.image())
    if "alpine" in name:
        assert sum(p.type == "apk" for p in cat.packages) > 10
    _validate_cyclonedx_and_spdx(cat, tmp_path)


def test_cli_remembers_the_local_layers_it_checked(tmp_path: Path) -> None:
    """``sbom`` of a local layout checks its plain layers against their digests and records the
    check in the cache directory (one ``file`` record a blob file), so a second run over the
    unchanged files need not hash them; ``--no-cache`` neither uses nor fills that record. The
    SBOM is the same either way."""
    import os
    import time

    from imagewise.cache import SETTLE_NS

    write_oci_layout(apps_image(compression=""), tmp_path / "apps", "latest")
    time.sleep(SETTLE_NS / 1e9 + 0.1)  # older than the settling time: its check is remembered
    ref = f"oci:{tmp_path / 'apps'}:latest"

    def sbom(cache: Path, *extra: str) -> dict[str, object]:
        r = subprocess.run(
            [sys.executable, "-m", "imagewise", "sbom", ref, "-f", "json", *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "IMAGEWISE_CACHE_DIR": str(cache)},
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    plain = sbom(tmp_path / "none", "--no-cache")
    assert not (tmp_path / "none").exists()
    assert sbom(tmp_path / "cache") == plain
    records = list((tmp_path / "cache").glob("*/files/*"))
    layers = json.loads(
        (tmp_path / "apps" / "blobs" / "sha256" / _manifest_hex(tmp_path / "apps")).read_text()
    )["layers"]
    assert len(records) == len(layers) > 0
    assert sbom(tmp_path / "cache") == plain
    assert len(list((tmp_path / "cache").glob("*/files/*"))) == len(layers)


def _manifest_hex(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])[7:]


def test_table_lines_up_every_package_on_one_line(catalogs: dict[str, Catalog]) -> None:
    for cat in catalogs.values():
        text = render(cat, "table")
        lines = text.splitlines()
        assert lines[0].split() == ["NAME", "VERSION", "TYPE", "LAYER", "BASE"]
        assert lines[-1].startswith(f"{len(cat.packages)} packages; ")
        rows = lines[1:-1]
        assert len(rows) == len(cat.packages)  # one line a package, in catalog order
        starts = [lines[0].index(h) for h in ("VERSION", "TYPE", "LAYER")]
        for row, p in zip(rows, cat.packages, strict=True):
            assert row.startswith(p.name + " ") and not row.endswith(" ")
            assert row[starts[0] :].startswith(p.version + " ")  # columns line up
            assert row[starts[1] :].startswith(p.type)


def test_aligned_counts_terminal_cells() -> None:
    from imagewise.textsafe import aligned

    rows = [("NAME", "V"), ("漢字", "1"), ("e\u0301", "2"), ("a-very-long-name", "3")]
    lines = aligned(rows).splitlines()
    # the second column starts at cell 18 on every line: wide characters take two cells, a
    # combining accent none, and the longest name is never cut or wrapped
    assert lines == [
        "NAME              V",
        "漢字              1",
        "e\u0301                 2",
        "a-very-long-name  3",
    ]
    assert aligned([]) == ""
