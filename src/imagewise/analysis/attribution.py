"""Turn waste into findings: which layer (and Dockerfile instruction) did it, and what to change.

Every finding names the layer index, its diff_id and ``created_by``, and carries the bytes the
suggested change would save. A fix names only instructions of the kind that can make the change
(a RUN is combined only with a RUN, a COPY is narrowed or given ``--chmod``); bytes written by
the base image's layers are said to come from the base image, with a slimmer or newer base as
the fix, since no instruction of the user's Dockerfile wrote them.
"""

from __future__ import annotations

from collections import defaultdict

from imagewise.analysis import overlay as ov
from imagewise.analysis.categories import BY_KEY
from imagewise.analysis.final import FinalFacts
from imagewise.findings import Finding, Location, RuleInfo, Severity
from imagewise.layers import merged as mt
from imagewise.record import Record
from imagewise.units import format_size

TOOLCHAIN_MIN_BYTES = 20 * 1000 * 1000
DUPLICATES_SHOWN = 20
MIN_BYTES = 1  # groups with fewer bytes are not worth a finding


class LayerRef(Record):
    __slots__ = ("index", "diff_id", "created_by", "base")  # noqa: RUF023

    def __init__(self, index: int, diff_id: str, created_by: str, base: bool = False) -> None:
        self.index = index
        self.diff_id = diff_id
        self.created_by = created_by
        self.base = base  # the layer belongs to the base image (see ``imagewise.baseimage``)

    @property
    def instruction(self) -> str:
        return short_instruction(self.created_by)

    @property
    def kind(self) -> str:
        """``base`` (a base-image layer), ``run``, ``copy`` (COPY or ADD) or ``other``."""
        if self.base:
            return BASE
        if _is_copy(self.created_by):
            return COPY
        return RUN if self.instruction.startswith("RUN ") else OTHER

    def label(self) -> str:
        if self.base:
            return f"layer {self.index} (from the base image)"
        text = self.instruction
        return f"layer {self.index} (`{text}`)" if text else f"layer {self.index}"


BASE, RUN, COPY, OTHER = "base", "run", "copy", "other"


_DECLARED: tuple[RuleInfo, ...] = (
    RuleInfo(
        "IW-WASTE-DELETED",
        Severity.WARNING,
        "files added in one layer, deleted in a later one",
        "A deletion in a later layer hides files but their bytes stay in the earlier layer.",
        "delete them in the same RUN that creates them",
        "performance",
        "imagewise",
    ),
    RuleInfo(
        "IW-WASTE-OVERWRITTEN",
        Severity.WARNING,
        "files rewritten by a later layer",
        "Every rewritten file is stored again; the earlier copy stays in its layer.",
        "combine the RUN instructions",
        "performance",
        "imagewise",
    ),
    RuleInfo(
        "IW-WASTE-METADATA",
        Severity.WARNING,
        "files copied again only to change mode or owner",
        "chmod/chown in a later layer stores a full copy of every file it touches.",
        "use COPY --chmod/--chown or change them in the RUN that creates them",
        "performance",
        "imagewise",
    ),
    RuleInfo(
        "IW-WASTE-DUPLICATE-CONTENT",
        Severity.WARNING,
        "the same content stored at several paths",
        "Identical files at different paths are stored once per path.",
        "keep one copy and link to it",
        "performance",
        "imagewise",
    ),
    RuleInfo(
        "IW-WASTE-TOOLCHAIN",
        Severity.WARNING,
        "compiler toolchain in the final image",
        "Compilers, headers and SDKs are needed to build, not to run.",
        "use a multi-stage build",
        "performance",
        "imagewise",
    ),
    *(
        RuleInfo(c.id, Severity.WARNING, c.title, "", c.fix, "performance", "imagewise")
        for c in BY_KEY.values()
    ),
)
#: waste findings scale with the bytes they save (see ``_severity``); the declaration says so
_SCALE = "Reported as a warning when the fix saves 1 MB or more, as info below that."
RULES: tuple[RuleInfo, ...] = tuple(
    r.replace(rationale=f"{r.rationale} {_SCALE}".strip(), kind="waste") for r in _DECLARED
)

_RULE_FOR_REASON = {
    mt.DELETED: "IW-WASTE-DELETED",
    mt.DIR_DELETED: "IW-WASTE-DELETED",
    mt.OPAQUE: "IW-WASTE-DELETED",
    mt.OVERWRITTEN: "IW-WASTE-OVERWRITTEN",
    mt.REPLACED: "IW-WASTE-OVERWRITTEN",
    mt.DUPLICATE_ENTRY: "IW-WASTE-OVERWRITTEN",
    ov.METADATA: "IW-WASTE-METADATA",
}


def short_instruction(created_by: str, limit: int = 70) -> str:
    """The Dockerfile instruction behind a history line, as a person would write it:
    ``/bin/sh -c #(nop) COPY a b`` -> ``COPY a b``; ``/bin/sh -c make`` and buildkit's
    ``RUN |2 A=1 B=2 /bin/sh -c make # buildkit`` -> ``RUN make``."""
    text = " ".join(created_by.split())
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    run = text.startswith("RUN ")
    if run:
        text = text[4:].lstrip()
    if text.startswith("|"):  # build-arg count and values before the shell
        _, sep, rest = text.partition("/bin/sh -c ")
        text = "/bin/sh -c " + rest if sep else text
    if text.startswith("/bin/sh -c #(nop) "):
        text = text[len("/bin/sh -c #(nop) ") :].lstrip()
    elif text.startswith("#(nop) "):
        text = text[len("#(nop) ") :].lstrip()
    elif text.startswith("/bin/sh -c "):
        text = "RUN " + text[len("/bin/sh -c ") :].lstrip()
    elif run:
        text = "RUN " + text
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _severity(n: int) -> Severity:
    return Severity.WARNING if n >= 1_000_000 else Severity.INFO


def _is_copy(created_by: str) -> bool:
    t = short_instruction(created_by, 10**6).upper()
    return t.startswith(("COPY", "ADD")) or " COPY " in t[:20]


def _path(path: str) -> str:
    """A root-relative path as findings show it: absolute, any secret in it masked."""
    from imagewise.secrets.mask import redact_path

    return "/" + redact_path(path)


def _examples(items: list[tuple[str, int]]) -> list[dict[str, object]]:
    return [{"path": _path(p), "bytes": s} for p, s in items]


def hidden_findings(state: ov.OverlayState, layers: list[LayerRef]) -> list[Finding]:
    """Findings for copies hidden by later layers (deleted, overwritten, chmod-only)."""
    merged: dict[tuple[int, int, str, str], list[ov.HiddenGroup]] = defaultdict(list)
    for g in state.groups.values():
        rule = _RULE_FOR_REASON[g.reason]
        category = ""
        if rule == "IW-WASTE-DELETED" and g.category:
            rule, category = BY_KEY[g.category].id, g.category
        merged[(g.layer, g.by_layer, rule, category)].append(g)
    out: list[Finding] = []
    for (j, i, rule, category), groups in merged.items():
        total = sum(g.bytes for g in groups)
        files = sum(g.files for g in groups)
        if total < MIN_BYTES:
            continue
        examples = sorted((e for g in groups for e in g.top()), key=lambda e: -e[1])[: ov.EXAMPLES]
        src, by = _ref(layers, j), _ref(layers, i)
        size = format_size(total)
        what = f"{files} file{'s' if files != 1 else ''} ({size})"
        reasons = {g.reason for g in groups}
        if rule == "IW-WASTE-METADATA":
            title = f"{by.label()} copies {what} from {_from(src)} only to change mode/owner"
            fix = _metadata_fix(src, by) + f"; saves {size}"
        elif rule == "IW-WASTE-OVERWRITTEN":
            title = f"{by.label()} rewrites {what} written by {_from(src)}"
            fix = _overwritten_fix(src, by) + f"; saves {size}"
            if j == i:
                title = f"{by.label()} stores {what} twice (the same path twice in the layer tar)"
                fix = f"rebuild the layer without duplicate tar entries; saves {size}"
        elif category:
            cat = BY_KEY[category]
            verb = "deleted" if reasons & {mt.DELETED, mt.DIR_DELETED, mt.OPAQUE} else "hidden"
            title = (
                f"{cat.title[0].upper()}{cat.title[1:]}: {what} written by {src.label()} "
                f"and {verb} only in layer {i}"
            )
            fix = _hidden_leftover_fix(cat.fix, src, by) + f"; saves {size}"
        else:
            verb = "are" if files != 1 else "is"
            title = f"{what} added by {src.label()} {verb} deleted by {by.label()}"
            fix = _deleted_fix(src, by) + f"; saves {size}"
        out.append(
            Finding(
                rule=rule,
                severity=_severity(total),
                title=title,
                message=f"{title}. The bytes stay in layer {j} although the final filesystem does "
                f"not show them.",
                location=Location(
                    layer=src.diff_id, layer_index=j, path=_path(examples[0][0]) if examples else ""
                ),
                fix=fix,
                bytes_saved=total,
                extra={
                    "kind": "hidden",
                    "category": category or rule.removeprefix("IW-WASTE-").lower(),
                    "reasons": sorted(reasons),
                    "files": files,
                    "hidden_by_layer": i,
                    "created_by": src.created_by,
                    "hidden_by": by.created_by,
                    "examples": _examples(examples),
                },
            )
        )
    return out


def final_findings(facts: FinalFacts, layers: list[LayerRef]) -> list[Finding]:
    """Findings for what survives but should not: caches, temp files, toolchains, duplicates."""
    out: list[Finding] = []
    for (key, j), bucket in facts.leftovers.items():
        if bucket.bytes < MIN_BYTES:
            continue
        cat, src, size = BY_KEY[key], _ref(layers, j), format_size(bucket.bytes)
        top = bucket.top()
        out.append(
            Finding(
                rule=cat.id,
                severity=_severity(bucket.bytes),
                title=f"{cat.title[0].upper()}{cat.title[1:]}: {bucket.files} "
                f"file{'s' if bucket.files != 1 else ''} ({size}) from {src.label()}",
                message=f"{size} in {bucket.files} files written by layer {j} are {cat.title}.",
                location=Location(layer=src.diff_id, layer_index=j, path=_path(top[0][0])),
                fix=_leftover_fix(cat.fix, src) + f"; saves {size}",
                bytes_saved=bucket.bytes,
                extra={
                    "kind": "leftover",
                    "category": key,
                    "files": bucket.files,
                    "created_by": src.created_by,
                    "examples": _examples(top),
                },
            )
        )
    for j, bucket in facts.toolchain.items():
        if bucket.bytes < TOOLCHAIN_MIN_BYTES:
            continue
        src, size = _ref(layers, j), format_size(bucket.bytes)
        top = bucket.top()
        out.append(
            Finding(
                rule="IW-WASTE-TOOLCHAIN",
                severity=Severity.WARNING,
                title=f"the compiler toolchain in {src.label()} is {size}",
                message=f"{bucket.files} files ({size}) of compilers, headers or SDKs from layer {j} "
                f"are in the final image.",
                location=Location(layer=src.diff_id, layer_index=j, path=_path(top[0][0])),
                fix=(
                    f"use a multi-stage build: the compiler toolchain in layer {j} is {size}; build "
                    f"in one stage and COPY only the results into a runtime stage"
                    if not src.base
                    else f"the base image brings a compiler toolchain ({size} in layer {j}): build in "
                    f"it, then COPY only the results into a stage on a slimmer runtime base image"
                ),
                bytes_saved=bucket.bytes,
                extra={
                    "kind": "toolchain",
                    "category": "toolchain",
                    "files": bucket.files,
                    "created_by": src.created_by,
                    "examples": _examples(top),
                },
            )
        )
    for digest, copies in facts.duplicates[:DUPLICATES_SHOWN]:
        each = copies[0].size
        saved = each * (len(copies) - 1)
        later = copies[-1]
        src = _ref(layers, later.layer)
        where = ", ".join(f"{_path(c.path)} (layer {c.layer})" for c in copies[:6])
        out.append(
            Finding(
                rule="IW-WASTE-DUPLICATE-CONTENT",
                severity=_severity(saved),
                title=f"{len(copies)} copies of the same {format_size(each)} file: {where}"
                + (" …" if len(copies) > 6 else ""),
                message=f"identical content stored {len(copies)} times: {where}",
                location=Location(
                    layer=src.diff_id, layer_index=later.layer, path=_path(later.path)
                ),
                fix=f"keep one copy and symlink or hard-link the others (or COPY it once); "
                f"saves {format_size(saved)}",
                bytes_saved=saved,
                extra={
                    "kind": "duplicate",
                    "category": "duplicate-content",
                    "xxh3_128": digest.hex(),
                    "files": len(copies),
                    "created_by": src.created_by,
                    "examples": [
                        {"path": _path(c.path), "bytes": c.size, "layer_index": c.layer}
                        for c in copies[: ov.EXAMPLES]
                    ],
                },
            )
        )
    return out


def _ref(layers: list[LayerRef], index: int) -> LayerRef:
    if 0 <= index < len(layers):
        return layers[index]
    return LayerRef(index, "", "")


# --------------------------------------------------------------------------------- the fixes
# Each names only an instruction that can make the change: ``src`` wrote the bytes, ``by`` hid
# them. Base-image layers were written by no instruction of the user's Dockerfile.
_SLIMMER_BASE = "use a slimmer or newer base image"


def _from(ref: LayerRef) -> str:
    return f"the base image (layer {ref.index})" if ref.base else f"layer {ref.index}"


def _name(ref: LayerRef) -> str:
    """The instruction of a layer, as a fix names it: ``the RUN of layer 3``."""
    kind = ref.kind
    word = (
        "RUN"
        if kind == RUN
        else "instruction"
        if kind != COPY
        else "ADD"
        if ref.instruction.upper().startswith("ADD")
        else "COPY"
    )
    return f"the {word} of layer {ref.index}"


def _overwritten_fix(src: LayerRef, by: LayerRef) -> str:
    j, i = src.index, by.index
    if src.base:
        return (
            f"the files come from the base image (layer {j}), whose copies stay whatever "
            f"layer {i} does: use a newer base image that already has them as layer {i} "
            f"leaves them, or a slimmer one without them"
        )
    if src.kind == RUN and by.kind == RUN:
        return (
            f"combine RUN {j} and RUN {i} into one RUN (or make the change where the files "
            f"are created) so only the final version is stored"
        )
    if src.kind == COPY and by.kind == COPY:
        return (
            f"copy each file once: leave the files {_name(by)} replaces out of {_name(src)} "
            f"(a narrower source or .dockerignore)"
        )
    if src.kind == COPY:
        return (
            f"change the files before they are copied (in the build context or a build "
            f"stage), not in {_name(by)} after {_name(src)}"
        )
    if by.kind == COPY:
        return f"do not create the files in {_name(src)}: {_name(by)} replaces them"
    return f"write the files once, in layer {j} or layer {i}, so only the final version is stored"


def _deleted_fix(src: LayerRef, by: LayerRef) -> str:
    j, i = src.index, by.index
    if src.base:
        return (
            f"deleting files of the base image in layer {i} does not shrink the image (they "
            f"stay in layer {j}): {_SLIMMER_BASE} without them"
        )
    if src.kind == COPY:
        return (
            f"do not add them in layer {j} (exclude them with .dockerignore or a "
            f"multi-stage build) instead of deleting them in layer {i}"
        )
    if src.kind == RUN and by.kind == RUN:
        return (
            f"delete them in the same RUN that creates them (layer {j}), or combine "
            f"RUN {j} and RUN {i}"
        )
    if src.kind == RUN:
        return f"delete them in the same RUN that creates them (layer {j})"
    return f"do not write them in layer {j} instead of deleting them in layer {i}"


def _metadata_fix(src: LayerRef, by: LayerRef) -> str:
    j, i = src.index, by.index
    if src.base:
        return (
            f"do not chmod/chown files of the base image in layer {i} (each change stores a "
            f"full copy): {_SLIMMER_BASE} whose files already have the mode and owner you "
            f"need, or run as a user that fits them"
        )
    if src.kind == COPY:
        return (
            f"set mode and owner in {_name(src)} (`COPY --chmod=… --chown=…`) instead of "
            f"changing them in layer {i}"
        )
    if src.kind == RUN:
        return f"chmod/chown in the same RUN that creates the files (layer {j}), not in layer {i}"
    return (
        f"set mode and owner where the files are created (`COPY --chmod=… --chown=…`, or "
        f"chmod/chown in the RUN that creates them), not in layer {i}"
    )


def _hidden_leftover_fix(fix: str, src: LayerRef, by: LayerRef) -> str:
    j, i = src.index, by.index
    if src.base:
        return (
            f"these come from the base image (layer {j}) and deleting them in layer {i} "
            f"does not shrink the image: {_SLIMMER_BASE} that cleans up after itself"
        )
    if src.kind == COPY:
        return (
            f"do not copy them: exclude them from {_name(src)} (.dockerignore or a "
            f"multi-stage build) instead of deleting them in layer {i}"
        )
    return f"{fix} in layer {j}, not in a later layer"


def _leftover_fix(fix: str, src: LayerRef) -> str:
    j = src.index
    if src.base:
        return (
            f"these come from the base image (layer {j}), not from your Dockerfile: "
            f"{_SLIMMER_BASE} that cleans up after itself"
        )
    if src.kind == COPY:
        return (
            f"do not copy them into the image: exclude them from {_name(src)} "
            f"(.dockerignore or a multi-stage build)"
        )
    return f"{fix} (layer {j})"
