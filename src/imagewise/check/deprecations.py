"""Which deprecation records ``check`` reports: the checked image's own (its manifest's and its
index's digest) and its base image's, read from the image's registry only.

The base is the one the image records (``org.opencontainers.image.base.name`` /
``.base.digest``) and, with ``--dockerfile``, the final stage's ``FROM``. A base is looked up
only when it lives on the same registry as the checked image: ``check`` contacts no registry
the image did not come from (``imagewise outdated`` looks bases up wherever they are). A lookup
that fails is a warning, never a failed check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.errors import ImagewiseError, InvalidReference

if TYPE_CHECKING:
    from imagewise.reference import TransportRef
    from imagewise.registry.referrers import Deprecation
    from imagewise.sources.base import Image


def find_deprecations(
    tref: TransportRef, image: Image, bases: list[str], insecure: bool
) -> tuple[list[tuple[str, Deprecation]], list[str]]:
    """(what, record) pairs for the image and its bases, and warnings for failed lookups."""
    if not tref.is_registry or tref.reference is None:
        return [], []  # (before the imports: a local image needs no registry client)
    from imagewise.reference import ImageReference
    from imagewise.registry.referrers import lookup
    from imagewise.sources.registry import client_for

    ref = tref.reference
    client = client_for(ref, insecure)
    found: list[tuple[str, Deprecation]] = []
    warnings: list[str] = []
    own = [image.digest] + ([image.index.digest] if image.index is not None else [])
    try:
        for digest in own:
            dep = lookup(client, ref.repository, digest)
            if dep is not None:
                found.append((f"image {ref.name}@{str(digest)[:19]}", dep))
                break
    except ImagewiseError as e:
        warnings.append(f"deprecation of {ref.name} not looked up: {e}")
    seen: set[str] = set()
    for base in bases:
        try:
            bref = ImageReference.parse(base)
        except InvalidReference:
            continue
        if bref.host != ref.host or bref.name in seen:
            continue
        seen.add(bref.name)
        try:
            where = str(bref.digest) if bref.digest else (bref.tag or "latest")
            digest = client.head_manifest(bref.repository, where).digest
            dep = lookup(client, bref.repository, digest)
        except ImagewiseError as e:
            warnings.append(f"deprecation of base {base} not looked up: {e}")
            continue
        if dep is not None:
            found.append((f"base image {base}", dep))
    return found, warnings
