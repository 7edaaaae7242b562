"""Go binaries: the module build info the Go linker embeds (``\\xff Go buildinf:``), read from
ELF, PE and Mach-O executables without running them.

The 32-byte header is 16-byte aligned in the file. Byte 14 is the pointer size, byte 15 flags:
bit 1 (``0x2``) means the version and module strings follow the header inline, each prefixed by
its uvarint length (Go 1.18+); otherwise two pointers (at offsets 16 and 16+ptrsize) locate Go
string headers ``{data, len}`` in the binary's address space (bit 0 = big-endian), which we map
to file offsets through the ELF program headers, the PE section table or the Mach-O segments. The module string is wrapped in 16-byte
sentinels that are removed.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from typing import IO

from imagewise.sbom.catalogers.base import Cataloger, FileInfo, Parsed, seekable
from imagewise.sbom.model import Package

MAGIC = b"\xff Go buildinf:"
_SECTION = b".go.buildinfo\x00"
_CHUNK = 4 << 20
_SPOOL_IN_MEMORY = 64 << 20
_BINARY_LIMIT = 2 << 30
_EXEC_MAGICS = (
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)


class BuildInfoError(ValueError):
    pass


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf):
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise BuildInfoError("bad varint in build info")


def _strip_sentinels(mod: str) -> str:
    if len(mod) >= 33 and mod[-17] == "\n":
        return mod[16:-16]
    return mod


Mapper = Callable[[int], int]


def _range_mapper(ranges: list[tuple[int, int, int]]) -> Mapper:
    """vaddr -> file offset over (vaddr, file offset, size) ranges."""

    def to_offset(addr: int) -> int:
        for vaddr, off, size in ranges:
            if vaddr <= addr < vaddr + size:
                return off + addr - vaddr
        raise BuildInfoError(f"address {addr:#x} not in any mapped section")

    return to_offset


def _elf_mapper(f: IO[bytes], ident: bytes) -> Mapper:
    """From the ELF program headers (PT_LOAD segments)."""
    loads = [(va, off, size) for kind, _, off, va, size in _elf_segments(f, ident) if kind == 1]
    return _range_mapper(loads)


def _pe_mapper(f: IO[bytes], ident: bytes) -> Mapper:
    """From the PE section table; Go's pointers are absolute (ImageBase + RVA)."""
    (pe,) = struct.unpack_from("<I", ident, 0x3C)
    f.seek(pe)
    head = f.read(24 + 240)
    if head[:4] != b"PE\0\0":
        raise BuildInfoError("MZ file without a PE header")
    (nsect,) = struct.unpack_from("<H", head, 6)
    (opt_size,) = struct.unpack_from("<H", head, 20)
    (magic,) = struct.unpack_from("<H", head, 24)
    base = (
        struct.unpack_from("<Q", head, 24 + 24)[0]
        if magic == 0x20B
        else struct.unpack_from("<I", head, 24 + 28)[0]
    )
    f.seek(pe + 24 + opt_size)
    table = f.read(40 * nsect)
    ranges = []
    for i in range(nsect):
        vsize, va, raw_size, raw_ptr = struct.unpack_from("<IIII", table, i * 40 + 8)
        ranges.append((int(base) + va, raw_ptr, min(vsize or raw_size, raw_size)))
    return _range_mapper(ranges)


def _macho_mapper(f: IO[bytes], ident: bytes) -> Mapper:
    """From the Mach-O segment load commands."""
    e = "<" if ident[:4] in (b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe") else ">"
    is64 = ident[:4] in (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
    ncmds, sizeofcmds = struct.unpack_from(e + "II", ident, 16)
    f.seek(32 if is64 else 28)
    cmds = f.read(sizeofcmds)
    ranges = []
    pos = 0
    for _ in range(ncmds):
        cmd, size = struct.unpack_from(e + "II", cmds, pos)
        if cmd == 0x19:  # LC_SEGMENT_64
            vmaddr, _vmsize, fileoff, filesize = struct.unpack_from(e + "QQQQ", cmds, pos + 24)
            ranges.append((int(vmaddr), int(fileoff), int(filesize)))
        elif cmd == 0x1:  # LC_SEGMENT
            vmaddr, _vmsize, fileoff, filesize = struct.unpack_from(e + "IIII", cmds, pos + 24)
            ranges.append((int(vmaddr), int(fileoff), int(filesize)))
        pos += max(size, 8)
    return _range_mapper(ranges)


def _mapper(f: IO[bytes]) -> Mapper:
    f.seek(0)
    ident = f.read(64)
    if ident[:4] == b"\x7fELF":
        return _elf_mapper(f, ident)
    if ident[:2] == b"MZ":
        return _pe_mapper(f, ident)
    if ident[:4] in _EXEC_MAGICS[2:]:
        return _macho_mapper(f, ident)
    raise BuildInfoError("pointer-format build info in a file that is not ELF, PE or Mach-O")


def _read_pointer_format(f: IO[bytes], header: bytes) -> tuple[str, str]:
    ptr_size = header[14]
    if ptr_size not in (4, 8):
        raise BuildInfoError(f"bad pointer size {ptr_size}")
    to_offset = _mapper(f)
    e = ">" if header[15] & 1 else "<"
    fmt = e + ("Q" if ptr_size == 8 else "I")

    def read_string(ptr: int) -> str:
        f.seek(to_offset(ptr))
        hdr = f.read(2 * ptr_size)
        (data_ptr,) = struct.unpack_from(fmt, hdr, 0)
        (length,) = struct.unpack_from(fmt, hdr, ptr_size)
        if length > 1 << 22:
            raise BuildInfoError("implausible string length in build info")
        f.seek(to_offset(data_ptr))
        return f.read(length).decode("utf-8", "replace")

    (version_ptr,) = struct.unpack_from(fmt, header, 16)
    (mod_ptr,) = struct.unpack_from(fmt, header, 16 + ptr_size)
    return read_string(version_ptr), read_string(mod_ptr)


def find_build_info(f: IO[bytes], start: int = 0, end: int | None = None) -> tuple[str, str] | None:
    """(go version, module info text) of a seekable binary, or None when it has no build info.
    The search covers ``start`` (a file offset known to precede the first candidate header)
    up to ``end`` (``None``: the end of the file)."""
    pos = max(0, start - start % 16)
    f.seek(pos)
    tail = b""
    while True:
        chunk = f.read(_CHUNK if end is None else max(0, min(_CHUNK, end - pos)))
        if not chunk:
            return None
        buf = tail + chunk
        base = pos - len(tail)
        start = 0
        while True:
            i = buf.find(MAGIC, start)
            if i < 0:
                break
            if (base + i) % 16 == 0:
                f.seek(base + i)
                header = f.read(32 + 2 * 1024 * 1024)
                if header[15] & 2:
                    version_len, p = _uvarint(header, 32)
                    version = header[p : p + version_len].decode("utf-8", "replace")
                    mod_len, p = _uvarint(header, p + version_len)
                    if mod_len > len(header) - p:
                        f.seek(base + i + p)
                        mod = f.read(mod_len).decode("utf-8", "replace")
                    else:
                        mod = header[p : p + mod_len].decode("utf-8", "replace")
                else:
                    version, mod = _read_pointer_format(f, header[:32])
                return version, _strip_sentinels(mod)
            start = i + 1
        pos += len(chunk)
        tail = buf[-(len(MAGIC) - 1) :]
        f.seek(pos)


_LDFLAGS_VERSION = re.compile(
    r"-X[= ]?['\"]?\S*?[./](?:[vV]ersion|gitVersion|gitTag|tag)=['\"]?"
    r"(v?\d+\.\d+\.\d+[0-9A-Za-z.+~-]*)"
)


def _pseudo_version(revision: str, vcs_time: str) -> str:
    from datetime import datetime

    try:
        ts = datetime.strptime(vcs_time, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%d%H%M%S")
    except ValueError:
        ts = "00010101000000"
    return f"v0.0.0-{ts}-{revision[:12]}"


def packages_from_build_info(go_version: str, mod: str) -> list[Package]:
    """Main module, dependencies (replacements applied) and the Go toolchain as ``stdlib``."""
    main_path = main_version = ""
    settings: dict[str, str] = {}
    deps: list[tuple[str, str, str]] = []
    for line in mod.splitlines():
        parts = line.split("\t")
        if parts[0] == "mod" and len(parts) >= 3:
            main_path, main_version = parts[1], parts[2]
        elif parts[0] == "dep" and len(parts) >= 3:
            deps.append((parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
        elif parts[0] == "=>" and len(parts) >= 3 and deps:
            deps[-1] = (parts[1], parts[2], parts[3] if len(parts) > 3 else "")
        elif parts[0] == "build" and len(parts) >= 2:
            key, _, value = parts[1].partition("=")
            settings[key] = value
    meta = {
        "go_version": go_version,
        "main_module": main_path,
        "arch": settings.get("GOARCH", ""),
        "os": settings.get("GOOS", ""),
    }
    out: list[Package] = []
    if main_path:
        if main_version in ("(devel)", ""):
            m = _LDFLAGS_VERSION.search(settings.get("-ldflags", ""))
            if m:
                main_version = m.group(1) if m.group(1).startswith("v") else "v" + m.group(1)
            elif settings.get("vcs.revision") and settings.get("vcs.time"):
                main_version = _pseudo_version(settings["vcs.revision"], settings["vcs.time"])
                if settings.get("vcs.modified") == "true":
                    main_version += "+dirty"
        out.append(
            Package(
                name=main_path, version=main_version, type="golang", metadata={**meta, "main": True}
            )
        )
    for path, version, h1 in deps:
        out.append(Package(name=path, version=version, type="golang", metadata={**meta, "h1": h1}))
    if go_version:
        toolchain = go_version.split(" ", 1)[0]
        out.append(
            Package(
                name="stdlib",
                version=toolchain,
                type="golang",
                licenses=("BSD-3-Clause",),
                metadata=meta,
            )
        )
    return out


def _elf_data_range(f: IO[bytes], head: bytes) -> tuple[int, int | None]:
    """Where an ELF's build info may lie, as Go's ``debug/buildinfo`` looks for it: the
    ``.go.buildinfo`` section (named in the section table), else the first writable, not
    executable ``PT_LOAD`` segment; ``(0, None)`` (the whole file) when ``head`` is not an ELF
    header or neither is found."""
    if not head.startswith(b"\x7fELF") or len(head) < 64 or head[4] not in (1, 2):
        return 0, None
    e = "<" if head[5] == 1 else ">"
    if head[4] == 2:
        shoff, entsize, count, names_at = struct.unpack_from(e + "Q10xHHH", head, 0x28)
        section, minimum = e + "I20xQQ", 64  # name, (type, flags, address,) offset, size
    else:
        shoff, entsize, count, names_at = struct.unpack_from(e + "I10xHHH", head, 0x20)
        section, minimum = e + "I12xII", 40
    if entsize >= minimum and 0 <= names_at < count and count * entsize <= 1 << 20:
        f.seek(shoff)
        table = f.read(count * entsize)
        if len(table) == count * entsize:
            _, names_offset, names_size = struct.unpack_from(section, table, names_at * entsize)
            f.seek(names_offset)
            names = f.read(min(names_size, 1 << 20))
            for k in range(count):
                name, offset, size = struct.unpack_from(section, table, k * entsize)
                if names[name : name + len(_SECTION)] == _SECTION:
                    return int(offset), int(offset + size)
    for kind, flags, offset, _, size in _elf_segments(f, head):
        if kind == 1 and flags & 3 == 2:  # PT_LOAD, PF_W without PF_X
            return offset, offset + size
    return 0, None


def _elf_segments(f: IO[bytes], head: bytes) -> list[tuple[int, int, int, int, int]]:
    """(type, flags, file offset, address, file size) of each ELF program header."""
    is64, e = head[4] == 2, (">" if head[5] == 2 else "<")
    if is64:
        (phoff,) = struct.unpack_from(e + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(e + "I", head, 28)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 42)
    if phentsize < (56 if is64 else 32):
        return []
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    out = []
    for o in range(0, len(table) - phentsize + 1, phentsize):
        if is64:
            kind, flags, offset, address, _, size = struct.unpack_from(e + "IIQQQQ", table, o)
        else:
            kind, offset, address, _, size, _, flags = struct.unpack_from(e + "IIIIIII", table, o)
        out.append((int(kind), int(flags), int(offset), int(address), int(size)))
    return out


def parse_go_binary(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """A seekable stream (a file, a layer read in place) is searched where it lies: an ELF
    only where Go itself looks (:func:`_elf_data_range`), anything else from the top. A
    stream read once keeps its chunks (not copied) while the magic is searched; only a file that
    has it is joined (or spooled, past 64 MiB) and then searched as a seekable one."""
    head = stream.read(64)
    if not head.startswith(_EXEC_MAGICS):
        return Parsed()
    if seekable(stream):
        try:
            found = find_build_info(stream, *_elf_data_range(stream, head))
        except (BuildInfoError, struct.error) as e:
            return Parsed(skipped=f"Go build info unreadable: {e}")
        return Parsed() if found is None else Parsed(tuple(packages_from_build_info(*found)))
    chunks = [head]
    kept = offset = len(head)
    seen = MAGIC in head
    first = 0  # the offset of the chunk boundary before the first magic seen
    tail = head[-(len(MAGIC) - 1) :]
    spool: IO[bytes] | None = None
    try:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            if not seen:
                seen = MAGIC in tail + chunk[: len(MAGIC)] or MAGIC in chunk
                first = offset - len(MAGIC)
            offset += len(chunk)
            tail = chunk[-(len(MAGIC) - 1) :]
            if spool is not None:
                spool.write(chunk)
                continue
            chunks.append(chunk)
            kept += len(chunk)
            if kept > _SPOOL_IN_MEMORY and seen or kept > _SPOOL_IN_MEMORY:
                import tempfile

                spool = tempfile.TemporaryFile(prefix="imagewise-go-")  # noqa: SIM115 - closed below
                for c in chunks:
                    spool.write(c)
                chunks = []
        if not seen:
            return Parsed()
        f: IO[bytes] = spool if spool is not None else io.BytesIO(b"".join(chunks))
        try:
            start, end = _elf_data_range(f, head)
            found = find_build_info(f, max(start, first), end)
        except (BuildInfoError, struct.error) as e:
            return Parsed(skipped=f"Go build info unreadable: {e}")
    finally:
        if spool is not None:
            spool.close()
    if found is None:
        return Parsed()
    return Parsed(tuple(packages_from_build_info(*found)))


def _selects(info: FileInfo) -> bool:
    """Executables (any x bit) and Windows binaries, over 4 KiB: where Go binaries live."""
    return info.size > 4096 and (bool(info.mode & 0o111) or info.path.endswith((".exe", ".dll")))


CATALOGERS = (
    Cataloger(
        "go-module-binary",
        ("golang",),
        "Go module build info in ELF/PE/Mach-O executables (x bit or .exe), incl. stdlib",
        _selects,
        parse_go_binary,
        _BINARY_LIMIT,
        endings=(".exe", ".dll"),
        executables=True,
    ),
)
