"""``imagewise tags lint REPO``: a repository's tags against the tag convention.

Reads the tag list and one manifest HEAD per tag (in parallel); never writes to the registry.
What a release tag pointed at when first seen is kept in a small local state file (default: the
user cache dir, ``--state FILE`` to share it, e.g. as a CI cache) so a release tag that moves
later is caught: OCI registries keep no tag history of their own.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imagewise.errors import ConfigError, NotFound
from imagewise.findings import Finding, Location, RuleInfo, Severity
from imagewise.policy.model import Policy
from imagewise.tags import is_bookkeeping_tag

RULES: tuple[RuleInfo, ...] = tuple(
    RuleInfo(
        rid,
        sev,
        title,
        rationale,
        fix,
        area="operations",
        source="imagewise",
        kind="tag",
    )
    for rid, sev, title, rationale, fix in (
        (
            "IW-TAG-001",
            Severity.WARNING,
            "Tag breaks the tag convention",
            "The guide asks for semantic version, environment and timestamp tags; a tag that is "
            "none of them (tags.allowed_patterns, env tags) says nothing a deploy can rely on.",
            "Retag with `imagewise tag IMAGE --semver X.Y.Z` (or --env, --timestamp) and delete "
            "the odd tag, or add its pattern to tags.allowed_patterns.",
        ),
        (
            "IW-TAG-002",
            Severity.WARNING,
            "`latest` used as a release tag",
            "`latest` moves with every push: a deployment that names it cannot be reproduced or "
            "rolled back, and it is the only name of a release when no version tag carries it.",
            "Deploy by version or env tag (or digest); tag releases with --semver.",
        ),
        (
            "IW-TAG-003",
            Severity.ERROR,
            "Release tag changed since first seen (mutable release)",
            "A release tag (version_management.tagging.immutable) must name one image forever; "
            "a moved release tag means two different images were shipped under one version.",
            "Release a new version instead of re-pushing one; point the tag back with "
            "`imagewise copy` if the move was a mistake.",
        ),
        (
            "IW-TAG-004",
            Severity.WARNING,
            "Env tag on a digest without a release tag",
            "An environment runs an image that no version tag names "
            "(version_management.tagging.required), so nobody can say which release is live.",
            "Tag the digest with `imagewise tag IMAGE@DIGEST --semver X.Y.Z`, then promote by "
            "version.",
        ),
        (
            "IW-TAG-005",
            Severity.ERROR,
            "Tag of a deleted manifest (dangling)",
            "The tag is listed but its manifest is gone (deleted, garbage-collected): every "
            "pull of it fails.",
            "Delete the tag, or push the image again.",
        ),
    )
)
_BY_ID = {r.id: r for r in RULES}

SEMVER_FULL = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


class TagLintResult:
    """The findings of one repository and the tags it looked at."""

    __slots__ = ("repository", "tags", "findings", "state_file")  # noqa: RUF023

    def __init__(
        self,
        repository: str,
        tags: dict[str, str | None],
        findings: list[Finding],
        state_file: str,
    ) -> None:
        self.repository, self.tags, self.findings = repository, tags, findings
        self.state_file = state_file

    @property
    def failed(self) -> bool:
        return any(f.severity >= Severity.ERROR for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": self.tags,
            "state_file": self.state_file,
            "findings": [
                {
                    "rule": f.rule,
                    "severity": f.severity.name.lower(),
                    "title": f.title,
                    "tag": f.location.path if f.location else None,
                    "message": f.message,
                    "fix": f.fix,
                }
                for f in self.findings
            ],
        }


def _finding(rule: str, tag: str, message: str) -> Finding:
    info = _BY_ID[rule]
    return Finding(
        rule, info.severity, info.title, message, Location(path=f"tag:{tag}"), fix=info.fix
    )


def default_state_file(repository: str) -> Path:
    from imagewise.cache import default_dir

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", repository)
    return default_dir() / "tags-seen" / f"{safe}.json"


def _read_state(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the tag state file {path}: {e}") from None
    seen = doc.get("first_seen") if isinstance(doc, dict) else None
    if not isinstance(seen, dict):
        raise ConfigError(f"{path}: not an imagewise tag state file (no first_seen mapping)")
    return {str(k): str(v) for k, v in seen.items()}


def judge(
    tags: dict[str, str | None],
    first_seen: dict[str, str],
    policy: Policy,
    promoted_envs: frozenset[str] = frozenset(),
) -> list[Finding]:
    """The findings for ``tags`` (tag -> digest, None when its manifest is gone), given what
    release tags pointed at when first seen; env tags are the policy's and those ``promote``
    has records of (``promoted_envs``). Pure: no registry."""
    tagging = policy.version_management.tagging
    patterns = [re.compile(p) for p in policy.tags.allowed_patterns]
    immutable = [re.compile(p) for p in tagging.immutable]
    env_tags = set(tagging.env_tags) | promoted_envs
    by_digest: dict[str, list[str]] = {}
    for tag, digest in tags.items():
        if digest is not None:
            by_digest.setdefault(digest, []).append(tag)
    out: list[Finding] = []
    for tag in sorted(tags):
        digest = tags[tag]
        if digest is None:
            out.append(_finding("IW-TAG-005", tag, f"{tag} is listed but its manifest is gone"))
            continue
        if tag == "latest":
            others = [t for t in by_digest[digest] if SEMVER_FULL.match(t)]
            out.append(
                _finding(
                    "IW-TAG-002",
                    tag,
                    f"latest names {digest[:19]}"
                    + (
                        f" (also {', '.join(sorted(others))})"
                        if others
                        else ", which no version tag carries: latest is its only release name"
                    ),
                )
            )
        elif tag not in env_tags and patterns and not any(p.search(tag) for p in patterns):
            out.append(
                _finding(
                    "IW-TAG-001",
                    tag,
                    f"{tag} is neither a version, env nor timestamp tag (tags.allowed_patterns)",
                )
            )
        if any(p.search(tag) for p in immutable):
            was = first_seen.get(tag)
            if was is not None and was != digest:
                out.append(
                    _finding(
                        "IW-TAG-003",
                        tag,
                        f"{tag} was {was[:19]} when first seen and is {digest[:19]} now",
                    )
                )
        if tag in env_tags and "semver" in tagging.required:
            if not any(SEMVER_FULL.match(t) for t in by_digest[digest]):
                out.append(
                    _finding(
                        "IW-TAG-004",
                        tag,
                        f"{tag} runs {digest[:19]}, which no version tag (X.Y.Z) carries",
                    )
                )
    return out


def lint_tags(
    repository: str,
    *,
    policy: Policy,
    state_file: str | Path | None = None,
    record: bool = True,
    insecure: bool = False,
) -> TagLintResult:
    """Lint the tags of REPOSITORY under ``policy``; with ``record`` the release tags seen for
    the first time are added to the state file (atomically)."""
    from imagewise.fileio import write_file
    from imagewise.reference import ImageReference
    from imagewise.release.history import record_tags
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    client = client_for(ref, insecure)
    every = client.list_tags(ref.repository)
    names = [t for t in every if not is_bookkeeping_tag(t)]
    promoted = frozenset(env for _, _, env, _ in record_tags(every))

    def head(tag: str) -> str | None:
        try:
            return str(client.head_manifest(ref.repository, tag).digest)
        except NotFound:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        tags = dict(zip(names, pool.map(head, names), strict=True))
    path = Path(state_file) if state_file else default_state_file(ref.name)
    first_seen = _read_state(path)
    findings = judge(tags, first_seen, policy, promoted)
    immutable = [re.compile(p) for p in policy.version_management.tagging.immutable]
    new = {
        t: d
        for t, d in tags.items()
        if d is not None and t not in first_seen and any(p.search(t) for p in immutable)
    }
    if record and new:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"repository": ref.name, "first_seen": {**first_seen, **new}}
        write_file(str(path), (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return TagLintResult(ref.name, tags, findings, str(path))


def tag_lint_table(result: TagLintResult) -> str:
    if not result.findings:
        return f"{result.repository}: {len(result.tags)} tag(s), no findings\n"
    width = max(len(f.location.path if f.location else "") for f in result.findings) - 4
    lines = [
        f"{(f.location.path if f.location else '')[4:]:<{width}}  {f.rule}  "
        f"{f.severity.name.lower():<7}  {f.message}"
        for f in result.findings
    ]
    errors = sum(f.severity >= Severity.ERROR for f in result.findings)
    lines.append(
        f"{result.repository}: {len(result.tags)} tag(s), {len(result.findings)} finding(s), "
        f"{errors} error(s)"
    )
    return "\n".join(lines) + "\n"
