"""JavaScript packages: every ``package.json`` with a name and version (what is installed, as
syft's image cataloger does), and lockfiles (``package-lock.json``, ``yarn.lock``,
``pnpm-lock.yaml``) for applications whose ``node_modules`` is not in the image."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from imagewise.sbom.catalogers.base import Cataloger, FileInfo, Parsed, read_bounded, split_licenses
from imagewise.sbom.model import Package

_JSON_LIMIT = 8 << 20
_LOCK_LIMIT = 64 << 20


def _license_of(doc: dict[str, Any]) -> tuple[str, ...]:
    lic = doc.get("license")
    if lic is None:
        lic = doc.get("licenses")
    out: list[str] = []
    items = lic if isinstance(lic, list) else [lic]
    for item in items:
        if isinstance(item, str) and item.strip():
            out.extend(
                split_licenses(item) if " " in item.strip() and "(" not in item else [item.strip()]
            )
        elif isinstance(item, dict) and isinstance(item.get("type"), str):
            out.append(item["type"].strip())
    return tuple(dict.fromkeys(x for x in out if x))


def package_from_json(doc: Any, kind: str = "package.json") -> Package | None:
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return Package(
        name=name,
        version=version,
        type="npm",
        licenses=_license_of(doc),
        metadata={
            "kind": kind,
            "private": bool(doc.get("private", False)),
            "homepage": str(doc.get("homepage") or ""),
        },
    )


def parse_package_json(info: FileInfo, stream: IO[bytes]) -> Parsed:
    try:
        doc = json.loads(read_bounded(stream, _JSON_LIMIT))
    except (ValueError, UnicodeDecodeError) as e:
        return Parsed(skipped=f"malformed package.json: {e}")
    pkg = package_from_json(doc)
    return Parsed((pkg,) if pkg else ())


# --- package-lock.json --------------------------------------------------------------------------


def _alias(name: str, version: str) -> tuple[str, str]:
    """``"npm:real-name@1.2.3"`` versions name the real package."""
    if version.startswith("npm:"):
        real, _, ver = version[4:].rpartition("@")
        if real:
            return real, ver
    return name, version


def _lock_v1(deps: dict[str, Any], include_dev: bool) -> Iterator[Package]:
    for name, entry in deps.items():
        if not isinstance(entry, dict):
            continue
        if entry.get("dev") and not include_dev:
            continue
        real, version = _alias(name, str(entry.get("version", "")))
        if version:
            yield Package(name=real, version=version, type="npm", metadata={"kind": "package-lock"})
        if isinstance(entry.get("dependencies"), dict):
            yield from _lock_v1(entry["dependencies"], include_dev)


def parse_package_lock_doc(doc: dict[str, Any], include_dev: bool = False) -> list[Package]:
    out: list[Package] = []
    packages = doc.get("packages")
    if isinstance(packages, dict) and packages:
        for key, entry in packages.items():
            if not isinstance(entry, dict) or entry.get("link"):
                continue
            if entry.get("dev") and not include_dev:
                continue
            if key == "":
                name = str(entry.get("name") or doc.get("name") or "")
            else:
                name = str(entry.get("name") or key.rsplit("node_modules/", 1)[-1])
            version = str(entry.get("version") or (doc.get("version") if key == "" else "") or "")
            name, version = _alias(name, version)
            if name and version:
                out.append(
                    Package(
                        name=name,
                        version=version,
                        type="npm",
                        licenses=_license_of(entry),
                        metadata={"kind": "package-lock"},
                    )
                )
    elif isinstance(doc.get("dependencies"), dict):
        out.extend(_lock_v1(doc["dependencies"], include_dev))
    return out


def parse_package_lock(info: FileInfo, stream: IO[bytes]) -> Parsed:
    try:
        doc = json.loads(read_bounded(stream, _LOCK_LIMIT))
    except (ValueError, UnicodeDecodeError) as e:
        return Parsed(skipped=f"malformed package-lock.json: {e}")
    if not isinstance(doc, dict):
        return Parsed(skipped="package-lock.json is not an object")
    return Parsed(tuple(_dedupe(parse_package_lock_doc(doc))))


# --- yarn.lock (v1 and berry) -------------------------------------------------------------------

_VERSION_LINE = re.compile(r'^\s+version:?\s+"?([^"\s]+)"?\s*$')


def _spec_name(spec: str) -> str:
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)  # a scoped name starts with "@"
    name = spec[:at] if at > 0 else spec
    rest = spec[at + 1 :] if at > 0 else ""
    if rest.startswith("npm:") and "@" in rest[5:]:  # alias: name@npm:real@range
        real = rest[4:]
        at2 = real.find("@", 1)
        return real[:at2] if at2 > 0 else real
    return name


_RESOLVED = re.compile(r'^\s+resolved:?\s+"?([^"\s#]+)')


def _name_from_url(url: str) -> str:
    """``https://registry.yarnpkg.com/@scope/name/-/name-1.0.0.tgz`` -> ``@scope/name``."""
    if "/-/" not in url:
        return ""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("/-/", 1)[0]
    return path.replace("%2f", "/").replace("%2F", "/")


def parse_yarn_lock_text(text: str) -> list[Package]:
    out: list[Package] = []
    name = version = ""

    def flush() -> None:
        if name and version and name != "__metadata":
            out.append(
                Package(name=name, version=version, type="npm", metadata={"kind": "yarn.lock"})
            )

    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line[0].isspace():
            flush()
            name, version = _spec_name(line.rstrip(":").split(",")[0]), ""
            continue
        m = _VERSION_LINE.match(line)
        if m:
            version = m.group(1)
            continue
        r = _RESOLVED.match(line)
        if r and r.group(1).startswith("http"):  # classic yarn: the registry URL names the package
            name = _name_from_url(r.group(1)) or name
    flush()
    return out


def parse_yarn_lock(info: FileInfo, stream: IO[bytes]) -> Parsed:
    text = read_bounded(stream, _LOCK_LIMIT).decode("utf-8", "replace")
    return Parsed(tuple(_dedupe(parse_yarn_lock_text(text))))


# --- pnpm-lock.yaml -----------------------------------------------------------------------------

_PNPM_V5 = re.compile(r"^(@?[^@/]+(?:/[^@/]+)?)/(\d[^/_(]*)(?:_.*)?$")
_PNPM_V6 = re.compile(r"^(@?[^@]+)@([^(]+)")


def _pnpm_key(key: str) -> tuple[str, str]:
    key = key.lstrip("/")
    m = _PNPM_V5.match(key) or _PNPM_V6.match(key)
    return (m.group(1), m.group(2)) if m else ("", "")


def _pnpm_version(value: Any) -> str:
    """A direct dependency's resolved version: ``3.3.4``, ``5.3.2_acorn@8.8.0`` (v5 peers),
    ``{specifier, version: 13.4.0(react@18.2.0)}`` (v6+)."""
    if isinstance(value, dict):
        value = value.get("version", "")
    text = str(value or "")
    return text.split("(", 1)[0].split("_", 1)[0]


def _pnpm_direct(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    sections = [doc]
    importers = doc.get("importers")
    if isinstance(importers, dict):
        sections += [v for v in importers.values() if isinstance(v, dict)]
    for sec in sections:
        for field in ("dependencies", "optionalDependencies"):  # dev ones: flagged in packages
            deps = sec.get(field)
            if isinstance(deps, dict):
                for name, value in deps.items():
                    yield str(name), _pnpm_version(value)


def parse_pnpm_lock_docs(docs: list[Any], include_dev: bool = False) -> list[Package]:
    out: list[Package] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        found: list[tuple[str, str]] = list(_pnpm_direct(doc))
        raw = doc.get("packages")
        packages: dict[Any, Any] = raw if isinstance(raw, dict) else {}
        for key, entry in packages.items():
            entry = entry if isinstance(entry, dict) else {}
            if entry.get("dev") is True and not include_dev:
                continue
            name, version = _pnpm_key(str(key))
            found.append((str(entry.get("name") or name), str(entry.get("version") or version)))
        for name, version in found:
            if name and version and not version.startswith(("link:", "file:", "workspace:")):
                out.append(
                    Package(name=name, version=version, type="npm", metadata={"kind": "pnpm-lock"})
                )
    return out


def parse_pnpm_lock(info: FileInfo, stream: IO[bytes]) -> Parsed:
    import yaml

    try:
        docs = list(yaml.safe_load_all(read_bounded(stream, _LOCK_LIMIT)))
    except yaml.YAMLError as e:
        return Parsed(skipped=f"malformed pnpm-lock.yaml: {str(e).splitlines()[0]}")
    return Parsed(tuple(_dedupe(parse_pnpm_lock_docs(docs))))


def _dedupe(pkgs: list[Package]) -> list[Package]:
    seen: dict[tuple[str, str], Package] = {}
    for p in pkgs:
        seen.setdefault((p.name, p.version), p)
    return list(seen.values())


#: directories of globally installed modules: a lockfile there is the upstream project's dev
#: lockfile shipped along (e.g. Debian's /usr/share/nodejs/*/pnpm-lock.yaml), not an inventory
GLOBAL_MODULE_DIRS = (
    "usr/share/nodejs/",
    "usr/lib/nodejs/",
    "usr/lib/node_modules/",
    "usr/local/lib/node_modules/",
    "usr/share/javascript/",
)
#: catalogers whose packages are declared by a lockfile rather than installed
LOCK_CATALOGERS = frozenset({"npm-lock", "yarn-lock", "pnpm-lock"})


def _lock_selects(name: str) -> Any:
    """An application's lockfile: not inside node_modules or a global module directory."""
    return lambda info: (
        (info.path == name or info.path.endswith("/" + name))
        and "/node_modules/" not in f"/{info.path}"
        and not info.path.startswith(GLOBAL_MODULE_DIRS)
    )


CATALOGERS = (
    Cataloger(
        "javascript-package",
        ("npm",),
        "installed package.json files (name and version)",
        lambda info: info.path == "package.json" or info.path.endswith("/package.json"),
        parse_package_json,
        _JSON_LIMIT,
        endings=("package.json",),
    ),
    Cataloger(
        "npm-lock",
        ("npm",),
        "package-lock.json (v1, v2, v3) outside node_modules",
        _lock_selects("package-lock.json"),
        parse_package_lock,
        _LOCK_LIMIT,
        endings=("package-lock.json",),
    ),
    Cataloger(
        "yarn-lock",
        ("npm",),
        "yarn.lock (classic and berry)",
        _lock_selects("yarn.lock"),
        parse_yarn_lock,
        _LOCK_LIMIT,
        endings=("yarn.lock",),
    ),
    Cataloger(
        "pnpm-lock",
        ("npm",),
        "pnpm-lock.yaml (v5 to v9)",
        _lock_selects("pnpm-lock.yaml"),
        parse_pnpm_lock,
        _LOCK_LIMIT,
        endings=("pnpm-lock.yaml",),
    ),
)
