"""Secrets as a visitor of the single pass, and in the image config (Env, Labels, history).

Every file of every layer is considered, including files a later layer deletes or overwrites:
their bytes stay in the earlier layer's blob, so such findings say ``removed_later``.
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Any

from imagewise.findings import Finding, Location
from imagewise.layers.merged import PathTable
from imagewise.layers.model import Entry, Kind, Visitor
from imagewise.secrets.detect import (
    MAX_FILE_BYTES,
    SNIFF_BYTES,
    Hit,
    allowlisted_directory,
    config_name,
    in_place_scanner,
    named_values,
    plausible,
    plausible_name,
    scan_bytes,
    scan_content,
    scan_text,
)
from imagewise.secrets.mask import mask, redact_path
from imagewise.secrets.rules import BY_ID

if TYPE_CHECKING:
    from imagewise.archive.batch import EntryBatch
    from imagewise.oci.model import ImageConfig
    from imagewise.sources.base import Image, Layer


#: buffers a batch's content is searched in place in (a ``pread`` view is sliced instead)
_BUFFERS = (bytes, bytearray, memoryview, mmap.mmap)


def _finding(hit: Hit, loc: Location, where: str) -> Finding:
    rule = hit.rule
    subject = f" ({hit.context})" if hit.context else ""
    return Finding(
        rule=f"secret/{rule.id}",
        severity=rule.severity,
        title=rule.title,
        message=f"{rule.title}{subject} in {where}: {hit.masked}",
        location=loc,
        fix=rule.info.fix,
        extra={"masked": hit.masked},
    )


class SecretsVisitor(Visitor):
    """Collects secret findings from file content across all layers. Results in ``findings``."""

    name = "secrets"
    offload = "layer"  # its content work may run in the pass's partner process
    version = "2"  # 2: one mask for every output (fixed prefix, fixed stars), masked paths

    def __init__(self, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.max_file_bytes = max_file_bytes
        self.findings: list[Finding] = []
        self._layer: list[Finding] = []
        # the real paths of the findings (theirs are masked when a secret is in the path)
        self._raw: list[str] = []
        self._layer_raw: list[str] = []
        self._index = 0
        self._diff_id = ""
        #: the paths with findings under the OCI layer rules; a hidden one marks its findings
        self._paths = PathTable(self._hidden)
        self._by_path: dict[str, list[int]] = {}  # real path -> indexes into findings
        self.files_read = 0
        self._asked: Entry | None = None  # wants_content's last question and answer
        self._answer = False
        self._in_place = in_place_scanner()  # with the native prefilter

    def begin_layer(self, index: int, layer: Layer) -> None:
        self._index = index
        self._diff_id = str(layer.diff_id or layer.digest)
        self._layer = []
        self._layer_raw = []

    def wants_content(self, entry: Entry) -> bool:
        if entry is self._asked:  # the pass asks first, then visit() asks again
            return self._answer
        self._asked = entry
        self._answer = answer = (
            entry.kind is Kind.FILE
            and entry.size <= self.max_file_bytes
            and plausible(entry.path, entry.size)
        )
        return answer

    def visit(self, entry: Entry) -> None:
        if self._by_path:
            self._paths.apply(entry.path, entry.kind, self._index)
        if not entry.has_content or not self.wants_content(entry):  # e.g. replayed from cache
            return
        try:
            f = entry.open()
        except ValueError:  # replayed from the cache, or content withheld
            return
        head = f.read(SNIFF_BYTES)
        self.files_read += 1
        if b"\0" in head:  # binary: the rest is never read
            return
        data = head + f.read(self.max_file_bytes - len(head)) if len(head) == SNIFF_BYTES else head
        self._scan(entry.path, data)

    batches = True

    def visit_batch(self, batch: EntryBatch) -> None:
        """:meth:`visit` over a run of plain entries: the files worth reading are read from
        the batch's buffer (the first 8 KiB first: a binary file's rest is never copied)."""
        file, index = Kind.FILE, self._index
        if not batch.has_content:  # replayed from the cache: as visit() with no content
            if self._by_path:
                apply = self._paths.apply
                for path, kind in zip(batch.paths, batch.kinds, strict=True):
                    apply(path, kind, index)
            return
        max_bytes = min(self.max_file_bytes, MAX_FILE_BYTES)  # plausible's bound too
        directory, allowed = None, False  # a batch's files come directory by directory
        buffer = batch.buf
        in_place = self._in_place if isinstance(buffer, _BUFFERS) else None
        starts = batch.starts() if in_place is not None else ()
        for k, (path, kind, size) in enumerate(zip(batch.paths, batch.kinds, batch.sizes)):
            if self._by_path:  # (a hidden file's findings are dropped from it as it goes)
                self._paths.apply(path, kind, index)
            if kind is not file or size > max_bytes or size <= 0:
                continue
            # plausible(path, size), its directory's answer asked once per directory
            parent, _, name = path.rpartition("/")
            if parent != directory:
                directory, allowed = parent, not allowlisted_directory(parent)
            name = name.lower()
            if not allowed or not plausible_name(name):
                continue
            self.files_read += 1
            if in_place is not None:  # searched where it lies, copied only if a rule may match
                hits = in_place(buffer, starts[k], size, config_name(name))
                if hits:
                    self._found(path, hits)
                continue
            head = batch.content(k, SNIFF_BYTES)
            if b"\0" in head:
                continue
            data = head + batch.content(k, size, len(head)) if size > len(head) else head
            self._found(path, scan_content(data, config_name(name)))

    def _scan(self, raw: str, data: bytes) -> None:
        """The findings in one file's ``data`` (at the real path ``raw``), for this layer."""
        self._found(raw, scan_bytes(data, raw))

    def _found(self, raw: str, hits: list[Hit]) -> None:
        path = redact_path(raw) if hits else ""
        for hit in hits:
            loc = Location(layer=self._diff_id, layer_index=self._index, path=path, line=hit.line)
            self._layer.append(_finding(hit, loc, f"{path}:{hit.line}"))
            self._layer_raw.append(raw)

    def _hidden(self, path: str, layer: int) -> None:
        """A later layer deleted or replaced a file with findings: note it on the findings."""
        for i in self._by_path.pop(path, ()):
            f = self.findings[i]
            self.findings[i] = Finding(
                f.rule,
                f.severity,
                f.title,
                f.message,
                f.location,
                f.fix,
                extra={**f.extra, "removed_later": True},
            )

    def end_layer(self, index: int, layer: Layer) -> None:
        for finding, raw in zip(self._layer, self._layer_raw, strict=True):
            if raw not in self._paths.index:
                self._paths.keep(raw, False, index)
            self._by_path.setdefault(raw, []).append(len(self.findings))
            self.findings.append(finding)
            self._raw.append(raw)
        self._layer = []
        self._layer_raw = []

    # --- layer result cache ----------------------------------------------------------------
    def layer_result(self, index: int, layer: Layer) -> object:
        return [
            {
                "rule": f.rule,
                "line": f.location.line,
                "path": f.location.path,
                "masked": f.extra.get("masked", ""),
                "message": f.message,
            }
            for f in self._layer
        ]

    def restore_layer(self, index: int, layer: Layer, result: object) -> None:
        self._layer = []
        self._layer_raw = []
        for d in result if isinstance(result, list) else ():
            rule = BY_ID.get(str(d.get("rule", "")).split("/", 1)[-1])
            if rule is None:
                continue
            loc = Location(layer=self._diff_id, layer_index=index, path=d["path"], line=d["line"])
            self._layer.append(
                Finding(
                    f"secret/{rule.id}",
                    rule.severity,
                    rule.title,
                    d["message"],
                    loc,
                    rule.info.fix,
                    extra={"masked": d["masked"]},
                )
            )
            self._layer_raw.append(d["path"])


# ------------------------------------------------------------------------------- image config
def _config_hits(field: str, text: str, loc: Location) -> list[Finding]:
    out = [_finding(h, loc, field) for h in scan_text(text, config_like=False)]
    named = BY_ID["password-assignment"]
    for name, value, start, end in named_values(text):
        out.append(_finding(Hit(named, 0, mask(value), name, start, end), loc, field))
    return out


def scan_config(config: ImageConfig, image: Image | None = None) -> list[Finding]:
    """Secrets in the image config: ``Env``, ``Labels`` and each history ``created_by``
    (which records build arguments as ``|N NAME=value``)."""
    out: list[Finding] = []
    for i, env in enumerate(config.env):
        out += _config_hits(f"config.Env[{i}]", env, Location(path=f"config.Env[{i}]"))
    for key, value in sorted(config.labels.items()):
        field = f"config.Labels[{key}]"
        out += _config_hits(field, f"{key}={value}", Location(path=field))
    layer_index = 0
    for i, h in enumerate(config.history):
        loc = Location(path=f"history[{i}].created_by")
        if not h.empty_layer:
            layer = image.layers[layer_index] if image and layer_index < len(image.layers) else None
            loc = Location(
                path=f"history[{i}].created_by",
                layer_index=layer_index,
                layer=str(layer.diff_id or layer.digest) if layer else "",
            )
            layer_index += 1
        out += _config_hits(f"history[{i}].created_by", h.created_by, loc)
    return _dedupe(out)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.rule, f.location.path, f.extra.get("masked", ""))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    """The ``secrets`` array of ``imagewise/scan/v1``."""
    return [
        {
            "rule": f.rule,
            "layer": f.location.layer,
            "layer_index": f.location.layer_index,
            "path": f.location.path,
            "line": f.location.line,
            "masked": f.extra.get("masked", ""),
            "severity": str(f.severity),
            "removed_later": bool(f.extra.get("removed_later")),
        }
        for f in findings
    ]
