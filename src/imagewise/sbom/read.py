"""Read an SBOM file (CycloneDX JSON, SPDX JSON or syft JSON) back into packages, so
``imagewise scan`` can take an SBOM instead of an image. The package type comes from the purl;
components whose purl type imagewise does not catalog are listed as skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagewise.errors import ImageFormatError
from imagewise.sbom.catalog import Catalog, Skipped
from imagewise.sbom.catalogers.base import Distro
from imagewise.sbom.model import TYPES, Package, PackageLocation

_MAX_SBOM = 512 << 20


def looks_like_sbom(path: str | Path) -> bool:
    """True for a file holding a JSON object: image archives are tars and never start with
    ``{``; whether it is CycloneDX or SPDX is decided (with a clear error) by ``read_sbom``."""
    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        head = f.read(512)
    return head.lstrip()[:1] == b"{"


def _from_purl(purl: str, name: str, version: str) -> tuple[str, str, str, dict[str, str]]:
    from packageurl import PackageURL

    try:
        u = PackageURL.from_string(purl)
    except ValueError:
        return "", name, version, {}
    ptype = str(u.type)
    q = dict(u.qualifiers) if isinstance(u.qualifiers, dict) else {}
    if ptype == "npm" and u.namespace:
        name = name or f"{u.namespace}/{u.name}"
    elif ptype == "golang":
        name = name or "/".join(x for x in (u.namespace, u.name, u.subpath) if x)
    name = name or str(u.name)
    version = version or str(u.version or "")
    return ptype, name, version, q


def _package(
    name: str,
    version: str,
    purl: str,
    licenses: tuple[str, ...],
    locs: tuple[PackageLocation, ...],
    from_base: bool | None,
) -> Package | str:
    ptype, name, version, q = _from_purl(purl, name, version) if purl else ("", name, version, {})
    if ptype not in TYPES:
        return ptype or "no purl"
    src_name = src_version = ""
    up = q.get("upstream", "")
    if up and ptype in ("deb", "apk"):
        src_name, _, src_version = up.partition("@")
    elif up and ptype == "rpm" and up.endswith(".src.rpm"):
        parts = up[: -len(".src.rpm")].rsplit("-", 2)
        if len(parts) == 3:
            src_name, src_version = parts[0], f"{parts[1]}-{parts[2]}"
    if ptype in ("apk", "deb", "rpm") and not src_name:
        src_name = name
    if ptype == "rpm" and q.get("epoch") and ":" not in version:
        version = f"{q['epoch']}:{version}"
    distro = q.get("distro", "")
    if distro and "-" in distro:
        did, _, dver = distro.partition("-")
        distro = f"{did}:{dver}"
    meta: dict[str, Any] = {"arch": q.get("arch", "")}
    if ptype == "maven":
        from packageurl import PackageURL

        meta["group"] = PackageURL.from_string(purl).namespace or ""
    return Package(
        name=name,
        version=version,
        type=ptype,
        purl=purl,
        licenses=licenses,
        source_name=src_name,
        source_version=src_version,
        locations=locs,
        from_base=from_base,
        distro=distro,
        metadata=meta,
    )


def _cdx_components(items: list[Any]) -> Iterator[dict[str, Any]]:
    for c in items or []:
        if isinstance(c, dict):
            yield c
            yield from _cdx_components(c.get("components") or [])


def _cdx_licenses(c: dict[str, Any]) -> tuple[str, ...]:
    out = []
    for entry in c.get("licenses") or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("expression"):
            out.append(str(entry["expression"]))
        lic = entry.get("license") or {}
        if isinstance(lic, dict) and (lic.get("id") or lic.get("name")):
            out.append(str(lic.get("id") or lic.get("name")))
    return tuple(out)


def _read_cyclonedx(doc: dict[str, Any], source: str) -> Catalog:
    packages: list[Package] = []
    skipped: list[Skipped] = []
    distro: Distro | None = None
    for c in _cdx_components(doc.get("components") or []):
        if c.get("type") == "operating-system":
            distro = Distro(
                str(c.get("name", "")).lower(),
                str(c.get("version", "") or ""),
                pretty_name=str(c.get("description", "") or ""),
            )
            continue
        props = {
            p.get("name"): p.get("value") for p in c.get("properties") or [] if isinstance(p, dict)
        }
        locs: tuple[PackageLocation, ...] = ()
        if props.get("imagewise:path"):
            locs = (
                PackageLocation(
                    str(props.get("imagewise:layer", "")), str(props["imagewise:path"])
                ),
            )
        elif props.get("syft:location:0:path"):
            locs = (
                PackageLocation(
                    str(props.get("syft:location:0:layerID", "")),
                    str(props["syft:location:0:path"]).lstrip("/"),
                ),
            )
        fb = props.get("imagewise:from-base")
        name = str(c.get("name", ""))  # maven: the artifact; the group lives in the purl
        res = _package(
            name,
            str(c.get("version", "") or ""),
            str(c.get("purl", "") or ""),
            _cdx_licenses(c),
            locs,
            None if fb is None else fb == "true",
        )
        if isinstance(res, str):
            skipped.append(Skipped(name, "", "cyclonedx", f"package type {res} not cataloged"))
        else:
            packages.append(res)
    return Catalog(tuple(packages), distro, tuple(skipped), source=source)


def _read_spdx(doc: dict[str, Any], source: str) -> Catalog:
    packages: list[Package] = []
    skipped: list[Skipped] = []
    for p in doc.get("packages") or []:
        if not isinstance(p, dict):
            continue
        purl = next(
            (
                str(r.get("referenceLocator", ""))
                for r in p.get("externalRefs") or []
                if isinstance(r, dict) and r.get("referenceType") == "purl"
            ),
            "",
        )
        if not purl:
            continue  # the described image/file itself, or a package without an identity
        lic = str(p.get("licenseDeclared") or "")
        licenses = (lic,) if lic and lic not in ("NOASSERTION", "NONE") else ()
        res = _package(
            str(p.get("name", "")), str(p.get("versionInfo", "") or ""), purl, licenses, (), None
        )
        if isinstance(res, str):
            skipped.append(
                Skipped(str(p.get("name", "")), "", "spdx", f"package type {res} not cataloged")
            )
        else:
            packages.append(res)
    distro = None
    for pk in packages:
        if pk.distro:
            did, _, dver = pk.distro.partition(":")
            distro = Distro(did, dver)
            break
    return Catalog(tuple(packages), distro, tuple(skipped), source=source)


def _read_syft(doc: dict[str, Any], source: str) -> Catalog:
    """syft's own JSON (``syft scan -o json``), so its SBOMs feed ``imagewise scan`` too."""
    packages: list[Package] = []
    skipped: list[Skipped] = []
    for a in doc.get("artifacts") or []:
        if not isinstance(a, dict):
            continue
        locs = tuple(
            PackageLocation(str(loc.get("layerID", "")), str(loc.get("path", "")).lstrip("/"))
            for loc in a.get("locations") or []
            if isinstance(loc, dict)
        )
        licenses = tuple(
            str(x.get("value") if isinstance(x, dict) else x) for x in a.get("licenses") or []
        )
        res = _package(
            str(a.get("name", "")),
            str(a.get("version", "")),
            str(a.get("purl", "")),
            licenses,
            locs,
            None,
        )
        if isinstance(res, str):
            skipped.append(
                Skipped(
                    str(a.get("name", "")), "", "syft-json", f"package type {res} not cataloged"
                )
            )
        else:
            packages.append(res)
    d = doc.get("distro") or {}
    distro = (
        Distro(
            str(d.get("id", "")),
            str(d.get("versionID", "")),
            str(d.get("name", "")),
            str(d.get("prettyName", "")),
        )
        if isinstance(d, dict) and d.get("id")
        else None
    )
    return Catalog(tuple(packages), distro, tuple(skipped), source=source)


def read_sbom(path: str | Path) -> Catalog:
    """Packages of a CycloneDX JSON, SPDX JSON or syft JSON file."""
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_SBOM:
            raise ImageFormatError(f"{p}: SBOM over {_MAX_SBOM >> 20} MiB")
        doc = json.loads(p.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ImageFormatError(f"{p}: not a readable JSON SBOM: {e}") from e
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{p}: not a JSON object")
    if doc.get("bomFormat") == "CycloneDX":
        return _read_cyclonedx(doc, str(p))
    if "spdxVersion" in doc:
        return _read_spdx(doc, str(p))
    if isinstance(doc.get("artifacts"), list) and isinstance(doc.get("descriptor"), dict):
        return _read_syft(doc, str(p))
    raise ImageFormatError(f"{p}: not CycloneDX (bomFormat), SPDX (spdxVersion) or syft JSON")
