"""The deprecation records of a Dockerfile's base images, read from their registries (for
``lint --check-bases`` and IW113). Plain ``lint`` never calls this: it stays offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagewise.dockerfile.model import Dockerfile


def deprecated_bases(
    df: Dockerfile, insecure: bool = False, warn: list[str] | None = None
) -> tuple[tuple[str, str], ...]:
    """(image as the FROM names it, summary) for every deprecated base of ``df``. A base whose
    registry cannot be asked is skipped, with a line in ``warn``."""
    from imagewise.errors import ImagewiseError, InvalidReference
    from imagewise.reference import ImageReference
    from imagewise.registry.referrers import lookup
    from imagewise.sources.registry import client_for

    aliases: set[str] = set()
    out: list[tuple[str, str]] = []
    for stage in df.stages:
        image = stage.base_image
        if "$" in image or image.lower() == "scratch" or image.lower() in aliases:
            aliases.add((stage.alias or "").lower())
            continue
        aliases.add((stage.alias or "").lower())
        if any(image == seen for seen, _ in out):
            continue
        try:
            ref = ImageReference.parse(image)
            client = client_for(ref, insecure)
            where = str(ref.digest) if ref.digest else (ref.tag or "latest")
            dep = lookup(client, ref.repository, client.head_manifest(ref.repository, where).digest)
        except InvalidReference:
            continue
        except ImagewiseError as e:
            if warn is not None:
                warn.append(f"{df.filename}: base {image} not checked for deprecation: {e}")
            continue
        if dep is not None:
            past = " (past its sunset)" if dep.past_sunset() else ""
            out.append((image, dep.summary() + past))
    return tuple(out)
