"""A repository's tags as the ``imagewise/tags/v1`` document, and its table."""

from __future__ import annotations

from typing import Any

#: the tags under which ``imagewise promote`` / ``rollback`` keep their records (release.history)
HISTORY_PREFIX = "imagewise-history."


def is_record_tag(tag: str) -> bool:
    return tag.startswith(HISTORY_PREFIX)


def list_tags(repository: str, *, insecure: bool = False) -> dict[str, Any]:
    """Every tag of REPOSITORY (all pages). A ``docker://`` prefix is accepted; a tag or digest
    in the reference is ignored. The records of ``imagewise promote`` / ``rollback``
    (``imagewise-history.*``) are counted in ``history_records``, not listed."""
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    every = client_for(ref, insecure).list_tags(ref.repository)
    tags = [t for t in every if not is_record_tag(t)]
    doc: dict[str, Any] = {"repository": ref.name, "tags": tags}
    if len(tags) != len(every):
        doc["history_records"] = len(every) - len(tags)
    return doc


def tags_table(doc: dict[str, Any]) -> str:
    """One tag a line."""
    return "".join(f"{tag}\n" for tag in doc["tags"])
