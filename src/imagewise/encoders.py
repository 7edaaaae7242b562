"""Declared encoders: every output format of every kind of result, in one table.

An :class:`Encoder` is one ``--format`` value: its ``id``, the ``aliases`` also accepted for it,
the ``schema`` of imagewise's own JSON documents (``None`` for text, HTML and standard formats
such as SARIF or CycloneDX) and the function that encodes, as ``"module:function"``, imported
only when that format is written. A :class:`Formats` is the registry of one result kind; a
command's ``--format`` option takes its choices, default and help from it (``cli.common.
format_option``), so building a parser imports no renderer.

The human format is called ``table`` everywhere; ``tty`` and ``text``, the names some commands
used before, are aliases of it. An encoder with a ``schema`` returns the document's body (a
dict); :meth:`Formats.encode` adds the envelope ``{"schema": "imagewise/<kind>/v1", ...}`` here,
in one place, and writes it as indented JSON. Every other encoder returns its text.

Encoder functions take the result and, by keyword, whatever else the command knows (``color``,
``sources``, ``rules``, ``gates``, ...): each receives only the keywords it names.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagewise.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

#: the human format's one name, and the names it had before (still accepted everywhere)
HUMAN = "table"
HUMAN_ALIASES = ("tty", "text")


class Encoder(Record):
    __slots__ = ("id", "aliases", "schema", "encode", "ascii")  # noqa: RUF023
    id: str
    aliases: tuple[str, ...]
    schema: str | None  # "imagewise/<kind>/v1": the encoder returns the body, we add the envelope
    encode: str  # "module:function"
    ascii: bool  # JSON documents: escape non-ASCII characters (json.dumps's ensure_ascii)

    def __init__(
        self,
        id: str,
        encode: str,
        *,
        aliases: tuple[str, ...] = (),
        schema: str | None = None,
        ascii: bool = True,
    ) -> None:
        self.id = id
        self.aliases = aliases
        self.schema = schema
        self.encode = encode
        self.ascii = ascii

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def function(self) -> Any:
        import importlib

        module, _, attr = self.encode.partition(":")
        value = importlib.import_module(module)
        for part in attr.split("."):  # "module:Class.method" names a method as a function
            value = getattr(value, part)
        return value


def table(encode: str) -> Encoder:
    """The human format of a kind (``table``, alias ``tty`` and ``text``)."""
    return Encoder(HUMAN, encode, aliases=HUMAN_ALIASES)


def document(schema: str, encode: str, *, ascii: bool = True) -> Encoder:
    """imagewise's own JSON document: ``encode`` gives the body, the envelope is added here."""
    return Encoder("json", encode, schema=schema, ascii=ascii)


def envelope(schema: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The one place a document gets its ``schema`` field (first, as every document has it)."""
    return {"schema": schema, **body}


def _keywords(fn: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``context`` that ``fn`` takes by name (all of it when it has ``**kwargs``)."""
    code = fn.__code__
    if code.co_flags & 0x08:  # CO_VARKEYWORDS
        return dict(context)
    names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
    return {k: v for k, v in context.items() if k in names}


def _json_text(doc: Mapping[str, Any], ascii: bool) -> str:
    """``json.dumps(doc, indent=2)``'s text, with ``jsonstream.Lazy`` lists made item by item
    (an image with a million inefficient files never holds a million dicts)."""
    from imagewise.jsonstream import write

    parts: list[str] = []
    write(doc, parts.append, ensure_ascii=ascii)
    return "".join(parts)


class Formats(Record):
    """The encoders of one result kind; the first is the default (the human ``table``)."""

    __slots__ = ("kind", "encoders")  # noqa: RUF023
    kind: str
    encoders: tuple[Encoder, ...]

    def __init__(self, kind: str, *encoders: Encoder) -> None:
        self.kind = kind
        self.encoders = encoders

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.encoders)

    @property
    def choices(self) -> tuple[str, ...]:
        """Every name ``--format`` accepts: the ids, then the aliases."""
        return self.ids + tuple(a for e in self.encoders for a in e.aliases)

    @property
    def default(self) -> str:
        return self.encoders[0].id

    def get(self, name: str) -> Encoder:
        """The encoder called ``name`` (an id or an alias); ``UsageError`` when there is none."""
        for e in self.encoders:
            if name == e.id or name in e.aliases:
                return e
        from imagewise.errors import UsageError

        raise UsageError(
            f"unknown format {name!r} for {self.kind}; choose one of {', '.join(self.ids)}"
        )

    def canonical(self, name: str) -> str:
        """The id of the format called ``name`` (``tty`` -> ``table``)."""
        return self.get(name).id

    def help(self, what: str = "Output format") -> str:
        """``--format``'s help: the ids, the default, and the aliases in a few words."""
        aliases = [f"{' and '.join(e.aliases)} for {e.id}" for e in self.encoders if e.aliases]
        also = f"; also {', '.join(aliases)}" if aliases else ""
        return f"{what}: {', '.join(self.ids)} [default: {self.default}{also}]"

    def document(self, value: Any, **context: Any) -> dict[str, Any]:
        """The JSON document of ``value`` (envelope and body) as a dict."""
        enc = next((e for e in self.encoders if e.schema), None)
        if enc is None:
            raise ValueError(f"{self.kind} has no imagewise JSON document")
        fn = enc.function()
        return envelope(enc.schema, fn(value, **_keywords(fn, context)))  # type: ignore[arg-type]

    def encode(self, name: str, value: Any, **context: Any) -> str:
        """``value`` written in the format called ``name``: the whole output, which ends with a
        newline unless it is empty."""
        enc = self.get(name)
        fn = enc.function()
        if enc.schema is None:
            out = fn(value, **_keywords(fn, context))
        else:  # a body function that takes ``lazy`` may give long lists as jsonstream.Lazy
            body = fn(value, **_keywords(fn, {**context, "lazy": True}))
            out = _json_text(envelope(enc.schema, body), enc.ascii)
        return out if not out or out.endswith("\n") else out + "\n"  # type: ignore[no-any-return]


# -- the registries, one per result kind ---------------------------------------------------------

ANALYSIS = Formats(
    "analysis",
    table("imagewise.analysis.text:analysis_table"),
    document("imagewise/analysis/v1", "imagewise.analysis.gates:analysis_json"),
    Encoder("html", "imagewise.report.html:render_analysis"),
)
DIFF = Formats(
    "diff",
    table("imagewise.analysis.text:render_diff"),
    document("imagewise/diff/v1", "imagewise.analysis.diff:ImageDiff.to_json"),
)
FILES = Formats(
    "files",
    table("imagewise.layers.listing:render_table"),
    document("imagewise/files/v1", "imagewise.layers.listing:FileListing.to_json"),
)
INSPECT = Formats(
    "inspect",
    table("imagewise.inspection:inspect_table"),
    document("imagewise/inspect/v1", "imagewise.encoders:as_is"),
)
COPY = Formats(
    "copy",
    table("imagewise.copy:copy_summary"),
    document("imagewise/copy/v1", "imagewise.copy:CopyResult.to_json"),
)
TAGS = Formats(
    "tags",
    table("imagewise.tags:tags_table"),
    document("imagewise/tags/v1", "imagewise.encoders:as_is"),
)
TAG = Formats(
    "tag",
    table("imagewise.release.apply:tag_table"),
    document("imagewise/tag/v1", "imagewise.release.apply:TagRun.to_json"),
)
TAG_LINT = Formats(
    "tag-lint",
    table("imagewise.release.tags_lint:tag_lint_table"),
    document("imagewise/tag-lint/v1", "imagewise.release.tags_lint:TagLintResult.to_json"),
)
DEPRECATION = Formats(
    "deprecation",
    table("imagewise.release.deprecation:deprecate_table"),
    document("imagewise/deprecation/v1", "imagewise.release.deprecation:DeprecateResult.to_json"),
)
OUTDATED = Formats(
    "outdated",
    table("imagewise.release.outdated:outdated_table"),
    document("imagewise/outdated/v1", "imagewise.release.outdated:OutdatedResult.to_json"),
)
DU = Formats(
    "du",
    table("imagewise.storage.du:du_table"),
    document("imagewise/du/v1", "imagewise.storage.du:SpaceReport.to_json"),
    Encoder("html", "imagewise.storage.du:du_html"),
)
DEDUP = Formats(
    "dedup",
    table("imagewise.storage.dedup:dedup_table"),
    document("imagewise/dedup/v1", "imagewise.storage.dedup:DedupReport.to_json"),
)
SYNC = Formats(
    "sync",
    table("imagewise.storage.sync:sync_table"),
    document("imagewise/sync/v1", "imagewise.storage.sync:SyncResult.to_json"),
)
BACKUP = Formats(
    "backup",
    table("imagewise.backup.run:backup_table"),
    document("imagewise/backup/v1", "imagewise.backup.run:backup_json"),
)
SNAPSHOTS = Formats(
    "snapshots",
    table("imagewise.backup.run:list_table"),
    document("imagewise/snapshots/v1", "imagewise.backup.run:snapshots_json"),
)
BACKUP_VERIFY = Formats(
    "backup-verify",
    table("imagewise.backup.restore:verify_table"),
    document("imagewise/backup-verify/v1", "imagewise.backup.restore:VerifyResult.to_json"),
)
DRILL = Formats(
    "drill",
    table("imagewise.backup.drill:drill_table"),
    document("imagewise/drill/v1", "imagewise.backup.drill:DrillResult.to_json"),
    Encoder("html", "imagewise.backup.drill:drill_html"),
)
FORGET = Formats(
    "backup-forget",
    table("imagewise.backup.maintain:forget_table"),
    document("imagewise/backup-forget/v1", "imagewise.backup.maintain:ForgetResult.to_json"),
)
PRUNE = Formats(
    "backup-prune",
    table("imagewise.backup.maintain:prune_table"),
    document("imagewise/backup-prune/v1", "imagewise.backup.maintain:PruneResult.to_json"),
)
BACKUP_DU = Formats(
    "backup-du",
    table("imagewise.backup.maintain:usage_table"),
    document("imagewise/backup-du/v1", "imagewise.backup.maintain:StoreUsage.to_json"),
)
RESTORE = Formats(
    "restore",
    table("imagewise.backup.restore:restore_table"),
    document("imagewise/restore/v1", "imagewise.backup.restore:RestoreResult.to_json"),
)
RETENTION_PLAN = Formats(
    "retention-plan",
    table("imagewise.storage.retention:plan_table"),
    document("imagewise/retention-plan/v1", "imagewise.storage.retention:Plan.to_json"),
)
RETENTION_APPLY = Formats(
    "retention-apply",
    table("imagewise.storage.retention:apply_table"),
    document("imagewise/retention-apply/v1", "imagewise.storage.retention:ApplyResult.to_json"),
)
PULL = Formats(
    "pull",
    table("imagewise.measure:pull_table"),
    document("imagewise/pull/v1", "imagewise.measure:PullMeasure.to_json"),
)
STARTUP = Formats(
    "startup",
    table("imagewise.measure:startup_table"),
    document("imagewise/startup/v1", "imagewise.measure:StartupMeasure.to_json"),
)
DEPS = Formats(
    "deps",
    table("imagewise.deps:deps_table"),
    document("imagewise/deps/v1", "imagewise.deps:DepsResult.to_json"),
)
BUILD = Formats(
    "build",
    table("imagewise.buildset:any_table"),
    document("imagewise/build/v1", "imagewise.buildset:any_json"),
)
STRUCTURE = Formats(
    "test",
    table("imagewise.structure:test_table"),
    document("imagewise/test/v1", "imagewise.structure:TestRun.to_json"),
    Encoder("junit", "imagewise.structure:junit_xml"),
)
MOVE = Formats(
    "move",
    table("imagewise.release.promote:move_table"),
    document("imagewise/move/v1", "imagewise.release.promote:MoveResult.to_json"),
)
HISTORY = Formats(
    "history",
    table("imagewise.release.promote:history_table"),
    document("imagewise/history/v1", "imagewise.release.promote:History.to_json"),
)
LINT = Formats(
    "lint",
    table("imagewise.dockerfile.output:render_tty"),
    document("imagewise/lint/v1", "imagewise.dockerfile.output:findings_json", ascii=False),
    Encoder("sarif", "imagewise.dockerfile.output:render_sarif"),
    Encoder("checkstyle", "imagewise.dockerfile.output:render_checkstyle"),
    Encoder("gitlab", "imagewise.dockerfile.output:render_gitlab"),
)
RULES = Formats(
    "rules",
    table("imagewise.rules:rules_table"),
    document("imagewise/rules/v1", "imagewise.rules:rules_json"),
)
SBOM = Formats(
    "sbom",
    table("imagewise.sbom.formats:render_table"),
    document("imagewise/sbom/v1", "imagewise.sbom.formats:to_json_doc"),
    Encoder("cyclonedx-json", "imagewise.sbom.cyclonedx:render_cyclonedx"),
    Encoder("spdx-json", "imagewise.sbom.spdx:render_spdx"),
)
SCAN = Formats(
    "scan",
    table("imagewise.vulns.render:render_table"),
    document("imagewise/scan/v1", "imagewise.vulns.render:to_json"),
    Encoder("sarif", "imagewise.vulns.render:render_sarif"),
)
DB_STATUS = Formats(
    "db-status",
    table("imagewise.vulns.db_status:db_status_table"),
    document("imagewise/db-status/v1", "imagewise.vulns.db_status:db_status_json"),
)
CHECK = Formats(
    "check",
    table("imagewise.check.render:render_tty"),
    document("imagewise/check/v1", "imagewise.check.render:to_json"),
    Encoder("sarif", "imagewise.check.render:render_sarif"),
    Encoder("html", "imagewise.check.html:render_html"),
)

#: every registry by result kind
REGISTRIES: dict[str, Formats] = {
    f.kind: f
    for f in (
        ANALYSIS,
        DIFF,
        FILES,
        INSPECT,
        COPY,
        TAGS,
        TAG,
        TAG_LINT,
        MOVE,
        HISTORY,
        DEPRECATION,
        OUTDATED,
        STRUCTURE,
        BUILD,
        DEPS,
        PULL,
        STARTUP,
        DU,
        DEDUP,
        SYNC,
        BACKUP,
        SNAPSHOTS,
        BACKUP_VERIFY,
        RESTORE,
        DRILL,
        FORGET,
        PRUNE,
        BACKUP_DU,
        RETENTION_PLAN,
        RETENTION_APPLY,
        LINT,
        RULES,
        SBOM,
        SCAN,
        DB_STATUS,
        CHECK,
    )
}


def as_is(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The encoder of a result that already is a document's body."""
    return body
