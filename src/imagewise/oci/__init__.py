"""OCI / Docker value types: digests, media types, descriptors, manifests, configs (immutable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.lazy import exports

if TYPE_CHECKING:
    from imagewise.oci.digest import Digest as Digest
    from imagewise.oci.model import (
        Descriptor as Descriptor,
        ImageConfig as ImageConfig,
        Index as Index,
        Manifest as Manifest,
        Platform as Platform,
        parse_manifest as parse_manifest,
    )

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Digest": "imagewise.oci.digest",
        "Descriptor": "imagewise.oci.model",
        "ImageConfig": "imagewise.oci.model",
        "Index": "imagewise.oci.model",
        "Manifest": "imagewise.oci.model",
        "Platform": "imagewise.oci.model",
        "parse_manifest": "imagewise.oci.model",
    },
)
