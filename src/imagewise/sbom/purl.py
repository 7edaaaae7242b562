"""Package URLs (https://github.com/package-url/purl-spec) for cataloged packages, with the
distro qualifiers syft writes (``distro=debian-12``, ``upstream=SOURCE``), built with the
reference ``packageurl-python`` implementation so encoding follows the spec."""

from __future__ import annotations

from imagewise.sbom.catalogers.base import Distro
from imagewise.sbom.model import Package

#: the namespace is the os-release ID (``pkg:rpm/amzn/...``, ``pkg:apk/wolfi/...``) except these,
#: as syft writes them
_NAMESPACE = {"rhel": "redhat"}
#: namespace without a known distro
_DEFAULT_NS = {"apk": "alpine", "deb": "debian", "rpm": ""}


def _distro_qualifier(distro: Distro | None) -> str:
    if distro is None:
        return ""
    return f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id


def purl_for(pkg: Package, distro: Distro | None = None) -> str:
    from packageurl import PackageURL

    q: dict[str, str] = {}
    namespace: str | None = None
    subpath: str | None = None
    name, version = pkg.name, pkg.version
    if pkg.type in ("apk", "deb", "rpm"):
        namespace = _NAMESPACE.get(distro.id, distro.id) if distro else _DEFAULT_NS[pkg.type]
        arch = str(pkg.metadata.get("arch") or "")
        if arch:
            q["arch"] = arch
        if d := _distro_qualifier(distro):
            q["distro"] = d
        if pkg.type == "rpm":
            epoch = pkg.metadata.get("epoch")
            if isinstance(epoch, int):
                q["epoch"] = str(epoch)
                version = version.split(":", 1)[1] if ":" in version else version
            if pkg.metadata.get("sourcerpm"):
                q["upstream"] = str(pkg.metadata["sourcerpm"])
        elif pkg.type == "deb" and pkg.source_name:  # as written in Source: "name (version)"
            q["upstream"] = pkg.source_name
            if pkg.source_version:
                q["upstream"] += f"@{pkg.source_version}"
        elif pkg.type == "apk" and pkg.source_name and pkg.source_name != pkg.name:
            q["upstream"] = pkg.source_name
    elif pkg.type == "pypi" and pkg.metadata.get("vcs_url"):
        q["vcs_url"] = str(pkg.metadata["vcs_url"])
    elif pkg.type == "npm":
        if name.startswith("@") and "/" in name:
            namespace, name = name.split("/", 1)
    elif pkg.type == "golang":  # syft's layout: host/owner as namespace, the rest as subpath
        parts = name.split("/")
        if len(parts) >= 3:
            namespace, name, subpath = "/".join(parts[:2]), parts[2], "/".join(parts[3:]) or None
        elif len(parts) == 2:
            namespace, name = parts
        if name == "stdlib" and namespace is None and version.startswith("go"):
            version = version[2:]
    elif pkg.type == "maven":
        namespace = str(pkg.metadata.get("group") or "") or name
    try:
        return PackageURL(
            type=pkg.type,
            namespace=namespace,
            name=name,
            version=version or None,
            qualifiers=q or None,
            subpath=subpath,
        ).to_string()
    except ValueError:
        return ""
