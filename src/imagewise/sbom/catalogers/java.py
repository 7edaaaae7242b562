"""Java archives (jar, war, ear and kin): ``META-INF/maven/**/pom.properties``, ``MANIFEST.MF``,
the file name, and archives nested inside (``WEB-INF/lib``, ``BOOT-INF/lib``, ear modules).

Memory stays bounded: each archive is spooled (in memory up to 16 MiB, then a temporary file)
and nested archives are opened one at a time, to a fixed depth.
"""

from __future__ import annotations

import contextlib
import re
from typing import IO, TYPE_CHECKING

from imagewise.sbom.catalogers.base import Cataloger, FileInfo, Parsed, seekable
from imagewise.sbom.model import Package

if TYPE_CHECKING:
    import zipfile

ARCHIVE_SUFFIXES = (
    ".jar",
    ".war",
    ".ear",
    ".par",
    ".sar",
    ".nar",
    ".jpi",
    ".hpi",
    ".kar",
    ".lpkg",
    ".rar",
)
_SPOOL = 16 << 20
_ARCHIVE_LIMIT = 2 << 30
_MAX_DEPTH = 4
_MAX_NESTED = 5000
_FILENAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d.*)$")


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF (72-byte lines continued by a leading space)."""
    out: dict[str, str] = {}
    last = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            if out:
                break
            continue
        if line.startswith(" ") and last:
            out[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            out[last] = value.strip()
    return out


def parse_properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def split_filename(filename: str) -> tuple[str, str]:
    stem = filename.rsplit("/", 1)[-1]
    for suf in ARCHIVE_SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    m = _FILENAME.match(stem)
    return (m.group("name"), m.group("version")) if m else (stem, "")


def _maven(
    group: str, artifact: str, version: str, virtual: str, kind: str, licenses: tuple[str, ...] = ()
) -> Package:
    return Package(
        name=artifact,
        version=version,
        type="maven",
        licenses=licenses,
        metadata={"group": group, "virtual_path": virtual, "kind": kind},
    )


def _manifest_group(mf: dict[str, str]) -> str:
    """A group id for the purl from the manifest (the first dotted, space-free candidate)."""
    for key in (
        "Implementation-Vendor-Id",
        "Bundle-SymbolicName",
        "Automatic-Module-Name",
        "Extension-Name",
    ):
        value = mf.get(key, "").split(";")[0].strip()
        if value and "." in value and " " not in value:
            return value
    return ""


def _archive_packages(
    z: zipfile.ZipFile, virtual: str, depth: int
) -> tuple[list[Package], list[str]]:
    import zipfile  # not at the top: most images hold no Java archive

    names = z.namelist()
    mf: dict[str, str] = {}
    if "META-INF/MANIFEST.MF" in names:
        mf = parse_manifest(z.read("META-INF/MANIFEST.MF")[: 1 << 20].decode("utf-8", "replace"))
    poms = []
    for n in names:
        if n.startswith("META-INF/maven/") and n.endswith("/pom.properties"):
            props = parse_properties(z.read(n)[: 1 << 20].decode("utf-8", "replace"))
            if props.get("artifactId") and props.get("version"):
                poms.append(props)
    file_name, file_version = split_filename(virtual.rsplit(":", 1)[-1])
    lic = tuple(
        x.strip() for x in mf.get("Bundle-License", "").split(",") if x.strip() and len(x) < 100
    )
    out: list[Package] = []
    # the archive's own package: the pom.properties whose artifactId is (or starts with) the
    # file's name; else file name and version, the manifest filling in what the name lacks
    main = next((p for p in poms if file_name and p["artifactId"].startswith(file_name)), None)
    if main is not None:
        out.append(
            _maven(
                main.get("groupId", ""),
                main["artifactId"],
                main["version"],
                virtual,
                "pom.properties",
                lic,
            )
        )
    else:
        name = file_name or mf.get("Bundle-Name", "") or mf.get("Implementation-Title", "")
        version = (
            file_version
            or mf.get("Implementation-Version")
            or mf.get("Specification-Version")
            or mf.get("Plugin-Version")
            or mf.get("Bundle-Version")
            or "UNKNOWN"
        )
        if name:
            out.append(_maven(_manifest_group(mf), name, version, virtual, "manifest", lic))
    for p in poms:
        if p is not main:
            out.append(
                _maven(
                    p.get("groupId", ""),
                    p["artifactId"],
                    p["version"],
                    f"{virtual}:{p['artifactId']}",
                    "pom.properties",
                )
            )
    problems: list[str] = []
    if depth < _MAX_DEPTH:
        nested = [n for n in names if n.lower().endswith(ARCHIVE_SUFFIXES)][:_MAX_NESTED]
        for n in nested:
            try:
                with contextlib.ExitStack() as stack:
                    inner = stack.enter_context(z.open(n))
                    zi = stack.enter_context(zipfile.ZipFile(_spooled(inner, stack)))
                    pk, pr = _archive_packages(zi, f"{virtual}:{n}", depth + 1)
                out.extend(pk)
                problems.extend(pr)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as e:
                problems.append(f"{virtual}:{n}: {e}")
    return out, problems


def _spooled(stream: IO[bytes], stack: contextlib.ExitStack) -> IO[bytes]:
    """``stream`` copied to a spool (memory, then disk past ``_SPOOL``) that ``stack`` closes,
    positioned at its start: zip's directory is at the end, and a nested member cannot seek."""
    import shutil
    import tempfile

    spool: IO[bytes] = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL))
    shutil.copyfileobj(stream, spool, 1 << 20)
    spool.seek(0)
    return spool


def parse_java_archive(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """A seekable stream (a layer's content read in place) is opened as the zip it is; one
    read once is spooled first (zip's directory is at the end)."""
    import zipfile

    with contextlib.ExitStack() as stack:
        archive = stream if seekable(stream) else _spooled(stream, stack)
        try:
            with zipfile.ZipFile(archive) as z:
                packages, problems = _archive_packages(z, info.path, 0)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as e:
            return Parsed(skipped=f"unreadable Java archive: {e}")
    skipped = f"{len(problems)} nested archives unreadable ({problems[0]})" if problems else ""
    seen: dict[tuple[str, str, str], Package] = {}
    for p in packages:
        seen.setdefault((p.metadata.get("group", ""), p.name, p.version), p)
    return Parsed(tuple(seen.values()), skipped=skipped)


CATALOGERS = (
    Cataloger(
        "java-archive",
        ("maven",),
        "jar/war/ear/... with pom.properties and MANIFEST.MF, nested archives",
        lambda info: info.path.lower().endswith(ARCHIVE_SUFFIXES),
        parse_java_archive,
        _ARCHIVE_LIMIT,
        endings=ARCHIVE_SUFFIXES,
    ),
)
