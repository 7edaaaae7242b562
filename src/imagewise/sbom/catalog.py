"""``catalog(image)``: what is installed in an image, where, and from which layer.

The result is the final filesystem's view. Each package names the layer that introduced it (the
earliest layer from which its evidence file carried it without interruption) and whether that
layer belongs to the base image.

Base-image rule: an explicit ``base_layers`` argument, else ``imagewise.baseimage.base_layer_count``
(the one rule the analysis and scan use too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagewise import progress
from imagewise.baseimage import base_layer_count
from imagewise.record import Record
from imagewise.sbom.catalogers.base import Distro
from imagewise.sbom.catalogers.npm import LOCK_CATALOGERS
from imagewise.sbom.model import Package, PackageLocation
from imagewise.sbom.purl import purl_for
from imagewise.sbom.visitor import CatalogVisitor, Version

if TYPE_CHECKING:
    from imagewise.cache import LayerCache
    from imagewise.sources.base import Image

#: catalogers whose records complete other packages instead of being packages
_AUXILIARY = frozenset({"deb-copyright", "python-direct-url"})


class Skipped(Record):
    """An evidence file that was recognised but not (fully) read, and why."""

    __slots__ = ("path", "layer", "cataloger", "reason")  # noqa: RUF023 - in field order

    def __init__(self, path: str, layer: str, cataloger: str, reason: str) -> None:
        self.path = path
        self.layer = layer
        self.cataloger = cataloger
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        return {
            "path": self.path,
            "layer": self.layer,
            "cataloger": self.cataloger,
            "reason": self.reason,
        }


class Catalog(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "packages",
        "distro",
        "skipped",
        "base_layers",  # number of layers that belong to the base image
        "base_rule",  # how base_layers was decided
        "source",  # the image reference or SBOM file cataloged
        "metadata",
    )
    _uncompared = ("metadata",)

    def __init__(
        self,
        packages: tuple[Package, ...],
        distro: Distro | None = None,
        skipped: tuple[Skipped, ...] = (),
        base_layers: int | None = None,
        base_rule: str = "",
        source: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.packages = packages
        self.distro = distro
        self.skipped = skipped
        self.base_layers = base_layers
        self.base_rule = base_rule
        self.source = source
        self.metadata = {} if metadata is None else metadata


def _introduced(versions: list[Version], key: tuple[str, str, str]) -> int:
    """Index into ``versions`` of the earliest copy from which ``key`` was present throughout."""
    i = len(versions) - 1
    while i > 0 and any(
        (p.type, p.name, p.version) == key for p in versions[i - 1].parsed.packages
    ):
        i -= 1
    return i


def build_catalog(
    visitor: CatalogVisitor, base_layers: int | None = None, base_rule: str = "", source: str = ""
) -> Catalog:
    """Turn what the visitor saw into the final, deduplicated package list."""
    ev = visitor.evidence
    diff = visitor.diff_ids

    def layer_id(i: int) -> str:
        return diff[i] if 0 <= i < len(diff) else ""

    distro: Distro | None = None
    rank = -1
    copyright: dict[str, tuple[str, ...]] = {}
    direct_urls: dict[str, str] = {}  # dist-info directory -> PEP 610 vcs url
    skipped: list[Skipped] = []
    for path, versions in ev.items():
        last = versions[-1]
        if last.parsed.skipped:
            skipped.append(Skipped(path, layer_id(last.layer), last.cataloger, last.parsed.skipped))
        if last.parsed.distro and last.parsed.distro_rank > rank:
            distro, rank = last.parsed.distro, last.parsed.distro_rank
        if last.cataloger == "deb-copyright" and last.parsed.packages:
            copyright[last.parsed.packages[0].name] = last.parsed.packages[0].licenses
        if last.cataloger == "python-direct-url" and last.parsed.packages:
            rec = last.parsed.packages[0]
            direct_urls[rec.name] = str(rec.metadata.get("vcs_url", ""))

    installed_js = _installed_js_roots(ev)
    merged: dict[tuple[str, str, str, str], Package] = {}
    for path in sorted(ev):
        versions = ev[path]
        last = versions[-1]
        if last.cataloger in _AUXILIARY:
            continue
        if last.cataloger in LOCK_CATALOGERS and path.rpartition("/")[0] in installed_js:
            continue  # installed node_modules are the truth; the lockfile only declares
        for pkg in last.parsed.packages:
            vcs = direct_urls.get(path.rsplit("/", 1)[0]) if pkg.type == "pypi" else None
            if vcs:
                pkg = _replace(pkg, metadata={**pkg.metadata, "vcs_url": vcs})
            key = (pkg.type, pkg.name, pkg.version)
            first = versions[_introduced(versions, key)]
            locs = [PackageLocation(layer_id(first.layer), path, first.layer)]
            if last.layer != first.layer:
                locs.append(PackageLocation(layer_id(last.layer), path, last.layer))
            pkg = _finish(pkg, distro, copyright, tuple(locs), base_layers)
            mkey = (pkg.type, pkg.name, pkg.version, pkg.purl)
            if mkey in merged:
                old = merged[mkey]
                all_locs = sorted(
                    set(old.locations) | set(pkg.locations),
                    key=lambda x: (x.layer_index or 0, x.path),
                )
                from_base = _from_base(all_locs[0].layer_index, base_layers)
                merged[mkey] = _replace(old, locations=tuple(all_locs), from_base=from_base)
            else:
                merged[mkey] = pkg
    packages = sorted(merged.values(), key=lambda p: (p.type, p.name.lower(), p.version, p.purl))
    skipped.sort(key=lambda s: (s.path, s.reason))
    return Catalog(tuple(packages), distro, tuple(skipped), base_layers, base_rule, source)


def _installed_js_roots(ev: dict[str, list[Version]]) -> set[str]:
    """Directories with an installed ``node_modules`` (a package.json under DIR/node_modules/)."""
    roots: set[str] = set()
    for path, versions in ev.items():
        if versions[-1].cataloger == "javascript-package" and "node_modules/" in path:
            head = path.split("/node_modules/", 1)[0] if "/node_modules/" in path else ""
            roots.add("" if path.startswith("node_modules/") else head)
    return roots


def _from_base(index: int | None, base_layers: int | None) -> bool | None:
    if base_layers is None or index is None:
        return None
    return index < base_layers


def _replace(p: Package, **changes: Any) -> Package:
    return p.replace(**changes)


def _finish(
    pkg: Package,
    distro: Distro | None,
    copyright: dict[str, tuple[str, ...]],
    locs: tuple[PackageLocation, ...],
    base_layers: int | None,
) -> Package:
    licenses = pkg.licenses
    if pkg.type == "deb" and not licenses:
        licenses = copyright.get(pkg.name, ())
    os_pkg = pkg.type in ("apk", "deb", "rpm")
    return _replace(
        pkg,
        purl=purl_for(pkg, distro if os_pkg else None),
        licenses=licenses,
        locations=locs,
        from_base=_from_base(locs[0].layer_index, base_layers),
        distro=distro.label if (os_pkg and distro) else "",
    )


def catalog(
    image: Image,
    reporter: progress.Reporter = progress.NULL,
    base_layers: int | None = None,
    cache: LayerCache | None = None,
    checked: LayerCache | None = None,
) -> Catalog:
    """Catalog ``image`` in one pass over its layers (layer results reused from ``cache``;
    local files checked before not hashed again with ``checked``, see ``run_pass``)."""
    from imagewise.layers.passes import run_pass

    visitor = _CatalogAtEnd(base_layers)
    run_pass(image, [visitor], reporter, cache, checked=checked)
    assert visitor.catalog is not None  # end_image ran
    return visitor.catalog


class _CatalogAtEnd(CatalogVisitor):
    """Builds the Catalog in ``end_image``, while the pass's digest checks may still run (the
    pass returns it only once they have passed): the packages of the Node app's 66,000 files
    are ready 9 ms sooner than after the pass."""

    def __init__(self, base_layers: int | None) -> None:
        super().__init__()
        self._base_layers = base_layers
        self.catalog: Catalog | None = None

    def end_image(self, image: Image) -> None:
        super().end_image(image)
        self.catalog = catalog_from_visitor(self, image, self._base_layers)


def catalog_from_visitor(
    visitor: CatalogVisitor, image: Image, base_layers: int | None = None
) -> Catalog:
    """The Catalog of a visitor that ran in someone else's pass (e.g. ``imagewise check``)."""
    count: int | None
    if base_layers is not None:
        count, rule = base_layers, "given"
    else:
        count, rule = base_layer_count(image)
    return build_catalog(visitor, count, rule, image.reference)
