"""Records attached to a digest through the referrers API (OCI distribution 1.1) or its tag
schema fallback, and the one kind imagewise writes there itself: deprecation records.

A deprecation record is an OCI artifact manifest (artifactType
``application/vnd.imagewise.deprecation.v1+json``, empty config and layer) whose ``subject`` is
the deprecated manifest and whose annotations say why (``io.imagewise.deprecation.reason``),
until when (``.sunset``, a date) and what to use instead (``.replacement``). It is pushed by
digest; a registry with the referrers API lists it among the digest's referrers. Where the
registry has none, the spec's fallback is kept up to date as well: the tag ``sha256-<hex>``
holds an image index of the digest's referrers, and the record is added to it (the registry
keeps the record because the tagged index names it).
"""

from __future__ import annotations

import io
import json
from datetime import date

from imagewise.errors import NotFound, UsageError
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.registry.client import RegistryClient

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def empty_descriptor() -> dict[str, object]:
    """The OCI empty descriptor (``{}``), the config and layer of an artifact with no content."""
    return {"mediaType": EMPTY_TYPE, "digest": str(Digest.of(EMPTY)), "size": len(EMPTY)}


def ensure_empty_blob(client: RegistryClient, repo: str) -> None:
    digest = Digest.of(EMPTY)
    if not client.has_blob(repo, digest):
        client.upload_blob(repo, Descriptor(EMPTY_TYPE, digest, len(EMPTY)), io.BytesIO(EMPTY))


def artifact_manifest(
    artifact_type: str, subject: Descriptor, annotations: dict[str, str]
) -> bytes:
    """An OCI artifact manifest with no content (empty config and layer) about ``subject``:
    the shape of every record imagewise keeps in a registry (deprecations, promotions)."""
    empty = empty_descriptor()
    doc = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [empty],
        "subject": {
            "mediaType": subject.media_type,
            "digest": str(subject.digest),
            "size": subject.size,
        },
        "annotations": annotations,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


ARTIFACT_TYPE = "application/vnd.imagewise.deprecation.v1+json"
NS = "io.imagewise.deprecation."


class Deprecation:
    """What a deprecation record says about one digest."""

    __slots__ = ("digest", "reason", "sunset", "replacement", "at", "record")  # noqa: RUF023

    def __init__(
        self,
        digest: str,
        reason: str,
        sunset: date | None = None,
        replacement: str = "",
        at: str = "",
        record: str = "",
    ) -> None:
        self.digest, self.reason, self.sunset = digest, reason, sunset
        self.replacement, self.at, self.record = replacement, at, record

    def past_sunset(self, today: date | None = None) -> bool:
        return self.sunset is not None and (today or date.today()) >= self.sunset

    def summary(self) -> str:
        parts = [self.reason]
        if self.sunset:
            parts.append(f"sunset {self.sunset.isoformat()}")
        if self.replacement:
            parts.append(f"use {self.replacement}")
        return "; ".join(parts)

    def annotations(self) -> dict[str, str]:
        out = {NS + "reason": self.reason, "org.opencontainers.image.created": self.at}
        if self.sunset:
            out[NS + "sunset"] = self.sunset.isoformat()
        if self.replacement:
            out[NS + "replacement"] = self.replacement
        return out

    @classmethod
    def from_annotations(cls, digest: str, ann: dict[str, str], record: str) -> Deprecation:
        sunset = None
        if ann.get(NS + "sunset"):
            try:
                sunset = date.fromisoformat(ann[NS + "sunset"])
            except ValueError:
                sunset = None
        return cls(
            digest,
            str(ann.get(NS + "reason", "")),
            sunset,
            str(ann.get(NS + "replacement", "")),
            str(ann.get("org.opencontainers.image.created", "")),
            record,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "reason": self.reason,
            "sunset": self.sunset.isoformat() if self.sunset else None,
            "replacement": self.replacement or None,
            "at": self.at,
            "record": self.record,
        }


def parse_sunset(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"bad --sunset {text!r}: expected a date like 2027-06-30") from None


def fallback_tag(digest: Digest | str) -> str:
    """The referrers tag schema: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    return str(digest).replace(":", "-", 1)


def attach(
    client: RegistryClient, repo: str, subject: Descriptor, dep: Deprecation
) -> tuple[str, str]:
    """Push the record for ``subject``; returns (record digest, how it is listed: "referrers"
    or the fallback tag)."""
    raw = artifact_manifest(ARTIFACT_TYPE, subject, dep.annotations())
    ensure_empty_blob(client, repo)
    digest = Digest.of(raw)
    client.put_manifest(repo, str(digest), raw, media.OCI_MANIFEST)
    if client.referrers(repo, subject.digest) is not None:
        return str(digest), "referrers"
    tag = fallback_tag(subject.digest)
    try:
        index = json.loads(client.get_manifest(repo, tag, accept=media.OCI_INDEX).raw)
    except NotFound:
        index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}
    entry = {
        "mediaType": media.OCI_MANIFEST,
        "digest": str(digest),
        "size": len(raw),
        "artifactType": ARTIFACT_TYPE,
        "annotations": dep.annotations(),
    }
    index["manifests"] = [m for m in index.get("manifests", []) if m.get("digest") != str(digest)]
    index["manifests"].append(entry)
    client.put_manifest(repo, tag, json.dumps(index).encode(), media.OCI_INDEX)
    return str(digest), tag


def lookup(client: RegistryClient, repo: str, digest: Digest) -> Deprecation | None:
    """The newest deprecation record of ``digest`` (referrers API, else the fallback tag)."""
    found = client.referrers(repo, digest)
    if found is None:
        try:
            raw = client.get_manifest(repo, fallback_tag(digest), accept=media.OCI_INDEX).raw
        except NotFound:
            return None
        found = [m for m in json.loads(raw).get("manifests", []) if isinstance(m, dict)]
    records = [m for m in found if m.get("artifactType") == ARTIFACT_TYPE]
    if not records:
        return None
    deps = [
        Deprecation.from_annotations(str(digest), dict(m.get("annotations") or {}), m["digest"])
        for m in records
    ]
    return max(enumerate(deps), key=lambda item: (item[1].at, item[0]))[1]  # ties: listed later
