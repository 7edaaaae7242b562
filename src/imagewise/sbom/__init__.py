"""Software bill of materials: catalogers (visitors in the single pass), the final-filesystem
package list with layer and base-image attribution, encoders and an SBOM reader.

``catalog(image)`` runs its own pass; ``CatalogVisitor`` + ``catalog_from_visitor`` let another
command (``imagewise check``) put the catalogers into its pass alongside other visitors.
"""

from __future__ import annotations

from imagewise.sbom.catalog import Catalog, Skipped, base_layer_count, catalog, catalog_from_visitor
from imagewise.sbom.catalogers import ALL as CATALOGERS
from imagewise.sbom.catalogers.base import Distro
from imagewise.sbom.model import TYPES, Package, PackageLocation
from imagewise.sbom.visitor import CatalogVisitor

__all__ = ["CATALOGERS", "TYPES", "Catalog", "CatalogVisitor", "Distro", "Package",
           "PackageLocation", "Skipped", "base_layer_count", "catalog", "catalog_from_visitor"]
