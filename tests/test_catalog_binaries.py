"""Binary and archive evidence: Go build info (inline and pointer formats), Java archives with
nesting, zipped Python eggs, and the SQLite rpmdb written by the real ``rpm`` tool."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fixtures_images import TarFile, build_image, tar_bytes, write_oci_layout
from sbom_images import catalog_layers, go_binary, jar_bytes, our_purls, syft_purls, with_dirs

from imagewise.sbom.catalogers.base import FileInfo
from imagewise.sbom.catalogers.golang import (
    MAGIC,
    find_build_info,
    packages_from_build_info,
    parse_go_binary,
)
from imagewise.sbom.catalogers.java import parse_java_archive, split_filename
from imagewise.sbom.catalogers.python import parse_egg_zip
from imagewise.sbom.catalogers.rpm import HeaderError, parse_header


def _parse_file(parser, path: Path, mode: int = 0o755):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        return parser(FileInfo(path.name, path.stat().st_size, mode), f)


# -- Go ------------------------------------------------------------------------------------------


def test_go_binary_inline_build_info() -> None:
    parsed = _parse_file(parse_go_binary, go_binary())
    names = {p.name: p for p in parsed.packages}
    main = names["github.com/wagoodman/dive"]
    assert main.metadata["main"] is True and main.version.startswith("v0.13")
    stdlib = names["stdlib"]
    assert stdlib.version.startswith("go1.") and stdlib.licenses == ("BSD-3-Clause",)
    assert len(parsed.packages) > 20 and all(p.type == "golang" for p in parsed.packages)


def _elf_with_pointer_build_info(version: str, mod: str) -> bytes:
    """A minimal little-endian ELF64 whose one PT_LOAD maps file offset 0 at 0x400000, with a
    pre-Go-1.18 (pointer format) build info header pointing at Go string headers."""
    base = 0x400000
    body = bytearray(0x1000)
    body[0:4] = b"\x7fELF"
    body[4], body[5], body[6] = 2, 1, 1  # 64-bit, little-endian, version
    struct.pack_into("<HHIQQQIHHHHHH", body, 16, 2, 62, 1, base, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    strings_at = 0x200
    sentinel = b"0123456789abcdef"
    mod_bytes = sentinel + mod.encode() + sentinel
    ver_off, mod_off = strings_at, strings_at + 0x100
    body[ver_off : ver_off + len(version)] = version.encode()
    body[mod_off : mod_off + len(mod_bytes)] = mod_bytes
    hdr_at = 0x800
    vhdr, mhdr = hdr_at + 0x40, hdr_at + 0x60
    struct.pack_into("<QQ", body, vhdr, base + ver_off, len(version))
    struct.pack_into("<QQ", body, mhdr, base + mod_off, len(mod_bytes))
    header = MAGIC + bytes([8, 0]) + struct.pack("<QQ", base + vhdr, base + mhdr)
    body[hdr_at : hdr_at + len(header)] = header
    struct.pack_into("<IIQQQQQQ", body, 64, 1, 5, 0, base, base, len(body), len(body), 0x1000)
    return bytes(body)


def test_go_pointer_format_build_info() -> None:
    mod = (
        "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n"
        "dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n"
        "dep\texample.com/old\tv1.0.0\t\n=>\texample.com/new\tv1.2.0\th1:def=\n"
        "build\tvcs.revision=0123456789abcdef0123\nbuild\tvcs.time=2021-03-04T05:06:07Z\n"
        "build\tvcs.modified=true\n"
    )
    # the module string is only unwrapped when the sentinel layout matches ("\n" at -17)
    data = _elf_with_pointer_build_info("go1.16.15", mod)
    found = find_build_info(io.BytesIO(data))
    assert found is not None and found[0] == "go1.16.15"
    pkgs = {p.name: p.version for p in packages_from_build_info(*found)}
    assert pkgs == {
        "example.com/app": "v0.0.0-20210304050607-0123456789ab+dirty",
        "golang.org/x/sys": "v0.1.0",
        "example.com/new": "v1.2.0",
        "stdlib": "go1.16.15",
    }


def test_go_ldflags_version_and_non_go_files() -> None:
    mod = 'path\tex.com/t\nmod\tex.com/t\t(devel)\t\nbuild\t-ldflags="-s -X main.version=1.4.2"\n'
    pkgs = packages_from_build_info("go1.22.0 X:boringcrypto", mod)
    assert [(p.name, p.version) for p in pkgs] == [("ex.com/t", "v1.4.2"), ("stdlib", "go1.22.0")]
    ls = Path(shutil.which("ls") or "/bin/ls")
    assert _parse_file(parse_go_binary, ls).packages == ()  # an ELF without Go build info
    script = parse_go_binary(FileInfo("run.sh", 5000, 0o755), io.BytesIO(b"#!/bin/sh\n" * 500))
    assert script.packages == () and not script.skipped


class _ReadOnce(io.RawIOBase):
    """A stream that cannot seek (a layer decompressed on the fly)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._data.readinto(b)


def _inline_build_info(version: str, mod: str) -> bytes:
    """A Go 1.18+ build info header with its strings inline (uvarint lengths)."""
    sentinel = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
    out = bytearray(MAGIC + bytes([8, 2]) + bytes(16))
    for text in (version.encode(), sentinel + mod.encode() + sentinel):
        n = len(text)
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out += bytes([n]) + text
    return bytes(out)


def _elf64(
    size: int,
    blobs: dict[int, bytes],
    sections: dict[bytes, tuple[int, int]],
    segments: list[tuple[int, int, int]],
) -> bytes:
    """A little-endian ELF64 of ``size`` bytes: ``blobs`` at their offsets, program headers
    (type, flags, offset; each 0x1000 long) after the header, and, when ``sections`` (name:
    offset, size) is given, a section table (with its name table) at the end."""
    body = bytearray(size)
    for at, blob in blobs.items():
        body[at : at + len(blob)] = blob
    names = b"\0" + b"".join(n + b"\0" for n in sections) + b".shstrtab\0"
    table = bytearray(64)  # section 0 is the null section
    at = 1
    for name, (offset, length) in sections.items():
        table += struct.pack("<IIQQQQIIQQ", at, 1, 3, 0, offset, length, 0, 0, 16, 0)
        at += len(name) + 1
    shoff = 0
    if sections:
        body += names
        table += struct.pack("<IIQQQQIIQQ", at, 3, 0, 0, size, len(names), 0, 0, 1, 0)
        shoff = len(body)
        body += table
    count = len(table) // 64 if sections else 0
    body[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into(
        "<HHIQQQIHHHHHH",
        body,
        16,
        2,
        62,
        1,
        0,
        64,
        shoff,
        0,
        64,
        56,
        len(segments),
        64,
        count,
        count - 1 if count else 0,
    )
    for k, (kind, flags, offset) in enumerate(segments):
        struct.pack_into(
            "<IIQQQQQQ",
            body,
            64 + 56 * k,
            kind,
            flags,
            offset,
            offset,
            offset,
            0x1000,
            0x1000,
            0x1000,
        )
    return bytes(body)


def _go_both_ways(data: bytes) -> Any:
    """parse_go_binary over a seekable stream and over one read once, which must agree."""
    info = FileInfo("app", len(data), 0o755)
    seekable, once = parse_go_binary(info, io.BytesIO(data)), parse_go_binary(info, _ReadOnce(data))
    assert seekable == once
    return seekable


def _versions(parsed: Any) -> set[str]:
    return {p.version for p in parsed.packages if p.name == "stdlib"}


def test_go_build_info_is_read_where_go_looks_for_it() -> None:
    """As Go's debug/buildinfo: an ELF's ``.go.buildinfo`` section, else its first writable,
    not executable segment; a header elsewhere (the magic as a constant in the code) is not
    taken. A seekable stream reads only there; one read once gives the same answers."""
    real = _inline_build_info("go1.22.1", "path\tex.com/real\nmod\tex.com/real\tv1.0.0\t\n")
    decoy = _inline_build_info("go1.0.1", "path\tex.com/decoy\nmod\tex.com/decoy\tv0.0.1\t\n")
    rx, rw = 5, 6  # PF_R|PF_X, PF_R|PF_W
    sections = {b".text": (0x1000, 0x1000), b".go.buildinfo": (0x3000, 0x100)}
    named = _elf64(0x5000, {0x1000: decoy, 0x3000: real}, sections, [(1, rx, 0x1000)])
    assert _versions(_go_both_ways(named)) == {"go1.22.1"}
    # no section named: the writable data segment (PT_LOAD), not an executable one or a note
    segments = [(1, rx, 0x1000), (4, rw, 0x2000), (1, rw | 1, 0x3000), (1, rw, 0x4000)]
    blobs = {0x1000: decoy, 0x2000: decoy, 0x3000: decoy, 0x4000: real}
    assert _versions(_go_both_ways(_elf64(0x5000, blobs, {}, segments))) == {"go1.22.1"}
    other = _elf64(0x5000, {0x1000: decoy}, {b".text": (0x1000, 0x1000)}, segments)
    assert _go_both_ways(other).packages == ()  # only in code: not a Go build info
    # neither a section nor a writable segment: the whole file is searched
    bare = _elf64(0x5000, {0x2000: real}, {}, [(1, rx, 0x1000)])
    assert _versions(_go_both_ways(bare)) == {"go1.22.1"}


def test_go_real_binaries_read_seekable_or_once_alike() -> None:
    assert len(_go_both_ways(go_binary().read_bytes()).packages) > 20
    assert _go_both_ways(Path(shutil.which("ls") or "/bin/ls").read_bytes()).packages == ()


# -- Java ----------------------------------------------------------------------------------------


def test_java_nested_archives_and_manifest_only(tmp_path: Path) -> None:
    inner = jar_bytes("org.slf4j", "slf4j-api", "2.0.9")
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as z:  # no pom.properties: name/version from file + manifest
        z.writestr(
            "META-INF/MANIFEST.MF",
            "Manifest-Version: 1.0\r\nImplementation-Version: 9.9\r\n"
            "Bundle-SymbolicName: org.example.tool\r\n\r\n",
        )
    war = jar_bytes(
        "com.example",
        "shop",
        "1.0.0",
        {
            "WEB-INF/lib/slf4j-api-2.0.9.jar": inner,
            "WEB-INF/lib/tool-9.9.jar": plain.getvalue(),
        },
    )
    ear = io.BytesIO()
    with zipfile.ZipFile(ear, "w") as z:
        z.writestr("shop.war", war)
    path = tmp_path / "bundle-3.1.ear"
    path.write_bytes(ear.getvalue())
    parsed = _parse_file(parse_java_archive, path, 0o644)
    got = {(p.metadata["group"], p.name, p.version) for p in parsed.packages}
    assert got == {
        ("", "bundle", "3.1"),
        ("com.example", "shop", "1.0.0"),
        ("org.slf4j", "slf4j-api", "2.0.9"),
        ("org.example.tool", "tool", "9.9"),
    }
    assert split_filename("commons-lang3-3.13.0.jar") == ("commons-lang3", "3.13.0")
    assert split_filename("jsr305-0.1~+svn49.jar") == ("jsr305", "0.1~+svn49")
    assert split_filename("app.jar") == ("app", "")
    # the same archive read in place from a layer (seekable), and from a stream read once
    from layers_support import make_tar, member

    from imagewise.archive import walk as walk_mod
    from imagewise.archive.batch import EntryBatch

    data = path.read_bytes()
    layer = make_tar([member("x", data=b"pad" * 99), member("app/bundle-3.1.ear", data=data)])
    if walk_mod.NATIVE_SCAN is not None:  # (the batches need the C scanner)
        (batch,) = [i for i in walk_mod.walk_batches(layer) if type(i) is EntryBatch]
        info = FileInfo(path.name, len(data), 0o644)
        in_place = parse_java_archive(info, batch.entry(1).open())
        assert in_place == parse_java_archive(info, _ReadOnce(data)) == parsed


def _zip(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in entries.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("filename", "entries", "expected"),
    [
        # a pom.properties whose artifactId starts with the file's name is the archive itself
        (
            "geronimo-annotation-1.3-spec.jar",
            {
                "META-INF/maven/org.apache.geronimo.specs/geronimo-annotation_1.3_spec/pom.properties": "groupId=org.apache.geronimo.specs\nartifactId=geronimo-annotation_1.3_spec\nversion=1.0\n"
            },
            {("org.apache.geronimo.specs", "geronimo-annotation_1.3_spec", "1.0")},
        ),
        # the file name's version wins over the manifest's
        (
            "kotlin-stdlib-1.9.10.jar",
            {
                "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nImplementation-Version: 1.9.10-release-459\r\n"
            },
            {("", "kotlin-stdlib", "1.9.10")},
        ),
        # Debian-style unversioned file: manifest version; an unrelated pom is a separate package
        (
            "guice.jar",
            {
                "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nBundle-SymbolicName: com.google.inject\r\n"
                "Bundle-Version: 4.2.3\r\n",
                "META-INF/maven/cglib/cglib/pom.properties": "groupId=cglib\nartifactId=cglib\nversion=3.2.12\n",
            },
            {("com.google.inject", "guice", "4.2.3"), ("cglib", "cglib", "3.2.12")},
        ),
        # no version anywhere: reported as UNKNOWN (as syft does), not dropped
        (
            "gettext.jar",
            {"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\n"},
            {("", "gettext", "UNKNOWN")},
        ),
    ],
)
def test_java_naming_rules(
    tmp_path: Path, filename: str, entries: dict[str, str], expected: set[tuple[str, str, str]]
) -> None:
    path = tmp_path / filename
    path.write_bytes(_zip(entries))
    parsed = _parse_file(parse_java_archive, path, 0o644)
    assert {(p.metadata["group"], p.name, p.version) for p in parsed.packages} == expected


def test_python_zipped_egg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "EGG-INFO/PKG-INFO",
            "Metadata-Version: 1.1\nName: Old_Thing\nVersion: 0.9\nLicense: BSD\n",
        )
    path = tmp_path / "Old_Thing-0.9-py2.7.egg"
    path.write_bytes(buf.getvalue())
    (pkg,) = _parse_file(parse_egg_zip, path, 0o644).packages
    assert (pkg.name, pkg.version, pkg.licenses) == ("old-thing", "0.9", ("BSD",))


# -- RPM -----------------------------------------------------------------------------------------

SPEC = """Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: imagewise test package
License: {license}
BuildArch: x86_64
%description
test
%files
"""


def _rpm_tools() -> None:
    if not (shutil.which("rpm") and shutil.which("rpmbuild")):
        msg = "rpm and rpmbuild (Debian package 'rpm') are needed to write a real rpmdb"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _rpmdb(tmp_path: Path) -> bytes:
    """A real SQLite rpmdb written by rpm itself with three packages."""
    _rpm_tools()
    top, db = tmp_path / "top", tmp_path / "db"
    db.mkdir()
    rpms = []
    for name, version, release, epoch, lic in [
        ("hello-iw", "1.2.3", "4.fc40", "Epoch: 2\n", "MIT AND (BSD-3-Clause OR GPL-2.0-or-later)"),
        ("bash-iw", "5.2.26", "3.fc40", "", "GPL-3.0-or-later"),
        ("libfoo-iw", "0.1", "1.fc40", "", "LGPL-2.1-only"),
    ]:
        spec = tmp_path / f"{name}.spec"
        spec.write_text(
            SPEC.format(name=name, version=version, release=release, epoch=epoch, license=lic)
        )
        subprocess.run(
            [
                "rpmbuild",
                "--quiet",
                "-bb",
                "--define",
                f"_topdir {top}",
                "--define",
                "_build_id_links none",
                str(spec),
            ],
            check=True,
            capture_output=True,
        )
        rpms.append(next((top / "RPMS" / "x86_64").glob(f"{name}-*.rpm")))
    common = ["rpm", "--dbpath", str(db), "--define", "_db_backend sqlite"]
    subprocess.run([*common, "--initdb"], check=True, capture_output=True)
    subprocess.run(
        [*common, "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos", *map(str, rpms)],
        check=True,
        capture_output=True,
    )
    return (db / "rpmdb.sqlite").read_bytes()


def test_rpm_sqlite_db_agrees_with_syft(tmp_path: Path) -> None:
    layer = tar_bytes(
        with_dirs(
            {
                "etc/os-release": b'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n',
                "usr/lib/sysimage/rpm/rpmdb.sqlite": _rpmdb(tmp_path),
                "var/lib/rpm": TarFile(kind="symlink", linkname="../../usr/lib/sysimage/rpm"),
            }
        )
    )
    write_oci_layout(build_image([layer], compression=""), tmp_path / "fedora", "t")
    ours = our_purls(f"oci:{tmp_path / 'fedora'}:t")
    assert ours[("rpm", "hello-iw", "2:1.2.3-4.fc40")] == (
        "pkg:rpm/fedora/hello-iw@1.2.3-4.fc40?arch=x86_64&distro=fedora-40&epoch=2"
        "&upstream=hello-iw-1.2.3-4.fc40.src.rpm"
    )
    assert {k for k in ours if k[0] == "rpm"} == {
        ("rpm", "hello-iw", "2:1.2.3-4.fc40"),
        ("rpm", "bash-iw", "5.2.26-3.fc40"),
        ("rpm", "libfoo-iw", "0.1-1.fc40"),
    }
    theirs = syft_purls(f"oci-dir:{tmp_path / 'fedora'}")
    assert {k: v for k, v in ours.items() if k[0] == "rpm"} == theirs


def test_rpm_header_rejects_garbage() -> None:
    with pytest.raises(HeaderError):
        parse_header(b"\0\0\0\x05\0\0\0\x10")  # claims 5 entries in 8 bytes
    with pytest.raises(HeaderError):
        parse_header(b"abc")


def test_go_inline_build_info_in_a_windows_exe(tmp_path: Path) -> None:
    """Inline (Go 1.18+) build info is found in any container format; .exe is selected without
    an x bit."""
    sentinel = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
    mod = b"path\tex.com/win\nmod\tex.com/win\tv2.0.1\th1:x=\ndep\tgolang.org/x/text\tv0.14.0\th1:y=\n"
    mod = sentinel + mod + sentinel
    version = b"go1.21.5"

    def uvarint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out + bytes([n]))

    header = MAGIC + bytes([8, 2]) + b"\0" * 16
    body = (
        b"MZ"
        + b"\0" * (0x2000 - 2)
        + header
        + uvarint(len(version))
        + version
        + uvarint(len(mod))
        + mod
        + b"\0" * 4096
    )
    layer = tar_bytes({"app/win.exe": TarFile(body, mode=0o644)})
    cat = catalog_layers(tmp_path, [layer])
    assert {(p.name, p.version, p.purl) for p in cat.packages} == {
        ("ex.com/win", "v2.0.1", "pkg:golang/ex.com/win@v2.0.1"),
        ("golang.org/x/text", "v0.14.0", "pkg:golang/golang.org/x/text@v0.14.0"),
        ("stdlib", "go1.21.5", "pkg:golang/stdlib@1.21.5"),
    }


def _pe_with_pointer_build_info(version: str, mod: str) -> bytes:
    """A minimal PE32+ with one section (file 0x400 -> VA ImageBase+0x1000) holding a
    pointer-format build info header, Go string headers and the strings."""
    image_base, va, raw = 0x140000000, 0x1000, 0x400
    body = bytearray(raw + 0x1000)
    body[0:2] = b"MZ"
    struct.pack_into("<I", body, 0x3C, 0x80)
    body[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", body, 0x84, 0x8664, 1, 0, 0, 0, 240, 0x22)
    struct.pack_into("<H", body, 0x98, 0x20B)
    struct.pack_into("<Q", body, 0x98 + 24, image_base)
    sect = 0x98 + 240
    body[sect : sect + 8] = b".data\0\0\0"
    struct.pack_into("<IIII", body, sect + 8, 0x1000, va, 0x1000, raw)

    def addr(off: int) -> int:  # file offset inside the section -> absolute address
        return image_base + va + off - raw

    sentinel = b"fedcba9876543210"
    mod_bytes = sentinel + mod.encode() + sentinel
    ver_off, mod_off, hdr_off = raw + 0x100, raw + 0x200, raw + 0x800
    body[ver_off : ver_off + len(version)] = version.encode()
    body[mod_off : mod_off + len(mod_bytes)] = mod_bytes
    vhdr, mhdr = hdr_off + 0x40, hdr_off + 0x60
    struct.pack_into("<QQ", body, vhdr, addr(ver_off), len(version))
    struct.pack_into("<QQ", body, mhdr, addr(mod_off), len(mod_bytes))
    header = MAGIC + bytes([8, 0]) + struct.pack("<QQ", addr(vhdr), addr(mhdr))
    body[hdr_off : hdr_off + len(header)] = header
    return bytes(body)


def test_go_pointer_format_in_pe() -> None:
    mod = "path\tex.com/old\nmod\tex.com/old\tv0.3.0\th1:z=\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:e=\n"
    found = find_build_info(io.BytesIO(_pe_with_pointer_build_info("go1.15.2", mod)))
    assert found is not None
    assert [(p.name, p.version) for p in packages_from_build_info(*found)] == [
        ("ex.com/old", "v0.3.0"),
        ("github.com/pkg/errors", "v0.9.1"),
        ("stdlib", "go1.15.2"),
    ]


def test_go_pointer_format_in_macho() -> None:
    base = 0x100000000
    body = bytearray(0x2000)
    struct.pack_into("<IiiIIII", body, 0, 0xFEEDFACF, 0x01000007, 3, 2, 1, 72, 0)
    struct.pack_into(
        "<II16sQQQQiiII", body, 32, 0x19, 72, b"__DATA", base, 0x2000, 0, 0x2000, 3, 3, 0, 0
    )
    version, mod = b"go1.17.13", b"path\tex.com/mac\nmod\tex.com/mac\tv1.0.0\t\n"
    body[0x300 : 0x300 + len(version)] = version
    body[0x400 : 0x400 + len(mod)] = mod
    struct.pack_into("<QQ", body, 0x1040, base + 0x300, len(version))
    struct.pack_into("<QQ", body, 0x1060, base + 0x400, len(mod))
    body[0x1000:0x1020] = MAGIC + bytes([8, 0]) + struct.pack("<QQ", base + 0x1040, base + 0x1060)
    found = find_build_info(io.BytesIO(bytes(body)))
    assert found == ("go1.17.13", mod.decode())  # no sentinels: the text is taken as is


@pytest.mark.parametrize(
    ("os_id", "namespace"), [("rhel", "redhat"), ("amzn", "amzn"), ("rocky", "rocky"), ("ol", "ol")]
)
def test_rpm_purl_namespace_per_distro(os_id: str, namespace: str) -> None:
    """syft 1.18.1 writes the os-release ID as namespace, except rhel -> redhat (checked by hand
    with syft on each ID)."""
    from imagewise.sbom.catalogers.base import Distro
    from imagewise.sbom.model import Package
    from imagewise.sbom.purl import purl_for

    pkg = Package(
        "bash",
        "5.1.8-9.el9",
        "rpm",
        metadata={"arch": "x86_64", "sourcerpm": "bash-5.1.8-9.el9.src.rpm"},
    )
    assert purl_for(pkg, Distro(os_id, "9.4")) == (
        f"pkg:rpm/{namespace}/bash@5.1.8-9.el9?arch=x86_64&distro={os_id}-9.4"
        "&upstream=bash-5.1.8-9.el9.src.rpm"
    )
