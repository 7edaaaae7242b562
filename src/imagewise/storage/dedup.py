"""``imagewise dedup``: storage the registry could share but does not.

* **Compression duplicates**: one uncompressed layer (one diff_id) stored as several blobs that
  differ only in compression (gzip and zstd, or two gzip levels). Every copy but the smallest
  is waste; recompress the images that use the others (``imagewise copy --compress``) or
  rebuild them with one compression.
* **Near-identical bases**: images whose bottom layers differ by digest but hold mostly the same
  files (the same base pulled on two dates, or rebuilt by two teams). Rebasing all of them onto
  one of those bottom layers saves the bytes of the others. Similarity is the share of
  (path, size) pairs two bottom layers have in common (Jaccard); only bottom layers are read,
  each once, as a file listing (no file content is kept).
"""

from __future__ import annotations

from typing import Any

from imagewise.storage.inventory import Inventory, ManifestInfo
from imagewise.units import format_size


class DedupReport:
    def __init__(self, sources: list[str], threshold: float) -> None:
        self.sources = sources
        self.threshold = threshold
        self.compression: list[dict[str, Any]] = []
        self.bases: list[dict[str, Any]] = []

    @property
    def compression_waste(self) -> int:
        return sum(c["waste_bytes"] for c in self.compression)

    @property
    def rebase_savings(self) -> int:
        return sum(b["saving_bytes"] for b in self.bases)

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "threshold": self.threshold,
            "compression_duplicates": self.compression,
            "compression_waste_bytes": self.compression_waste,
            "near_identical_bases": self.bases,
            "rebase_saving_bytes": self.rebase_savings,
        }


def _images(inv: Inventory) -> list[tuple[str, str, ManifestInfo]]:
    """(repository, tag, image manifest) of every tagged image (an index: each platform)."""
    out = []
    for repo in sorted(inv.repositories.values(), key=lambda r: r.name):
        for tag, digest in sorted(repo.tags.items()):
            for info in inv.closure(repo.name, digest):
                if not info.is_index and info.layers and not info.artifact_type:
                    out.append((repo.name, tag, info))
    return out


def _listing(inv: Inventory, repo: str, info: ManifestInfo) -> frozenset[tuple[str, int]]:
    from imagewise.archive.entry import Kind
    from imagewise.archive.walk import walk_layer

    assert inv.opener is not None
    desc = info.layers[0]
    with inv.opener(repo, desc) as blob:
        return frozenset(
            (e.path, e.size)
            for e in walk_layer(blob, desc.media_type, str(desc.digest))
            if e.kind is Kind.FILE
        )


def dedup_report(inventories: list[Inventory], threshold: float = 0.8) -> DedupReport:
    report = DedupReport([inv.source for inv in inventories], threshold)
    # -- one diff_id, several blobs --------------------------------------------------------------
    by_diff: dict[str, dict[str, int]] = {}
    users: dict[str, set[str]] = {}
    for inv in inventories:
        for repo, tag, info in _images(inv):
            for desc, diff_id in zip(info.layers, info.diff_ids, strict=False):
                by_diff.setdefault(diff_id, {})[str(desc.digest)] = desc.size
                users.setdefault(str(desc.digest), set()).add(f"{repo}:{tag}")
    for diff_id, blobs in sorted(by_diff.items()):
        if len(blobs) < 2:
            continue
        keep = min(blobs, key=lambda d: (blobs[d], d))
        report.compression.append(
            {
                "diff_id": diff_id,
                "blobs": [
                    {"digest": d, "bytes": blobs[d], "images": sorted(users[d])}
                    for d in sorted(blobs, key=lambda d: blobs[d])
                ],
                "keep": keep,
                "waste_bytes": sum(size for d, size in blobs.items() if d != keep),
            }
        )
    # -- near-identical bottom layers --------------------------------------------------------------
    bottoms: dict[str, dict[str, Any]] = {}
    for inv in inventories:
        for repo, tag, info in _images(inv):
            desc = info.layers[0]
            entry = bottoms.setdefault(
                str(desc.digest),
                {"inv": inv, "repo": repo, "info": info, "bytes": desc.size, "images": set()},
            )
            entry["images"].add(f"{repo}:{tag}")
    if len(bottoms) > 1:
        files = {d: _listing(b["inv"], b["repo"], b["info"]) for d, b in bottoms.items()}
        order = sorted(bottoms, key=lambda d: (-len(bottoms[d]["images"]), -bottoms[d]["bytes"], d))
        assigned: set[str] = set()
        for rep in order:
            if rep in assigned:
                continue
            members = []
            for other in order:
                if other == rep or other in assigned:
                    continue
                a, b = files[rep], files[other]
                union = len(a | b)
                similarity = len(a & b) / union if union else 1.0
                if similarity >= threshold:
                    members.append((other, similarity))
            if not members:
                continue
            assigned.add(rep)
            assigned.update(m for m, _ in members)
            rep_images = sorted(bottoms[rep]["images"])
            others = [
                {
                    "digest": d,
                    "bytes": bottoms[d]["bytes"],
                    "similarity": round(sim, 4),
                    "images": sorted(bottoms[d]["images"]),
                }
                for d, sim in members
            ]
            rebuild = sorted({i for o in others for i in o["images"]})
            report.bases.append(
                {
                    "base": {"digest": rep, "bytes": bottoms[rep]["bytes"], "images": rep_images},
                    "near_identical": others,
                    "saving_bytes": sum(o["bytes"] for o in others),
                    "suggestion": (
                        f"rebuild {', '.join(rebuild)} on the base that {rep_images[0]} uses "
                        f"(bottom layer {rep[:19]}): pin that base by digest in their "
                        "Dockerfiles so every image shares one copy"
                    ),
                }
            )
    return report


def dedup_table(report: DedupReport) -> str:
    lines = []
    if report.compression:
        lines.append("layers stored in more than one compression (same diff_id):")
        for c in report.compression:
            lines.append(f"  {c['diff_id'][:19]}  waste {format_size(c['waste_bytes'])}")
            for b in c["blobs"]:
                mark = "keep" if b["digest"] == c["keep"] else "    "
                lines.append(
                    f"    {mark} {b['digest'][:19]} {format_size(b['bytes']):>10}  "
                    f"{', '.join(b['images'])}"
                )
    if report.bases:
        lines.append(f"near-identical bases (similarity >= {report.threshold:.2f}):")
        for b in report.bases:
            lines.append(
                f"  base {b['base']['digest'][:19]} ({', '.join(b['base']['images'])}): "
                f"saves {format_size(b['saving_bytes'])}"
            )
            for o in b["near_identical"]:
                lines.append(
                    f"    {o['digest'][:19]} {format_size(o['bytes']):>10}  "
                    f"{o['similarity'] * 100:.0f}% same files  {', '.join(o['images'])}"
                )
            lines.append(f"    {b['suggestion']}")
    lines.append(
        f"compression duplicates waste {format_size(report.compression_waste)}; "
        f"rebasing would save {format_size(report.rebase_savings)}"
    )
    return "\n".join(lines) + "\n"
