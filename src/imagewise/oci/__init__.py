"""OCI / Docker value types: digests, media types, descriptors, manifests, configs (immutable)."""

from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, ImageConfig, Index, Manifest, Platform, parse_manifest

__all__ = ["Descriptor", "Digest", "ImageConfig", "Index", "Manifest", "Platform", "parse_manifest"]
