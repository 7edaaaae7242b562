"""Retention: which tags and manifests a registry keeps, as a plan you read before anything is
deleted, and the deletion of exactly that plan.

Rules (the policy's ``storage_management.retention``) follow Harbor's templates and semantics:
each rule selects repositories (doublestar globs, with exclusions), then tags (globs,
``re:REGEX``, ``semver:RANGE``, with exclusions), then keeps the ``keep_latest`` most recently
pushed images, those pushed within ``keep_days``, or ``always`` all of them. Rules are OR-ed:
a tag any rule keeps stays; a tag no rule keeps is deleted. With no rules at all nothing is
deleted. Always kept whatever the rules say: env tags (the policy's and every env ``promote``
has records of), tags the policy declares immutable, digests promoted within
``keep_promoted_days``, and imagewise's bookkeeping tags (history records).

"Pushed" is the image's creation time from its config (``created``; an index: its newest
platform): the distribution API keeps no push time. An image without one counts as new.

What goes, digest by digest (the registry deletes manifests by digest, never one tag):

* a tagged digest all of whose tags are deleted, unless something kept still needs it (a kept
  tag's image, a kept index's platform, the subject of a kept referrer);
* a tag to delete whose digest a kept tag shares is *not* deleted (deleting the digest would
  delete the kept tag too): the plan says so;
* the platforms of a deleted index that nothing kept needs, and every referrer (signature,
  SBOM, deprecation record, referrers fallback index) of a deleted manifest go with it.

Bytes freed after the registry's garbage collection: the blobs of deleted manifests that no
kept manifest of the inventory names (blobs are shared across repositories: plan over every
repository that may share them, e.g. the whole registry).
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from imagewise.errors import ImagewiseError, NotFound, UsageError
from imagewise.policy.retention import Retention, RetentionRule
from imagewise.storage.inventory import Inventory
from imagewise.tags import is_record_tag, is_referrers_tag
from imagewise.tagversion import parse_constraint, parse_tag, satisfies

# -- selectors -----------------------------------------------------------------------------------


def _doublestar(pattern: str) -> re.Pattern[str]:
    """``*`` within one path segment, ``**`` across segments, ``?`` one character."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def repo_selected(name: str, rule: RetentionRule) -> bool:
    return any(_doublestar(p).match(name) for p in rule.repositories) and not any(
        _doublestar(p).match(name) for p in rule.exclude_repositories
    )


def tag_matches(tag: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], tag) is not None
    if pattern.startswith("semver:"):
        v = parse_tag(tag)
        return v is not None and not v.pre and satisfies(v.numbers, parse_constraint(pattern[7:]))
    return fnmatch.fnmatchcase(tag, pattern.replace("**", "*"))


def tag_selected(tag: str, rule: RetentionRule) -> bool:
    return any(tag_matches(tag, p) for p in rule.tags) and not any(
        tag_matches(tag, p) for p in rule.exclude_tags
    )


# -- the plan ------------------------------------------------------------------------------------


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = text.strip()
    try:
        base = datetime.fromisoformat(t[:19])
    except ValueError:
        return None
    rest = t[19:]
    offset = timedelta(0)
    m = re.search(r"([+-])(\d\d):?(\d\d)$", rest)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        offset = sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return (base - offset).replace(tzinfo=timezone.utc)


class TagDecision:
    __slots__ = ("repository", "tag", "digest", "keep", "reason")  # noqa: RUF023

    def __init__(self, repository: str, tag: str, digest: str, keep: bool, reason: str) -> None:
        self.repository, self.tag, self.digest = repository, tag, digest
        self.keep, self.reason = keep, reason

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "action": "keep" if self.keep else "delete",
            "reason": self.reason,
        }


class Deletion:
    """One manifest to delete: ``kind`` image (tagged), untagged (no tag names it; pushed
    longer ago than ``delete_untagged_after_hours``), platform (an index's child) or
    referrer; ``tags`` the tags it takes with it."""

    __slots__ = ("repository", "digest", "kind", "tags", "parent")  # noqa: RUF023

    def __init__(
        self, repository: str, digest: str, kind: str, tags: tuple[str, ...], parent: str = ""
    ) -> None:
        self.repository, self.digest, self.kind = repository, digest, kind
        self.tags, self.parent = tags, parent

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "repository": self.repository,
            "digest": self.digest,
            "kind": self.kind,
            "tags": list(self.tags),
        }
        if self.parent:
            out["with"] = self.parent
        return out


class UntaggedDecision:
    """What the plan does with one untagged manifest, and why."""

    __slots__ = ("repository", "digest", "keep", "reason")  # noqa: RUF023

    def __init__(self, repository: str, digest: str, keep: bool, reason: str) -> None:
        self.repository, self.digest, self.keep, self.reason = repository, digest, keep, reason

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "action": "keep" if self.keep else "delete",
            "reason": self.reason,
        }


class Plan:
    def __init__(self, sources: list[str], now: datetime) -> None:
        self.sources = sources
        self.created = now
        self.decisions: list[TagDecision] = []
        self.untagged: list[UntaggedDecision] = []
        self.deletions: list[Deletion] = []
        self.freed_bytes = 0
        self.kept_bytes = 0
        self.notes: list[str] = []

    def to_json(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "created": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tags": [d.to_json() for d in self.decisions],
            "untagged": [d.to_json() for d in self.untagged],
            "deletions": [d.to_json() for d in self.deletions],
            "freed_bytes": self.freed_bytes,
            "kept_bytes": self.kept_bytes,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Plan:
        """A plan saved with ``retention plan --format json`` (the schema checked)."""
        if not isinstance(doc, dict) or doc.get("schema") != "imagewise/retention-plan/v1":
            raise UsageError("not an imagewise retention plan (schema imagewise/retention-plan/v1)")
        try:
            plan = cls(
                list(doc["sources"]), parse_time(doc["created"]) or datetime.now(timezone.utc)
            )
            for t in doc["tags"]:
                plan.decisions.append(
                    TagDecision(
                        t["repository"], t["tag"], t["digest"], t["action"] == "keep", t["reason"]
                    )
                )
            for u in doc.get("untagged", []):  # plans of 0.x before untagged retention
                plan.untagged.append(
                    UntaggedDecision(
                        u["repository"], u["digest"], u["action"] == "keep", u["reason"]
                    )
                )
            for d in doc["deletions"]:
                plan.deletions.append(
                    Deletion(
                        d["repository"], d["digest"], d["kind"], tuple(d["tags"]), d.get("with", "")
                    )
                )
            plan.freed_bytes = int(doc.get("freed_bytes", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"retention plan is incomplete: {e}") from None
        return plan


def _promoted(inv: Inventory, repo: str, since: datetime | None) -> tuple[set[str], set[str]]:
    """(envs with records, digests promoted since ``since``) from the history records."""
    envs: set[str] = set()
    digests: set[str] = set()
    for tag, digest in inv.repositories[repo].tags.items():
        if not is_record_tag(tag):
            continue
        parts = tag.split(".")
        if len(parts) >= 2:
            envs.add(parts[1])
        info = inv.manifests.get((repo, digest))
        if info is None or since is None:
            continue
        when = parse_time(info.annotations.get("org.opencontainers.image.created"))
        to = info.annotations.get("io.imagewise.move.to")
        if to and (when is None or when >= since):
            digests.add(to)
    return envs, digests


def _untagged(
    plan: Plan,
    n: int,
    inv: Inventory,
    hours: int | None,
    now: datetime,
    kept: set[tuple[int, str, str]],
    deleted: list[tuple[int, Inventory, Deletion]],
) -> None:
    """Untagged manifests: pushed more than ``hours`` ago -> deleted (unless a kept manifest
    needs them: an index's platform, a referrer's subject); otherwise kept, with their closure.
    A referrer (a manifest with a subject) is never judged on its own: it goes with its
    subject. Each is listed in the plan with what decided it."""
    if not inv.untagged_known:
        if hours is not None:
            plan.notes.append(
                f"{inv.source}: untagged manifests are not listable through the registry API; "
                "give the registry's storage directory (--storage-dir) to apply "
                "delete_untagged_after_hours"
            )
        return
    limit = None if hours is None else (now - timedelta(hours=hours)).timestamp()
    for repo_name, digest in inv.untagged:
        info = inv.manifests.get((repo_name, digest))
        if info is None or info.subject:
            continue
        pushed = inv.pushed.get((repo_name, digest))
        if limit is None:
            keep, reason = True, "untagged; delete_untagged_after_hours not set"
        elif pushed is None:
            keep, reason = True, "untagged; when it was pushed is unknown"
        elif pushed > limit:
            keep, reason = True, f"untagged, pushed within {hours} hours"
        else:
            age = (now.timestamp() - pushed) / 3600
            keep, reason = False, f"untagged for {age:.0f} hours (over {hours})"
        plan.untagged.append(UntaggedDecision(repo_name, digest, keep, reason))
        if keep:
            kept.add((n, repo_name, digest))
        else:
            deleted.append((n, inv, Deletion(repo_name, digest, "untagged", ())))


def make_plan(
    inventories: list[Inventory],
    retention: Retention,
    *,
    env_tags: tuple[str, ...] = (),
    immutable: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Plan:
    now = now or datetime.now(timezone.utc)
    plan = Plan([inv.source for inv in inventories], now)
    if not retention.rules:
        plan.notes.append(
            "no retention rules (storage_management.retention.rules): nothing is deleted"
        )
    immutable_res = [re.compile(p) for p in immutable]
    kept_manifests: set[tuple[int, str, str]] = set()
    deleted: list[tuple[int, Inventory, Deletion]] = []
    for n, inv in enumerate(inventories):
        for repo in sorted(inv.repositories.values(), key=lambda r: r.name):
            since = (
                now - timedelta(days=retention.keep_promoted_days)
                if retention.keep_promoted_days is not None
                else None
            )
            envs, promoted = _promoted(inv, repo.name, since)
            env_set = (set(env_tags) | envs) if retention.keep_env_tags else set()

            def created(digest: str, inv: Inventory = inv, repo_name: str = repo.name) -> datetime:
                info = inv.manifests.get((repo_name, digest))
                t = parse_time(info.created) if info is not None else None
                return t or now  # unknown: as new as can be (kept by age rules)

            kept: dict[str, str] = {}  # tag -> reason
            release_tags = {
                t: d
                for t, d in repo.tags.items()
                if not is_record_tag(t) and not is_referrers_tag(t)
            }
            for tag, digest in repo.tags.items():
                if is_record_tag(tag):
                    kept[tag] = "promotion history record"
            for tag, digest in release_tags.items():
                if tag in env_set:
                    kept.setdefault(tag, "env tag")
                elif any(p.search(tag) for p in immutable_res):
                    kept.setdefault(tag, "immutable tag (version_management.tagging.immutable)")
                elif digest in promoted:
                    kept.setdefault(tag, f"promoted within {retention.keep_promoted_days} days")
            if not retention.rules:
                for tag in release_tags:
                    kept.setdefault(tag, "no retention rules")
            for rule in retention.rules:
                if not repo_selected(repo.name, rule):
                    continue
                selected = {t: d for t, d in release_tags.items() if tag_selected(t, rule)}
                if rule.always:
                    for t in selected:
                        kept.setdefault(t, f"{rule.describe()}")
                elif rule.keep_days is not None:
                    limit = now - timedelta(days=rule.keep_days)
                    for t, d in selected.items():
                        if created(d) >= limit:
                            kept.setdefault(t, f"{rule.describe()}")
                else:
                    newest = sorted(
                        set(selected.values()), key=lambda d: (created(d), d), reverse=True
                    )
                    chosen = set(newest[: rule.keep_latest])
                    for t, d in selected.items():
                        if d in chosen:
                            kept.setdefault(t, f"{rule.describe()}")
            # digest level: a digest goes only when every tag on it goes
            by_digest: dict[str, list[str]] = {}
            for tag, digest in release_tags.items():
                by_digest.setdefault(digest, []).append(tag)
            for digest, tags in sorted(by_digest.items()):
                keepers = [t for t in tags if t in kept]
                for t in sorted(tags):
                    if t in kept:
                        plan.decisions.append(TagDecision(repo.name, t, digest, True, kept[t]))
                    elif keepers:
                        plan.decisions.append(
                            TagDecision(
                                repo.name,
                                t,
                                digest,
                                True,
                                f"not deleted: shares its digest with kept tag {sorted(keepers)[0]} "
                                "(the registry deletes by digest)",
                            )
                        )
                    else:
                        plan.decisions.append(
                            TagDecision(repo.name, t, digest, False, "no rule keeps it")
                        )
                if keepers:
                    kept_manifests.add((n, repo.name, digest))
                else:
                    deleted.append(
                        (n, inv, Deletion(repo.name, digest, "image", tuple(sorted(tags))))
                    )
            for tag, digest in repo.tags.items():
                if is_record_tag(tag):
                    kept_manifests.add((n, repo.name, digest))
        _untagged(plan, n, inv, retention.untagged_hours, now, kept_manifests, deleted)
    # what kept manifests need: their closure and, for kept referrers, their subjects
    needed: set[tuple[int, str, str]] = set()
    stack = list(kept_manifests)
    while stack:
        n, repo_name, digest = stack.pop()
        if (n, repo_name, digest) in needed:
            continue
        needed.add((n, repo_name, digest))
        info = inventories[n].manifests.get((repo_name, digest))
        if info is None:
            continue
        stack.extend((n, repo_name, c) for c in info.children)
        if info.subject:
            stack.append((n, repo_name, info.subject))
    final: list[Deletion] = []
    gone: set[tuple[int, str, str]] = set()
    for n, inv, gone_image in deleted:
        if (n, gone_image.repository, gone_image.digest) in needed:
            for dec in plan.decisions:
                if (
                    dec.repository == gone_image.repository
                    and dec.digest == gone_image.digest
                    and not dec.keep
                ):
                    dec.keep, dec.reason = True, "not deleted: a kept manifest needs its digest"
            for u in plan.untagged:
                if (u.repository, u.digest) == (gone_image.repository, gone_image.digest):
                    u.keep, u.reason = True, "not deleted: a kept manifest needs its digest"
            continue
        final.append(gone_image)
        gone.add((n, gone_image.repository, gone_image.digest))
        # platforms of a deleted index that nothing kept needs
        for info in inv.closure(gone_image.repository, gone_image.digest):
            key = (n, gone_image.repository, info.digest)
            if info.digest != gone_image.digest and key not in needed and key not in gone:
                final.append(
                    Deletion(gone_image.repository, info.digest, "platform", (), gone_image.digest)
                )
                gone.add(key)
    # referrers go with their subject (and referrers of referrers)
    changed = True
    while changed:
        changed = False
        for n, inv in enumerate(inventories):
            for (repo_name, digest), info in inv.manifests.items():
                key = (n, repo_name, digest)
                if key in gone or not info.subject or (n, repo_name, info.subject) not in gone:
                    continue
                ref_tags = tuple(
                    sorted(t for t, dd in inv.repositories[repo_name].tags.items() if dd == digest)
                )
                final.append(Deletion(repo_name, digest, "referrer", ref_tags, info.subject))
                gone.add(key)
                changed = True
                for dec in plan.decisions:
                    if dec.repository == repo_name and dec.digest == digest:
                        dec.keep, dec.reason = False, f"referrer of deleted {info.subject[:19]}"
    # the referrers fallback index of a deleted digest (tag sha256-<hex>) goes too
    for n, inv in enumerate(inventories):
        for repo in inv.repositories.values():
            for tag, digest in repo.tags.items():
                if not is_referrers_tag(tag):
                    continue
                subject = tag.replace("-", ":", 1)
                key = (n, repo.name, digest)
                if (n, repo.name, subject) in gone and key not in gone:
                    final.append(Deletion(repo.name, digest, "referrer", (tag,), subject))
                    gone.add(key)
    plan.deletions = final
    # bytes freed after GC: blobs of deleted manifests no remaining manifest names
    remaining: set[str] = set()
    removed: dict[str, int] = {}
    for n, inv in enumerate(inventories):
        for (repo_name, digest), info in inv.manifests.items():
            blobs = dict(info.blobs())
            blobs[digest] = info.size
            if (n, repo_name, digest) in gone:
                removed.update(blobs)
            else:
                remaining.update(blobs)
    plan.freed_bytes = sum(size for b, size in removed.items() if b not in remaining)
    kept_blobs: dict[str, int] = {}
    for n, inv in enumerate(inventories):
        for (repo_name, digest), info in inv.manifests.items():
            if (n, repo_name, digest) not in gone:
                kept_blobs[digest] = info.size
                kept_blobs.update(info.blobs())
    plan.kept_bytes = sum(kept_blobs.values())
    return plan


# -- applying a plan -----------------------------------------------------------------------------


class ApplyResult:
    def __init__(self) -> None:
        self.deleted: list[Deletion] = []
        self.skipped: list[tuple[Deletion, str]] = []

    def to_json(self) -> dict[str, object]:
        return {
            "deleted": [d.to_json() for d in self.deleted],
            "skipped": [{**d.to_json(), "why": why} for d, why in self.skipped],
        }


def check_delete_supported(client: Any, repo: str) -> None:
    """Raise before anything is touched when the registry refuses deletes: a DELETE of a
    digest no registry holds answers 404 where deletes are on, 405 where they are off."""
    probe = "sha256:" + "0" * 64
    try:
        client.delete_manifest(repo, probe)
    except NotFound:
        return
    except ImagewiseError as e:
        raise UsageError(
            f"{client.host} does not allow deleting manifests ({e}); enable it in the "
            "registry's config (storage.delete.enabled: true for the distribution registry)"
        ) from None
    # a registry that says it deleted a digest nobody pushed: deletes work


def apply_plan(
    plan: Plan, clients: dict[str, Any], *, max_delete: int | None = None
) -> ApplyResult:
    """Delete exactly the plan's manifests, re-checking each first: a digest that gained a tag
    or whose planned tags moved since the plan is skipped (and so are its platforms and
    referrers). ``clients``: registry host -> client (the plan's sources)."""
    result = ApplyResult()
    if not plan.deletions:
        return result
    if max_delete is not None and len(plan.deletions) > max_delete:
        raise UsageError(
            f"the plan deletes {len(plan.deletions)} manifests, over --max-delete {max_delete}: "
            "nothing deleted"
        )
    if len(clients) != 1:
        raise UsageError("retention apply works on one registry at a time")
    client = next(iter(clients.values()))
    repos = sorted({d.repository for d in plan.deletions})
    check_delete_supported(client, repos[0])
    planned_tags = {(d.repository, d.tag): d for d in plan.decisions}
    # what every tag names now
    now_tags: dict[tuple[str, str], str | None] = {}
    for repo in repos:
        try:
            tags = client.list_tags(repo)
        except NotFound:
            tags = []
        for tag in tags:
            try:
                now_tags[(repo, tag)] = str(client.head_manifest(repo, tag).digest)
            except NotFound:
                now_tags[(repo, tag)] = None
    skipped_digests: set[tuple[str, str]] = set()
    for d in plan.deletions:
        key = (d.repository, d.digest)
        why = ""
        if d.parent and (d.repository, d.parent) in skipped_digests:
            why = f"kept with {d.parent[:19]}, which was skipped"
        else:
            for (repo, tag), digest in now_tags.items():
                if repo != d.repository or digest != d.digest:
                    continue
                before = planned_tags.get((repo, tag))
                if tag not in d.tags and not (before is not None and not before.keep):
                    why = f"tag {tag} names it now (not in the plan)"
                    break
            for tag in d.tags:
                if now_tags.get((d.repository, tag), d.digest) != d.digest:
                    why = why or f"tag {tag} moved since the plan"
        if why:
            result.skipped.append((d, why))
            skipped_digests.add(key)
            continue
        try:
            client.delete_manifest(d.repository, d.digest)
        except NotFound:
            result.skipped.append((d, "already gone"))
            continue
        result.deleted.append(d)
    return result


# -- entry points ----------------------------------------------------------------------------------


def plan_for(
    refs: list[str],
    policy: Any,
    *,
    insecure: bool = False,
    now: datetime | None = None,
    storage_dir: str | None = None,
) -> Plan:
    """The retention plan of ``refs`` (registries, repositories or OCI layouts, as ``du``
    takes them) under ``policy``'s ``storage_management.retention``. ``storage_dir``: the
    registry's storage directory, which lists untagged manifests (see ``read_registry``)."""
    from imagewise.storage.du import read_targets

    tagging = policy.version_management.tagging
    return make_plan(
        read_targets(refs, insecure=insecure, configs=True, storage_dir=storage_dir),
        policy.storage_management.retention,
        env_tags=tagging.env_tags,
        immutable=tagging.immutable,
        now=now,
    )


def apply_for(plan: Plan, *, max_delete: int | None = None, insecure: bool = False) -> ApplyResult:
    """Apply ``plan`` to the registry it was made for."""
    from imagewise.registry.client import RegistryClient

    hosts = [s for s in plan.sources if not s.startswith("oci:")]
    if len(hosts) != len(plan.sources):
        raise UsageError("retention apply deletes from registries; an OCI layout is not one")
    clients = {h: RegistryClient.get(h, insecure=insecure) for h in hosts}
    return apply_plan(plan, clients, max_delete=max_delete)


def load_plan(path: str) -> Plan:
    import json

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"plan file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read plan {path}: {e}") from None
    return Plan.from_json(doc)


def plan_table(plan: Plan) -> str:
    from imagewise.units import format_size

    lines: list[str] = []
    repo = None
    for d in sorted(plan.decisions, key=lambda d: (d.repository, not d.keep, d.tag)):
        if d.repository != repo:
            repo = d.repository
            lines.append(f"{repo}:")
        action = "keep  " if d.keep else "delete"
        lines.append(f"  {action}  {d.tag}  {d.digest[:19]}  {d.reason}")
    for u in sorted(plan.untagged, key=lambda u: (u.repository, not u.keep, u.digest)):
        action = "keep  " if u.keep else "delete"
        lines.append(f"{u.repository}@{u.digest[:19]}:  {action}  {u.reason}")
    kinds: dict[str, int] = {}
    for x in plan.deletions:
        kinds[x.kind] = kinds.get(x.kind, 0) + 1
    what = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in sorted(kinds.items()))
    lines.append(
        f"deletes {len(plan.deletions)} manifest(s)"
        + (f" ({what})" if what else "")
        + f"; frees {format_size(plan.freed_bytes)} after garbage collection"
        + f"; keeps {format_size(plan.kept_bytes)}"
    )
    lines.extend(f"note: {n}" for n in plan.notes)
    return "\n".join(lines) + "\n"


def apply_table(result: ApplyResult) -> str:
    lines = [f"deleted {d.repository}@{d.digest[:19]} ({d.kind})" for d in result.deleted]
    lines += [f"skipped {d.repository}@{d.digest[:19]}: {why}" for d, why in result.skipped]
    lines.append(f"{len(result.deleted)} deleted, {len(result.skipped)} skipped")
    return "\n".join(lines) + "\n"
