"""OS package databases: apk (Alpine, Wolfi), dpkg (Debian, Ubuntu, distroless ``status.d``),
and the release files that name the distribution."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from imagewise.sbom.catalogers.base import (
    Cataloger,
    Distro,
    FileInfo,
    Parsed,
    exact,
    read_bounded,
    split_licenses,
)
from imagewise.sbom.model import Package

_DB_LIMIT = 64 << 20


# --- apk ----------------------------------------------------------------------------------------


def parse_apk_db(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """``lib/apk/db/installed``: blank-line separated records of ``K:value`` lines."""
    text = read_bounded(stream, _DB_LIMIT).decode("utf-8", "replace")
    packages: list[Package] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 1 and line[1] == ":" and line[0] not in fields:
                fields[line[0]] = line[2:].strip()
        name = fields.get("P", "")
        if not name:
            continue
        origin = fields.get("o", "")
        packages.append(
            Package(
                name=name,
                version=fields.get("V", ""),
                type="apk",
                licenses=split_licenses(fields.get("L", "")),
                source_name=origin if origin else "",
                metadata={
                    "arch": fields.get("A", ""),
                    "origin": origin,
                    "maintainer": fields.get("m", ""),
                    "url": fields.get("U", ""),
                    "description": fields.get("T", ""),
                    "commit": fields.get("c", ""),
                },
            )
        )
    return Parsed(tuple(packages))


# --- dpkg ---------------------------------------------------------------------------------------


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    """RFC 822-style paragraphs of ``Field: value`` with continuation lines."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


_SOURCE = re.compile(r"^\s*(\S+)(?:\s*\((\S+)\))?")
_NOT_INSTALLED = {"not-installed", "config-files"}


def parse_dpkg_status(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """``var/lib/dpkg/status`` or one file of distroless ``var/lib/dpkg/status.d/``."""
    text = read_bounded(stream, _DB_LIMIT).decode("utf-8", "replace")
    packages: list[Package] = []
    for f in _stanzas(text):
        name = f.get("Package", "")
        if not name:
            continue
        status = f.get("Status", "").split()
        if len(status) == 3 and status[2] in _NOT_INSTALLED:
            continue
        version = f.get("Version", "")
        src_name, src_version = "", ""
        m = _SOURCE.match(f.get("Source", ""))
        if m:
            src_name, src_version = m.group(1), m.group(2) or ""
        packages.append(
            Package(
                name=name,
                version=version,
                type="deb",
                licenses=split_licenses(f.get("License", "")),  # opkg has it; dpkg via copyright
                source_name=src_name,
                source_version=src_version,
                metadata={
                    "arch": f.get("Architecture", ""),
                    "maintainer": f.get("Maintainer", ""),
                    "installed_size": f.get("Installed-Size", ""),
                },
            )
        )
    return Parsed(tuple(packages))


def _apk_selects(info: FileInfo) -> bool:
    """``lib/apk/db/installed`` at the root, under ``usr/`` or in a nested root (as syft's glob)."""
    return info.path == "lib/apk/db/installed" or info.path.endswith("/lib/apk/db/installed")


def _dpkg_selects(info: FileInfo) -> bool:
    p = info.path
    if p.endswith(("var/lib/dpkg/status", "lib/opkg/status")) and (
        p in ("var/lib/dpkg/status", "usr/lib/opkg/status", "var/lib/opkg/status")
        or p.endswith(("/var/lib/dpkg/status", "/lib/opkg/status"))
    ):
        return True
    if p.startswith("var/lib/dpkg/status.d/"):
        name = p[len("var/lib/dpkg/status.d/") :]
        return "/" not in name and not name.endswith((".md5sums", ".list", ".conffiles"))
    return False


_LICENSE_LINE = re.compile(r"^License:\s*(\S+)", re.MULTILINE)
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([0-9A-Za-z_.+\-]+)")


def parse_deb_copyright(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """``usr/share/doc/PKG/copyright``: the first token of each DEP-5 ``License:`` field and the
    ``/usr/share/common-licenses/NAME`` files the text points to (syft reads them the same way).
    Yields a license-only record the catalog attaches to the deb package ``PKG``."""
    text = read_bounded(stream, 4 << 20).decode("utf-8", "replace")
    licenses: list[str] = []
    for m in _LICENSE_LINE.finditer(text):
        value = m.group(1).strip().rstrip(",;")
        if value and value not in licenses:
            licenses.append(value)
    for m in _COMMON_LICENSE.finditer(text):
        value = m.group(1).rstrip(".")
        if value and value not in licenses:
            licenses.append(value)
    pkg = info.path.split("/")[3]
    return Parsed((Package(name=pkg, version="", type="deb-copyright", licenses=tuple(licenses)),))


def _copyright_selects(info: FileInfo) -> bool:
    p = info.path
    return p.startswith("usr/share/doc/") and p.endswith("/copyright") and p.count("/") == 4


# --- release files ------------------------------------------------------------------------------


def parse_os_release(info: FileInfo, stream: IO[bytes]) -> Parsed:
    text = read_bounded(stream, 1 << 20).decode("utf-8", "replace")
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("'\"")
    if not values.get("ID"):
        return Parsed(skipped="os-release without ID")
    distro = Distro(
        id=values["ID"].lower(),
        version_id=values.get("VERSION_ID", ""),
        name=values.get("NAME", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
        version_codename=values.get("VERSION_CODENAME", ""),
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )
    return Parsed(distro=distro, distro_rank=3 if info.path == "etc/os-release" else 2)


def parse_alpine_release(info: FileInfo, stream: IO[bytes]) -> Parsed:
    version = read_bounded(stream, 4096).decode("utf-8", "replace").strip()
    return Parsed(distro=Distro("alpine", version, "Alpine Linux"), distro_rank=1)


def parse_debian_version(info: FileInfo, stream: IO[bytes]) -> Parsed:
    version = read_bounded(stream, 4096).decode("utf-8", "replace").strip()
    major = version.split(".")[0]
    return Parsed(
        distro=Distro("debian", major if major.isdigit() else version, "Debian GNU/Linux"),
        distro_rank=1,
    )


CATALOGERS = (
    Cataloger(
        "apk-db",
        ("apk",),
        "Alpine/Wolfi installed database lib/apk/db/installed",
        _apk_selects,
        parse_apk_db,
        _DB_LIMIT,
        endings=("/installed",),
    ),
    Cataloger(
        "dpkg-db",
        ("deb",),
        "dpkg status database, distroless status.d, opkg status",
        _dpkg_selects,
        parse_dpkg_status,
        _DB_LIMIT,
        endings=("/status",),
        prefixes=("var/lib/dpkg/status.d/",),
    ),
    Cataloger(
        "deb-copyright",
        (),
        "licenses of deb packages from usr/share/doc/*/copyright",
        _copyright_selects,
        parse_deb_copyright,
        4 << 20,
        endings=("/copyright",),
    ),
    Cataloger(
        "os-release",
        (),
        "distribution from etc/os-release, usr/lib/os-release",
        exact("etc/os-release", "usr/lib/os-release"),
        parse_os_release,
        1 << 20,
        endings=("/os-release",),
    ),
    Cataloger(
        "alpine-release",
        (),
        "etc/alpine-release",
        exact("etc/alpine-release"),
        parse_alpine_release,
        4096,
        endings=("/alpine-release",),
    ),
    Cataloger(
        "debian-version",
        (),
        "etc/debian_version",
        exact("etc/debian_version"),
        parse_debian_version,
        4096,
        endings=("/debian_version",),
    ),
)
