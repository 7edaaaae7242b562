"""``imagewise du``: space used by registries, repositories and OCI layouts, from the inventory.

* **logical** size of a tag: the bytes of its image (manifests, config, layers; an index with all
  its platforms), each blob once within the image. A repository's logical size is the sum over
  its distinct images; the total is the sum over every repository's.
* **unique** size: every blob counted once across everything given (blobs are content
  addressed, so a layer shared by 500 images is stored once).
* **shared** = logical - unique; **dedup ratio** = logical / unique.
* top blobs: the blobs the most images share (then the largest).
"""

from __future__ import annotations

from html import escape
from typing import Any

from imagewise.errors import UsageError
from imagewise.storage.inventory import Inventory
from imagewise.units import format_size


class SpaceReport:
    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        self.repositories: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []
        self.logical = 0
        self.unique = 0
        self.top_blobs: list[dict[str, Any]] = []
        self.untagged: list[dict[str, Any]] = []
        self.untagged_known = True
        self.requests: dict[str, int] = {}

    @property
    def shared(self) -> int:
        return self.logical - self.unique

    @property
    def dedup_ratio(self) -> float:
        return self.logical / self.unique if self.unique else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "logical_bytes": self.logical,
            "unique_bytes": self.unique,
            "shared_bytes": self.shared,
            "dedup_ratio": round(self.dedup_ratio, 4),
            "repositories": self.repositories,
            "tags": self.tags,
            "top_blobs": self.top_blobs,
            "untagged": self.untagged if self.untagged_known else None,
            "requests": self.requests,
        }


def space_report(inventories: list[Inventory], top: int = 10) -> SpaceReport:
    """The space report of one or more inventories (blobs counted once across all)."""
    report = SpaceReport([inv.source for inv in inventories])
    unique: dict[str, int] = {}
    sharing: dict[str, set[tuple[str, str, str]]] = {}
    for inv in inventories:
        for kind, n in inv.requests.items():
            report.requests[kind] = report.requests.get(kind, 0) + n
        for repo in sorted(inv.repositories.values(), key=lambda r: r.name):
            images: dict[str, dict[str, int]] = {}
            for tag, digest in sorted(repo.tags.items()):
                blobs = images.get(digest)
                if blobs is None:
                    blobs = images[digest] = inv.image_blobs(repo.name, digest)
                report.tags.append(
                    {
                        "repository": repo.name,
                        "tag": tag,
                        "digest": digest,
                        "bytes": sum(blobs.values()),
                    }
                )
            repo_unique: dict[str, int] = {}
            for digest, blobs in images.items():
                repo_unique.update(blobs)
                for b, size in blobs.items():
                    unique[b] = size
                    sharing.setdefault(b, set()).add((inv.source, repo.name, digest))
            logical = sum(sum(b.values()) for b in images.values())
            report.logical += logical
            report.repositories.append(
                {
                    "repository": repo.name,
                    "source": inv.source,
                    "tags": len(repo.tags),
                    "images": len(images),
                    "logical_bytes": logical,
                    "unique_bytes": sum(repo_unique.values()),
                }
            )
        if inv.untagged_known:
            for repo_name, digest in inv.untagged:
                blobs = inv.image_blobs(repo_name, digest)
                report.untagged.append(
                    {"repository": repo_name, "digest": digest, "bytes": sum(blobs.values())}
                )
        else:
            report.untagged_known = False
    report.unique = sum(unique.values())
    ranked = sorted(sharing.items(), key=lambda kv: (-len(kv[1]), -unique[kv[0]], kv[0]))
    report.top_blobs = [
        {"digest": d, "bytes": unique[d], "images": len(users)}
        for d, users in ranked[:top]
        if len(users) > 1
    ]
    return report


def _ratio(r: float) -> str:
    return f"{r:.2f}x"


def du_table(report: SpaceReport) -> str:
    lines = []
    width = max((len(r["repository"]) for r in report.repositories), default=10)
    lines.append(
        f"{'REPOSITORY':<{width}}  {'TAGS':>5}  {'IMAGES':>6}  {'LOGICAL':>10}  {'UNIQUE':>10}"
    )
    for r in report.repositories:
        lines.append(
            f"{r['repository']:<{width}}  {r['tags']:>5}  {r['images']:>6}  "
            f"{format_size(r['logical_bytes']):>10}  {format_size(r['unique_bytes']):>10}"
        )
    lines.append("")
    lines.append(
        f"total: logical {format_size(report.logical)}, unique {format_size(report.unique)}, "
        f"shared {format_size(report.shared)}, dedup ratio {_ratio(report.dedup_ratio)}"
    )
    if report.top_blobs:
        lines.append("most shared blobs:")
        for b in report.top_blobs:
            lines.append(
                f"  {b['digest'][:19]}  {format_size(b['bytes']):>10}  in {b['images']} images"
            )
    if not report.untagged_known:
        lines.append("untagged manifests: not listable through the registry API")
    elif report.untagged:
        total = sum(u["bytes"] for u in report.untagged)
        lines.append(f"untagged manifests: {len(report.untagged)} ({format_size(total)})")
    return "\n".join(lines) + "\n"


def du_html(report: SpaceReport) -> str:
    from imagewise.report.html import Section, render_page

    rows = "".join(
        f"<tr><td>{escape(r['repository'])}</td><td>{r['tags']}</td><td>{r['images']}</td>"
        f"<td>{escape(format_size(r['logical_bytes']))}</td>"
        f"<td>{escape(format_size(r['unique_bytes']))}</td></tr>"
        for r in report.repositories
    )
    summary = (
        f"<p>logical {escape(format_size(report.logical))}, unique "
        f"{escape(format_size(report.unique))}, shared {escape(format_size(report.shared))}, "
        f"dedup ratio {escape(_ratio(report.dedup_ratio))}</p>"
    )
    repos = Section(
        "repositories",
        "Repositories",
        summary
        + "<table><thead><tr><th>repository</th><th>tags</th><th>images</th><th>logical</th>"
        f"<th>unique</th></tr></thead><tbody>{rows}</tbody></table>",
    )
    blobs = "".join(
        f"<tr><td><code>{escape(b['digest'])}</code></td><td>{escape(format_size(b['bytes']))}"
        f"</td><td>{b['images']}</td></tr>"
        for b in report.top_blobs
    )
    shared = Section(
        "shared",
        "Most shared blobs",
        "<table><thead><tr><th>blob</th><th>size</th><th>images</th></tr></thead>"
        f"<tbody>{blobs}</tbody></table>",
    )
    tags = "".join(
        f"<tr><td>{escape(t['repository'])}</td><td>{escape(t['tag'])}</td>"
        f"<td><code>{escape(t['digest'][:19])}</code></td>"
        f"<td>{escape(format_size(t['bytes']))}</td></tr>"
        for t in report.tags
    )
    tag_section = Section(
        "tags",
        "Tags",
        "<table><thead><tr><th>repository</th><th>tag</th><th>digest</th><th>logical</th></tr>"
        f"</thead><tbody>{tags}</tbody></table>",
    )
    return render_page(
        "imagewise du", [repos, shared, tag_section], subtitle=", ".join(report.sources)
    )


def read_targets(
    refs: list[str],
    *,
    insecure: bool = False,
    configs: bool = False,
    storage_dir: str | None = None,
) -> list[Inventory]:
    """Inventories for ``du``-style targets: ``oci:DIR`` (or a layout directory), a registry
    host (``localhost:5000``: every repository), or repositories (``localhost:5000/app``; the
    repositories of one host are read together). ``storage_dir``: the registry's storage
    directory (one registry only), which lists its untagged manifests too."""
    from imagewise.registry.client import RegistryClient
    from imagewise.storage.inventory import read_layout, read_registry, split_targets

    layouts, hosts = split_targets(refs)
    if storage_dir is not None and len(hosts) != 1:
        raise UsageError("--storage-dir belongs to one registry: name exactly one")
    inventories = [read_layout(path, configs=configs) for path in layouts]
    for host, repos in hosts.items():
        client = RegistryClient.get(host, insecure=insecure)
        inventories.append(read_registry(client, repos, configs=configs, storage_dir=storage_dir))
    return inventories
