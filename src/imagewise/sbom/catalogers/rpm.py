"""RPM databases. The SQLite rpmdb of current Fedora/RHEL/Rocky/Alma/Amazon Linux 2023 is read
with the standard ``sqlite3`` module; each row's blob is an rpm header we decode ourselves.

Header blob layout (rpm ``lib/header.c``, as stored in the database, i.e. without the 8-byte
magic of a header in a package file)::

    int32 il        number of index entries (big-endian)
    int32 dl        size of the data store
    il x { int32 tag, int32 type, int32 offset, int32 count }
    dl bytes of data

The Berkeley DB (``Packages``) and NDB (``Packages.db``) formats are reported as skipped.
"""

from __future__ import annotations

import os
import struct
from typing import IO

from imagewise.sbom.catalogers.base import Cataloger, FileInfo, Parsed, split_licenses
from imagewise.sbom.model import Package

NAME, VERSION, RELEASE, EPOCH, SIZE, VENDOR, LICENSE, ARCH, SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1009,
    1011,
    1014,
    1022,
    1044,
)
MODULARITYLABEL = 5096
_WANTED = {NAME, VERSION, RELEASE, EPOCH, SIZE, VENDOR, LICENSE, ARCH, SOURCERPM, MODULARITYLABEL}
# rpm tag types
_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_MAX_ENTRIES = 1 << 16
_DB_LIMIT = 1 << 30


class HeaderError(ValueError):
    pass


def parse_header(blob: bytes) -> dict[int, object]:
    """The wanted tags of one header blob: ints for INT32 tags, str for string tags."""
    if len(blob) < 8:
        raise HeaderError("header shorter than 8 bytes")
    il, dl = struct.unpack_from(">ii", blob, 0)
    if not (0 < il <= _MAX_ENTRIES) or dl < 0 or 8 + il * 16 + dl > len(blob):
        raise HeaderError(f"implausible header sizes il={il} dl={dl} for {len(blob)} bytes")
    data_start = 8 + il * 16
    data = memoryview(blob)[data_start : data_start + dl]
    out: dict[int, object] = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack_from(">iiii", blob, 8 + i * 16)
        if tag not in _WANTED or offset < 0 or offset >= dl:
            continue
        if typ == _INT32:
            if offset + 4 * count > dl or count < 1:
                raise HeaderError(f"tag {tag} runs past the data store")
            out[tag] = struct.unpack_from(">i", data, offset)[0]
        elif typ in (_STRING, _I18NSTRING, _STRING_ARRAY):
            end = bytes(data[offset:]).find(b"\0")
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out[tag] = bytes(data[offset : offset + end]).decode("utf-8", "replace")
    return out


def package_from_header(tags: dict[int, object]) -> Package | None:
    name = str(tags.get(NAME, ""))
    if not name or name == "gpg-pubkey":  # imported signing keys, not software
        return None
    version, release = str(tags.get(VERSION, "")), str(tags.get(RELEASE, ""))
    epoch = tags.get(EPOCH)
    full = f"{version}-{release}" if release else version
    if isinstance(epoch, int):
        full = f"{epoch}:{full}"
    srpm = str(tags.get(SOURCERPM, ""))
    src_name = src_version = ""
    if srpm.endswith(".src.rpm"):
        stem = srpm[: -len(".src.rpm")]
        parts = stem.rsplit("-", 2)
        if len(parts) == 3:
            src_name, src_version = parts[0], f"{parts[1]}-{parts[2]}"
    return Package(
        name=name,
        version=full,
        type="rpm",
        licenses=split_licenses(str(tags.get(LICENSE, ""))) if tags.get(LICENSE) else (),
        source_name=src_name,
        source_version=src_version,
        metadata={
            "arch": str(tags.get(ARCH, "")),
            "epoch": epoch if isinstance(epoch, int) else None,
            "vendor": str(tags.get(VENDOR, "")),
            "sourcerpm": srpm,
            "modularity_label": str(tags.get(MODULARITYLABEL, "")),
        },
    )


def read_rpmdb_sqlite(path: str) -> tuple[list[Package], list[str]]:
    """Packages in an rpmdb.sqlite file, and per-row problems (skipped rows)."""
    import sqlite3  # not at the top: only an rpm-based image has this file

    packages: list[Package] = []
    problems: list[str] = []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as e:
        raise HeaderError(f"not a SQLite database: {e}") from e
    try:
        rows = con.execute("SELECT hnum, blob FROM Packages").fetchall()
    except sqlite3.Error as e:
        raise HeaderError(f"no Packages table: {e}") from e
    finally:
        con.close()
    for hnum, blob in rows:
        try:
            pkg = package_from_header(parse_header(bytes(blob)))
        except HeaderError as e:
            problems.append(f"header {hnum}: {e}")
            continue
        if pkg is not None:
            packages.append(pkg)
    return packages, problems


def parse_rpmdb_sqlite(info: FileInfo, stream: IO[bytes]) -> Parsed:
    import shutil
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="imagewise-rpmdb-", suffix=".sqlite")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        packages, problems = read_rpmdb_sqlite(tmp)
    except HeaderError as e:
        return Parsed(skipped=f"unreadable rpmdb: {e}")
    finally:
        os.unlink(tmp)
    skipped = f"{len(problems)} unreadable headers ({problems[0]})" if problems else ""
    return Parsed(tuple(packages), skipped=skipped)


def parse_rpmdb_legacy(info: FileInfo, stream: IO[bytes]) -> Parsed:
    kind = "NDB" if info.path.endswith("Packages.db") else "Berkeley DB"
    return Parsed(skipped=f"rpm {kind} database not supported (only the SQLite rpmdb is read)")


_RPM_DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/", "usr/share/rpm/")


def _in_rpm_dir(path: str, names: tuple[str, ...]) -> bool:
    """``{var/lib,usr/share,usr/lib/sysimage}/rpm/NAME`` at the root or in a nested root."""
    return any(path == d + n or path.endswith("/" + d + n) for d in _RPM_DIRS for n in names)


def _sqlite_selects(info: FileInfo) -> bool:
    return _in_rpm_dir(info.path, ("rpmdb.sqlite",))


def _legacy_selects(info: FileInfo) -> bool:
    return _in_rpm_dir(info.path, ("Packages", "Packages.db"))


CATALOGERS = (
    Cataloger(
        "rpm-db",
        ("rpm",),
        "RPM SQLite database (rpmdb.sqlite)",
        _sqlite_selects,
        parse_rpmdb_sqlite,
        _DB_LIMIT,
        endings=("/rpmdb.sqlite",),
    ),
    Cataloger(
        "rpm-db-legacy",
        (),
        "RPM Berkeley DB / NDB databases (reported as skipped)",
        _legacy_selects,
        parse_rpmdb_legacy,
        needs_content=False,
        endings=("/packages", "/packages.db"),
    ),
)
