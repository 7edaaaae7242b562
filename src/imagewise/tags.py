"""A repository's tags as the ``imagewise/tags/v1`` document, and its table."""

from __future__ import annotations

from typing import Any

#: the tags under which ``imagewise promote`` / ``rollback`` keep their records (release.history)
HISTORY_PREFIX = "imagewise-history."


def is_record_tag(tag: str) -> bool:
    return tag.startswith(HISTORY_PREFIX)


def is_referrers_tag(tag: str) -> bool:
    """The OCI referrers tag schema's fallback tag ``sha256-<64 hex>`` (an index of the
    digest's referrers, e.g. ``imagewise deprecate`` records)."""
    return len(tag) == 71 and tag.startswith("sha256-") and all(c in _HEX for c in tag[7:])


def is_bookkeeping_tag(tag: str) -> bool:
    """A tag that names no release: promotion history records and referrers indexes."""
    return is_record_tag(tag) or is_referrers_tag(tag)


_HEX = frozenset("0123456789abcdef")


def list_tags(repository: str, *, insecure: bool = False) -> dict[str, Any]:
    """Every tag of REPOSITORY (all pages). A ``docker://`` prefix is accepted; a tag or digest
    in the reference is ignored. The records of ``imagewise promote`` / ``rollback``
    (``imagewise-history.*``) are counted in ``history_records`` and the referrers fallback
    tags (``sha256-<hex>``) in ``referrers_tags``, not listed."""
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    every = client_for(ref, insecure).list_tags(ref.repository)
    tags = [t for t in every if not is_bookkeeping_tag(t)]
    doc: dict[str, Any] = {"repository": ref.name, "tags": tags}
    records = sum(map(is_record_tag, every))
    if records:
        doc["history_records"] = records
    referrers = sum(map(is_referrers_tag, every))
    if referrers:
        doc["referrers_tags"] = referrers
    return doc


def tags_table(doc: dict[str, Any]) -> str:
    """One tag a line."""
    return "".join(f"{tag}\n" for tag in doc["tags"])
