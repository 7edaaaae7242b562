"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, an
``*.egg-info`` file, and ``.egg`` zip files (``EGG-INFO/PKG-INFO`` inside)."""

from __future__ import annotations

import io
import re
import zipfile
from typing import IO

from imagewise.sbom.catalogers.base import Cataloger, FileInfo, Parsed, read_bounded, split_licenses
from imagewise.sbom.model import Package

_META_LIMIT = 16 << 20
_EGG_LIMIT = 256 << 20


def parse_metadata_text(text: str) -> dict[str, list[str]]:
    """The header part of a core-metadata document (RFC 822 style, until the first blank line)."""
    fields: dict[str, list[str]] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last:
            fields[last][-1] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        fields.setdefault(last, []).append(value.strip())
    return fields


def _licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    expr = (fields.get("license-expression") or [""])[0].strip()
    if expr:
        return (expr,)
    lic = (fields.get("license") or [""])[0].strip()
    if lic and lic.upper() != "UNKNOWN" and "\n" not in lic and len(lic) < 100:
        return (lic,)
    found = []
    for c in fields.get("classifier", []):
        parts = [p.strip() for p in c.split("::")]
        if parts[0] == "License" and len(parts) > 1:
            found.append(parts[-1])
    return tuple(dict.fromkeys(found)) or (split_licenses(lic) if lic and len(lic) < 100 else ())


def normalize_name(name: str) -> str:
    """PEP 503 normalisation (``Foo_Bar.baz`` -> ``foo-bar-baz``), as package indexes compare."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_from_metadata(data: bytes, kind: str) -> Package | None:
    fields = parse_metadata_text(data.decode("utf-8", "replace"))
    name = (fields.get("name") or [""])[0]
    if not name:
        return None
    return Package(
        name=normalize_name(name),
        version=(fields.get("version") or [""])[0],
        type="pypi",
        licenses=_licenses(fields),
        metadata={
            "kind": kind,
            "name": name,
            "summary": (fields.get("summary") or [""])[0],
            "author": (fields.get("author") or [""])[0],
        },
    )


def parse_python_metadata(info: FileInfo, stream: IO[bytes]) -> Parsed:
    low = info.path.lower()
    kind = "dist-info" if "dist-info/" in low else "egg-info"
    pkg = package_from_metadata(read_bounded(stream, _META_LIMIT), kind)
    return Parsed((pkg,) if pkg else (), skipped="" if pkg else "metadata without a Name")


def parse_egg_zip(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """A zipped ``.egg``: ``EGG-INFO/PKG-INFO`` inside. Read into memory up to a bound."""
    data = read_bounded(stream, _EGG_LIMIT)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            try:
                raw = z.read("EGG-INFO/PKG-INFO")
            except KeyError:
                return Parsed(skipped="egg without EGG-INFO/PKG-INFO")
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return Parsed(skipped=f"unreadable egg: {e}")
    pkg = package_from_metadata(raw, "egg")
    return Parsed((pkg,) if pkg else ())


def parse_direct_url(info: FileInfo, stream: IO[bytes]) -> Parsed:
    """``*.dist-info/direct_url.json`` (PEP 610): a VCS install's ``vcs_url`` for the purl.
    Yields a record the catalog attaches to the distribution in the same directory."""
    import json

    try:
        doc = json.loads(read_bounded(stream, 1 << 20))
    except (ValueError, UnicodeDecodeError) as e:
        return Parsed(skipped=f"malformed direct_url.json: {e}")
    vcs = doc.get("vcs_info") if isinstance(doc, dict) else None
    if not isinstance(vcs, dict) or not doc.get("url") or not vcs.get("vcs"):
        return Parsed()
    url = f"{vcs['vcs']}+{doc['url']}" + (f"@{vcs['commit_id']}" if vcs.get("commit_id") else "")
    directory = info.path.rsplit("/", 1)[0]
    return Parsed(
        (Package(name=directory, version="", type="pypi-direct-url", metadata={"vcs_url": url}),)
    )


def _metadata_selects(info: FileInfo) -> bool:
    low = info.path.lower()
    return low.endswith(("dist-info/metadata", "egg-info/pkg-info", ".egg-info"))


def _egg_selects(info: FileInfo) -> bool:
    return info.path.endswith(".egg")


CATALOGERS = (
    Cataloger(
        "python-installed",
        ("pypi",),
        "Python dist-info METADATA, egg-info PKG-INFO (dir or file)",
        _metadata_selects,
        parse_python_metadata,
        _META_LIMIT,
        endings=("/metadata", "/pkg-info", ".egg-info"),
    ),
    Cataloger(
        "python-direct-url",
        (),
        "PEP 610 direct_url.json (VCS url for the purl)",
        lambda info: info.path.lower().endswith("dist-info/direct_url.json"),
        parse_direct_url,
        1 << 20,
        endings=("/direct_url.json",),
    ),
    Cataloger(
        "python-egg",
        ("pypi",),
        "zipped Python .egg files",
        _egg_selects,
        parse_egg_zip,
        _EGG_LIMIT,
        endings=(".egg",),
    ),
)
