"""The cataloging visitor: runs the declared catalogers inside the single pass over each layer and
keeps, per evidence file, the versions each layer wrote, so the result is the final filesystem's
view (a whiteout, an opaque directory or an overwrite by a non-evidence entry removes a file's
packages) and each package can be traced to the layer that introduced it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagewise.layers.merged import PathTable
from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.record import Record
from imagewise.sbom.catalogers import ALL, BY_ID
from imagewise.sbom.catalogers.base import Cataloger, Distro, FileInfo, Parsed
from imagewise.sbom.model import Package

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.sources.base import Image, Layer


class Version(Record):
    """One layer's copy of an evidence file and what the cataloger made of it."""

    __slots__ = ("layer", "cataloger", "parsed")  # noqa: RUF023 - in field order

    def __init__(self, layer: int, cataloger: str, parsed: Parsed) -> None:
        self.layer = layer
        self.cataloger = cataloger
        self.parsed = parsed


class CatalogVisitor(Visitor):
    """Subscribe this to the single pass; read ``evidence`` (or use ``sbom.catalog``) afterwards."""

    name = "sbom-catalog"
    #: part of the layer-cache key: bump whenever a cataloger's output for the same bytes changes
    version = "2"

    def __init__(self, catalogers: tuple[Cataloger, ...] = ALL) -> None:
        self.catalogers = catalogers
        self._unfiltered = any(not (c.endings or c.prefixes or c.executables) for c in catalogers)
        self._endings = tuple({e for c in catalogers for e in c.endings})
        self._prefixes = tuple({p for c in catalogers for p in c.prefixes})
        self._executables = any(c.executables for c in catalogers)
        self.diff_ids: list[str] = []
        #: path -> versions of the file still visible, oldest first (cleared when deleted)
        self.evidence: dict[str, list[Version]] = {}
        self._layer_parsed: dict[str, tuple[str, Parsed]] = {}
        #: the evidence paths under the OCI layer rules: a hidden file's versions are dropped
        self._paths = PathTable(lambda path, layer: self.evidence.pop(path, None))
        self._index = 0
        self._restoring = False
        self._restored: set[str] | dict[str, Any] = set()  # the paths of a restored result
        self._match: tuple[object, Cataloger | None] = (None, None)

    # -- selection -------------------------------------------------------------------------------
    def _cataloger_for(self, entry: Entry) -> Cataloger | None:
        # asked twice of every entry (wants_content, then visit): the same object, unchanged
        # in between, so the second answer is the first
        if self._match[0] is entry:
            return self._match[1]
        found = self._select(entry.path, entry.kind, entry.size, entry.mode)
        self._match = (entry, found)
        return found

    def _select(self, path: str, kind: Kind, size: int, mode: int) -> Cataloger | None:
        """The cataloger that takes this file, if any: the declared pre-filter first (most files
        are rejected with one or two string tests), then each cataloger's own test."""
        if kind is not Kind.FILE:
            return None
        if not (
            self._unfiltered
            or (self._executables and mode & 0o111 and size > 4096)
            or path.lower().endswith(self._endings)
            or path.startswith(self._prefixes)
        ):
            return None
        info = FileInfo(path, size, mode)
        return next((c for c in self.catalogers if c.selects(info)), None)

    # -- visitor protocol ------------------------------------------------------------------------
    def begin_image(self, image: Image) -> None:
        self.diff_ids = [str(layer.diff_id or layer.digest) for layer in image.layers]
        self.evidence.clear()
        self._paths = PathTable(lambda path, layer: self.evidence.pop(path, None))

    def begin_layer(self, index: int, layer: Layer) -> None:
        while len(self.diff_ids) <= index:
            self.diff_ids.append("")
        if not self.diff_ids[index]:
            self.diff_ids[index] = str(layer.diff_id or layer.digest)
        self._layer_parsed = {}
        self._index = index
        self._restoring = False
        self._restored = set()
        self._match = (None, None)

    def wants_content(self, entry: Entry) -> bool:
        c = self._cataloger_for(entry)
        return (
            c is not None and c.needs_content and entry.size <= c.max_size and not self._restoring
        )

    def visit(self, entry: Entry) -> None:
        kind = entry.kind
        if kind is Kind.WHITEOUT or kind is Kind.OPAQUE:
            self._paths.apply(entry.path, kind, self._index)
            return
        if self._restoring and entry.path not in self._restored:
            # no cataloger took this path (it took every path it has a result for): as below
            self._paths.apply(entry.path, kind, self._index)
            return
        c = self._cataloger_for(entry)
        if c is None:
            self._paths.apply(entry.path, kind, self._index)  # hides an evidence file it replaces
            return
        if self._restoring:
            return
        self._layer_parsed[entry.path] = (c.id, self._parse(c, entry))

    batches = True

    def visit_batch(self, batch: EntryBatch) -> None:
        """:meth:`visit` over a run of plain entries: the pre-filter on the columns, an
        ``Entry`` made only for a file a cataloger takes."""
        apply, i = self._paths.apply, self._index
        if self._restoring:  # replayed from the cache: as visit() does for each entry
            restored = self._restored  # every path a cataloger took in this layer
            for path, kind in zip(batch.paths, batch.kinds, strict=True):
                if path not in restored:  # hides an evidence file it replaces
                    apply(path, kind, i)
            return
        unfiltered, executables = self._unfiltered, self._executables
        endings, prefixes = self._endings, self._prefixes
        catalogers = self.catalogers
        file = Kind.FILE
        for k, (path, kind, size, mode) in enumerate(
            zip(batch.paths, batch.kinds, batch.sizes, batch.modes)
        ):
            found = None
            if kind is file and (
                unfiltered
                or (executables and mode & 0o111 and size > 4096)
                or path.lower().endswith(endings)
                or path.startswith(prefixes)
            ):
                info = FileInfo(path, size, mode)
                found = next((c for c in catalogers if c.selects(info)), None)
            if found is None:
                apply(path, kind, i)  # hides an evidence file it replaces
            else:
                self._layer_parsed[path] = (found.id, self._parse(found, batch.entry(k)))

    def _parse(self, c: Cataloger, entry: Entry) -> Parsed:
        info = FileInfo(entry.path, entry.size, entry.mode)
        if entry.size > c.max_size:
            return Parsed(skipped=f"{entry.size} bytes, over the {c.id} limit of {c.max_size}")
        try:
            if not c.needs_content:
                import io

                return c.parse(info, io.BytesIO())
            with entry.open() as stream:
                return c.parse(info, stream)
        except Exception as e:  # noqa: BLE001 - a bad file is data, never a crash of the catalog
            return Parsed(skipped=f"{c.id}: {type(e).__name__}: {e}")

    def end_layer(self, index: int, layer: Layer) -> None:
        self._match = (None, None)  # the layer's last entry (and the reader it holds) goes
        ev, paths = self.evidence, self._paths
        for path, (cid, parsed) in self._layer_parsed.items():
            kept = paths.index.get(path)
            if kept is not None and kept.children is None:
                kept.layer = index  # rewritten: the earlier versions stay as its history
            else:
                paths.keep(path, False, index)
            ev.setdefault(path, []).append(Version(index, cid, parsed))
        self._layer_parsed = {}

    # -- per-layer cache hooks -------------------------------------------------------------------
    def layer_result(self, index: int, layer: Layer) -> object:
        return {path: [cid, parsed_to_json(p)] for path, (cid, p) in self._layer_parsed.items()}

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        self._restoring = True
        if isinstance(result, dict):
            self._restored = result  # every path a cataloger took in this layer
            self._layer_parsed = {
                path: (str(v[0]), parsed_from_json(v[1]))
                for path, v in result.items()
                if str(v[0]) in BY_ID
            }


# -- JSON round trip of parse results (layer cache) ----------------------------------------------


def _pkg_to_json(p: Package) -> dict[str, Any]:
    return {
        "name": p.name,
        "version": p.version,
        "type": p.type,
        "licenses": list(p.licenses),
        "source_name": p.source_name,
        "source_version": p.source_version,
        "metadata": p.metadata,
    }


def parsed_to_json(p: Parsed) -> dict[str, Any]:
    out: dict[str, Any] = {"packages": [_pkg_to_json(x) for x in p.packages]}
    if p.distro:
        d = p.distro
        out["distro"] = [
            d.id,
            d.version_id,
            d.name,
            d.pretty_name,
            d.version_codename,
            list(d.id_like),
        ]
        out["rank"] = p.distro_rank
    if p.skipped:
        out["skipped"] = p.skipped
    return out


def parsed_from_json(doc: dict[str, Any]) -> Parsed:
    pkgs = tuple(
        Package(
            name=x["name"],
            version=x["version"],
            type=x["type"],
            licenses=tuple(x.get("licenses") or ()),
            source_name=x.get("source_name", ""),
            source_version=x.get("source_version", ""),
            metadata=dict(x.get("metadata") or {}),
        )
        for x in doc.get("packages") or ()
    )
    distro = None
    if doc.get("distro"):
        d = doc["distro"]
        distro = Distro(d[0], d[1], d[2], d[3], d[4], tuple(d[5]))
    return Parsed(pkgs, distro, int(doc.get("rank", 0)), str(doc.get("skipped", "")))
