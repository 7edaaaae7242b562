"""The package model shared by catalogers, SBOM encoders and vulnerability matching."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: package types imagewise catalogs (``Package.type``)
TYPES = ("apk", "deb", "rpm", "pypi", "npm", "golang", "maven")


@dataclass(frozen=True, slots=True)
class PackageLocation:
    layer: str  # diff_id of the layer the file is in ("" when cataloged from a directory)
    path: str  # path of the evidence file inside the image (normalised, no leading "/")
    layer_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path}


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    type: str  # one of TYPES
    purl: str = ""
    licenses: tuple[str, ...] = ()
    source_name: str = ""  # source package (deb Source:, apk origin, rpm sourcerpm)
    source_version: str = ""
    locations: tuple[PackageLocation, ...] = ()
    from_base: bool | None = None  # True when introduced by a base-image layer (None: unknown)
    distro: str = ""  # e.g. "debian:12", "alpine:3.19" for OS packages
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def introduced_by(self) -> PackageLocation | None:
        return self.locations[0] if self.locations else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "purl": self.purl,
            "licenses": list(self.licenses),
            "locations": [loc.to_json() for loc in self.locations],
        }
        if self.source_name:
            out["source"] = {"name": self.source_name, "version": self.source_version}
        if self.from_base is not None:
            out["from_base"] = self.from_base
        return out
