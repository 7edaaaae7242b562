"""The package model shared by catalogers, SBOM encoders and vulnerability matching."""

from __future__ import annotations

from typing import Any

from imagewise.record import Record

#: package types imagewise catalogs (``Package.type``)
TYPES = ("apk", "deb", "rpm", "pypi", "npm", "golang", "maven")


class PackageLocation(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "layer",  # diff_id of the layer the file is in ("" when cataloged from a directory)
        "path",  # path of the evidence file inside the image (normalised, no leading "/")
        "layer_index",
    )

    def __init__(self, layer: str, path: str, layer_index: int | None = None) -> None:
        self.layer = layer
        self.path = path
        self.layer_index = layer_index

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path}


class Package(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "name",
        "version",
        "type",  # one of TYPES
        "purl",
        "licenses",
        "source_name",  # source package (deb Source:, apk origin, rpm sourcerpm)
        "source_version",
        "locations",
        "from_base",  # True when introduced by a base-image layer (None: unknown)
        "distro",  # e.g. "debian:12", "alpine:3.19" for OS packages
        "metadata",
    )
    _uncompared = ("metadata",)

    def __init__(
        self,
        name: str,
        version: str,
        type: str,
        purl: str = "",
        licenses: tuple[str, ...] = (),
        source_name: str = "",
        source_version: str = "",
        locations: tuple[PackageLocation, ...] = (),
        from_base: bool | None = None,
        distro: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.type = type
        self.purl = purl
        self.licenses = licenses
        self.source_name = source_name
        self.source_version = source_version
        self.locations = locations
        self.from_base = from_base
        self.distro = distro
        self.metadata = {} if metadata is None else metadata

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
