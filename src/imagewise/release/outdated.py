"""``imagewise outdated Dockerfile|IMAGE``: newer tags of the same flavour for every base image
(and for an image's own tag), digest pins that moved, deprecated bases; ``--fix`` rewrites the
Dockerfile's ``FROM`` lines within the policy's ``version_management.updates``.

Tag versions and constraints: :mod:`imagewise.tagversion`. Reads tag lists and manifest HEADs
only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from imagewise.errors import InvalidReference, NotFound, UsageError
from imagewise.policy.model import Policy
from imagewise.reference import ImageReference
from imagewise.tagversion import LEVELS, newer_tags, parse_constraint, parse_tag, satisfies

if TYPE_CHECKING:
    from imagewise.dockerfile.model import Dockerfile, Stage
    from imagewise.registry.referrers import Deprecation


class BaseStatus:
    """One image reference (a ``FROM``, or the image asked about) and what is newer."""

    __slots__ = (  # noqa: RUF023
        "line",
        "written",
        "ref",
        "newer",
        "pinned",
        "tag_digest",
        "target",
        "deprecation",
        "note",
    )

    def __init__(self, line: int | None, written: str, ref: ImageReference) -> None:
        self.line, self.written, self.ref = line, written, ref
        self.newer: dict[str, list[str]] = {lv: [] for lv in LEVELS}
        self.pinned = str(ref.digest) if ref.digest else None
        self.tag_digest: str | None = None  # what the tag names in the registry now
        self.target: str | None = None  # the tag --fix moves to (None: stays)
        self.deprecation: Deprecation | None = None
        self.note = ""

    @property
    def pin_stale(self) -> bool:
        return bool(self.pinned and self.tag_digest and self.pinned != self.tag_digest)

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "image": self.written,
            "repository": self.ref.name,
            "tag": self.ref.tag,
            "pinned": self.pinned,
            "tag_digest": self.tag_digest,
            "pin_stale": self.pin_stale,
            "newer": self.newer,
            "fix_to": self.target,
            "deprecated": self.deprecation.to_json() if self.deprecation else None,
            "note": self.note or None,
        }


class OutdatedResult:
    __slots__ = ("target", "bases", "fixed")  # noqa: RUF023

    def __init__(self, target: str, bases: list[BaseStatus]) -> None:
        self.target, self.bases = target, bases
        self.fixed: list[tuple[int, str, str]] = []  # (line, old, new) written by --fix

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "images": [b.to_json() for b in self.bases],
            "fixed": [{"line": n, "old": o, "new": w} for n, o, w in self.fixed],
        }


def _constraint_for(ref: ImageReference, policy: Policy) -> str | None:
    allow = policy.version_management.updates.allow
    short = ref.repository.rsplit("/", 1)[-1]
    for key in (ref.name, ref.repository, short):
        if key in allow:
            return allow[key]
    return None


def choose(status: BaseStatus, policy: Policy) -> str | None:
    """The tag ``--fix`` moves to: the newest allowed by the repository's constraint, else
    within ``updates.max`` (patch, minor or major)."""
    text = _constraint_for(status.ref, policy)
    levels = LEVELS[: LEVELS.index(policy.version_management.updates.max) + 1]
    pool = [t for lv in LEVELS for t in status.newer[lv] if text is not None or lv in levels]
    if text is not None:
        constraint = parse_constraint(text)
        pool = [
            t for t in pool if (v := parse_tag(t)) is not None and satisfies(v.numbers, constraint)
        ]
    best = max(pool, key=lambda t: parse_tag(t).numbers, default=None)  # type: ignore[union-attr]
    return best


def from_lines(df: Dockerfile, build_args: dict[str, str]) -> list[tuple[Stage, str]]:
    from imagewise.dockerfile.expand import expand

    env = {**df.global_args, **build_args}
    aliases: set[str] = set()
    out = []
    for stage in df.stages:
        names = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", stage.base_image_raw)
        unset = [n for n in names if env.get(n) is None]
        if unset:
            raise UsageError(
                f"{df.filename}:{stage.from_instruction.start_line}: FROM "
                f"{stage.base_image_raw}: build arg {unset[0]} has no value "
                f"(give it with --build-arg {unset[0]}=VALUE)"
            )
        image = expand(stage.base_image_raw, env, df.escape, remove_quotes=True)
        if image.lower() != "scratch" and image.lower() not in aliases:
            out.append((stage, image))
        if stage.alias:
            aliases.add(stage.alias.lower())
    return out


def _look(status: BaseStatus, policy: Policy, insecure: bool, cache: dict[str, list[str]]) -> None:
    from imagewise.registry.referrers import lookup
    from imagewise.sources.registry import client_for

    ref = status.ref
    client = client_for(ref, insecure)
    if ref.name not in cache:
        cache[ref.name] = client.list_tags(ref.repository)
    tags = cache[ref.name]
    if not tags:
        raise UsageError(f"{ref.name}: the registry lists no tags")
    tag = ref.tag or ("latest" if ref.digest is None else None)
    if tag is not None:
        try:
            status.tag_digest = str(client.head_manifest(ref.repository, tag).digest)
        except NotFound:
            status.note = f"tag {tag} is not in the registry"
        status.newer = newer_tags(tag, tags)
        if parse_tag(tag) is None:
            status.note = status.note or f"tag {tag} carries no version: nothing to compare"
    else:
        status.note = "pinned by digest only: no tag to compare"
    status.target = choose(status, policy)
    digest = status.pinned or status.tag_digest
    if digest:
        from imagewise.oci.digest import Digest

        status.deprecation = lookup(client, ref.repository, Digest.parse(digest))


def outdated(
    target: str,
    *,
    policy: Policy,
    build_args: dict[str, str] | None = None,
    fix: bool = False,
    insecure: bool = False,
) -> OutdatedResult:
    """What is newer for TARGET: a Dockerfile (every ``FROM``, build args resolved) or a
    registry image (its own tag). ``fix`` rewrites the Dockerfile's ``FROM`` lines in place."""
    path = Path(target)
    cache: dict[str, list[str]] = {}
    if path.is_file():
        from imagewise.dockerfile.files import read_dockerfiles
        from imagewise.dockerfile.parser import check_size, parse

        (doc,) = read_dockerfiles([str(path)])
        check_size(len(doc.data), str(path))
        df = parse(doc.data.decode("utf-8", "replace"), str(path))
        bases = []
        for stage, image in from_lines(df, build_args or {}):
            try:
                ref = ImageReference.parse(image)
            except InvalidReference as e:
                raise UsageError(f"{path}:{stage.from_instruction.start_line}: {e}") from None
            status = BaseStatus(stage.from_instruction.start_line, image, ref)
            _look(status, policy, insecure, cache)
            bases.append(status)
        result = OutdatedResult(str(path), bases)
        if fix:
            result.fixed = _fix(path, df, bases, insecure)
        return result
    if fix:
        raise UsageError(f"--fix rewrites a Dockerfile; {target} is not a file")
    from imagewise.reference import parse_transport

    transport = parse_transport(target)
    if not transport.is_registry or transport.reference is None:
        raise UsageError(f"{target}: not a Dockerfile and not a registry image")
    status = BaseStatus(None, target, transport.reference)
    _look(status, policy, insecure, cache)
    return OutdatedResult(target, [status])


def _fix(
    path: Path, df: Dockerfile, bases: list[BaseStatus], insecure: bool
) -> list[tuple[int, str, str]]:
    """Rewrite FROM lines: the tag to the chosen one, a digest pin to what the (new) tag names
    now. Only literal references are rewritten (a FROM built from build args is left alone)."""
    from imagewise.fileio import write_file
    from imagewise.sources.registry import client_for

    by_line = {s.from_instruction.start_line: s for s in df.stages}
    lines = df.text.splitlines(keepends=True)
    fixed = []
    for status in bases:
        if status.line is None:
            continue
        stage = by_line[status.line]
        raw = stage.base_image_raw
        if "$" in raw:
            status.note = "FROM uses build args: not rewritten"
            continue
        ref = status.ref
        tag = status.target or ref.tag
        digest = status.pinned
        if digest is not None and tag is not None:
            if status.target:
                client = client_for(ref, insecure)
                digest = str(client.head_manifest(ref.repository, tag).digest)
            elif status.tag_digest:
                digest = status.tag_digest
        new = _spell(raw, tag, digest)
        if new == raw:
            continue
        ins = stage.from_instruction
        segment = "".join(lines[ins.start_line - 1 : ins.end_line])
        replaced = segment.replace(raw, new, 1)
        lines[ins.start_line - 1 : ins.end_line] = replaced.splitlines(keepends=True)
        fixed.append((ins.start_line, raw, new))
    if fixed:
        write_file(str(path), "".join(lines).encode("utf-8"))
    return fixed


def _spell(raw: str, tag: str | None, digest: str | None) -> str:
    """``raw`` (as written in the FROM) with its tag and digest replaced."""
    name = raw.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def outdated_table(result: OutdatedResult) -> str:
    if not result.bases:
        return f"{result.target}: no base images from a registry\n"
    out = []
    for b in result.bases:
        where = f"{Path(result.target).name}:{b.line}  " if b.line is not None else ""
        head = f"{where}{b.written}"
        parts = []
        for lv in ("patch", "minor", "major"):
            if b.newer[lv]:
                more = f" (+{len(b.newer[lv]) - 1})" if len(b.newer[lv]) > 1 else ""
                parts.append(f"{lv} {b.newer[lv][0]}{more}")
        out.append(head + ("  ->  " + ", ".join(parts) if parts else "  up to date"))
        if b.pin_stale:
            out.append(f"    digest pin moved: {b.pinned[:19]} -> {(b.tag_digest or '')[:19]}")  # type: ignore[index]
        if b.target:
            out.append(f"    --fix moves it to {b.target}")
        if b.deprecation:
            out.append(f"    DEPRECATED: {b.deprecation.summary()}")
        if b.note:
            out.append(f"    note: {b.note}")
    for line, old, new in result.fixed:
        out.append(f"fixed {Path(result.target).name}:{line}: {old} -> {new}")
    return "\n".join(out) + "\n"
