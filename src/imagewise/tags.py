"""A repository's tags as the ``imagewise/tags/v1`` document, and its table."""

from __future__ import annotations

from typing import Any


def list_tags(repository: str, *, insecure: bool = False) -> dict[str, Any]:
    """Every tag of REPOSITORY (all pages). A ``docker://`` prefix is accepted; a tag or digest
    in the reference is ignored."""
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    return {"repository": ref.name, "tags": client_for(ref, insecure).list_tags(ref.repository)}


def tags_table(doc: dict[str, Any]) -> str:
    """One tag a line."""
    return "".join(f"{tag}\n" for tag in doc["tags"])
