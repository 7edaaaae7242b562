"""Software bill of materials: catalogers (visitors in the single pass), the final-filesystem
package list with layer and base-image attribution, encoders and an SBOM reader.

``imagewise.catalog(image)`` (:func:`.catalog.catalog`) runs its own pass; ``CatalogVisitor``
+ ``catalog_from_visitor`` let another command (``imagewise check``) put the catalogers into its
pass alongside other visitors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.baseimage import base_layer_count as base_layer_count
    from imagewise.sbom.catalog import (
        Catalog as Catalog,
        Skipped as Skipped,
        catalog_from_visitor as catalog_from_visitor,
    )
    from imagewise.sbom.catalogers import ALL as CATALOGERS  # noqa: F401 (exported lazily)
    from imagewise.sbom.catalogers.base import Distro as Distro
    from imagewise.sbom.model import (
        TYPES as TYPES,
        Package as Package,
        PackageLocation as PackageLocation,
    )
    from imagewise.sbom.visitor import CatalogVisitor as CatalogVisitor

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Catalog": "imagewise.sbom.catalog",
        "Skipped": "imagewise.sbom.catalog",
        "base_layer_count": "imagewise.baseimage",
        "catalog_from_visitor": "imagewise.sbom.catalog",
        "CATALOGERS": "imagewise.sbom.catalogers:ALL",
        "Distro": "imagewise.sbom.catalogers.base",
        "TYPES": "imagewise.sbom.model",
        "Package": "imagewise.sbom.model",
        "PackageLocation": "imagewise.sbom.model",
        "CatalogVisitor": "imagewise.sbom.visitor",
    },
)
