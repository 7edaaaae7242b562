"""``imagewise deprecate``: attach a deprecation record to an image's digest (the record and its
lookup: :mod:`imagewise.registry.referrers`)."""

from __future__ import annotations

from datetime import datetime, timezone

from imagewise.errors import NotFound, UsageError
from imagewise.registry.referrers import Deprecation, attach, parse_sunset


def deprecate(
    image: str,
    *,
    reason: str,
    sunset: str | None = None,
    replacement: str | None = None,
    insecure: bool = False,
    now: datetime | None = None,
) -> DeprecateResult:
    """Attach a deprecation record to IMAGE's digest (``sunset``: an ISO date)."""
    from imagewise.reference import parse_transport
    from imagewise.sources.registry import client_for

    if not reason.strip():
        raise UsageError("deprecate needs --reason TEXT (what users should know)")
    transport = parse_transport(image)
    if not transport.is_registry or transport.reference is None:
        raise UsageError(f"{image}: deprecate needs a registry image (docker://REGISTRY/REPO:TAG)")
    ref = transport.reference
    client = client_for(ref, insecure)
    source = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    try:
        subject = client.head_manifest(ref.repository, source)
    except NotFound:
        raise UsageError(f"{ref}: not found in the registry (no such tag or digest)") from None
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    dep = Deprecation(
        str(subject.digest), reason.strip(), parse_sunset(sunset), replacement or "", when
    )
    record, where = attach(client, ref.repository, subject, dep)
    dep.record = record
    return DeprecateResult(ref.name, dep, where)


class DeprecateResult:
    __slots__ = ("repository", "deprecation", "listed_as")  # noqa: RUF023

    def __init__(self, repository: str, deprecation: Deprecation, listed_as: str) -> None:
        self.repository, self.deprecation, self.listed_as = repository, deprecation, listed_as

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "listed_as": self.listed_as,
            **self.deprecation.to_json(),
        }


def deprecate_table(result: DeprecateResult) -> str:
    d = result.deprecation
    return (
        f"{result.repository}@{d.digest[:19]} deprecated: {d.summary()}\n"
        f"  record {d.record[:19]} ({'referrers API' if result.listed_as == 'referrers' else 'tag ' + result.listed_as})\n"
    )
