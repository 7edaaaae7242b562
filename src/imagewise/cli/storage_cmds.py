"""The storage commands: ``du``, ``dedup``, ``sync``, ``retention plan|apply`` (flags -> one library call in ``imagewise.storage`` ->
renderer -> exit code)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from imagewise.cli.args import argument, command, echo, group, option, path_type
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import DEDUP, DU, RETENTION_APPLY, RETENTION_PLAN, SYNC
from imagewise.errors import UsageError


def _storage_dir_option(fn: F) -> F:
    return option(
        "--storage-dir",
        metavar="DIR",
        type=path_type(file_okay=False, exists=True),
        help="The registry's storage directory (distribution's filesystem rootdirectory, "
        "read-only is enough): lists untagged manifests and when each was pushed.",
    )(fn)


@command("du")
@argument("refs", nargs="+", metavar="REF")
@option("--top", type=int, default=10, metavar="N", help="How many of the most shared blobs.")
@option(
    "-o", "--output", metavar="FILE", help="Write the report to FILE (e.g. with --format html)."
)
@_storage_dir_option
@format_option(DU)
@insecure_option
def du_cmd(
    refs: tuple[str, ...],
    top: int,
    output: str | None,
    storage_dir: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Space used by registries, repositories and OCI layouts: logical, unique, shared.

    REF is a registry (localhost:5000: every repository its catalog lists), repositories
    (localhost:5000/app) or an OCI layout (oci:DIR). Per repository and tag: the logical size
    (its images' bytes) and the unique size (every blob once across all REFs), the shared bytes
    and dedup ratio, the blobs the most images share, and untagged manifests (OCI layouts, or a
    registry whose storage directory is given with --storage-dir: its API cannot list them).
    Reads manifests only, in parallel.

      imagewise du localhost:5000
      imagewise du localhost:5000/app localhost:5000/base --format json
      imagewise du oci:build/layout --format html -o du.html
    """
    from imagewise.storage.du import read_targets, space_report

    report = space_report(
        read_targets(list(refs), insecure=insecure, storage_dir=storage_dir), top=top
    )
    text = DU.encode(fmt, report)
    if output and output != "-":
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
        echo(f"wrote {output} ({fmt} space report)", err=True)
    else:
        echo(text, nl=False)
    return 0


F = TypeVar("F", bound=Callable[..., Any])


@command("dedup")
@argument("refs", nargs="+", metavar="REF")
@option(
    "--threshold",
    type=float,
    default=0.8,
    metavar="X",
    help="Share of files two bottom layers must have in common to count as one base.",
)
@format_option(DEDUP)
@insecure_option
def dedup_cmd(refs: tuple[str, ...], threshold: float, fmt: str, insecure: bool) -> int:
    """Storage that could be shared but is not: compression duplicates, near-identical bases.

    Reports layers stored in more than one compression (one diff_id, several blobs) and images
    whose bottom layers hold mostly the same files under different digests (one base pulled on
    two dates), with the bytes rebasing them onto one would save and the rebuild to do. REF as
    for `du`. Reads manifests, configs and each distinct bottom layer's file list.

      imagewise dedup localhost:5000
      imagewise dedup localhost:5000/app localhost:5000/web --threshold 0.9 --format json
    """
    from imagewise.storage.dedup import dedup_report
    from imagewise.storage.du import read_targets

    if not 0 < threshold <= 1:
        raise UsageError(f"--threshold {threshold}: expected a share above 0 and at most 1")
    inventories = read_targets(list(refs), insecure=insecure, configs=True)
    echo(DEDUP.encode(fmt, dedup_report(inventories, threshold)), nl=False)
    return 0


@command("sync")
@argument("config", metavar="CONFIG.yaml")
@argument("destination", metavar="DEST")
@option("--scoped", flag=True, help="Prefix destination names with the source registry.")
@option("--prune", flag=True, help="Delete destination tags the source no longer has.")
@option("--dry-run", flag=True, help="Print what would be copied and pruned; write nothing.")
@option("--jobs", "-j", type=int, default=4, metavar="N", help="Images copied in parallel.")
@format_option(SYNC)
@insecure_option
def sync_cmd(
    config: str,
    destination: str,
    scoped: bool,
    prune: bool,
    dry_run: bool,
    jobs: int,
    fmt: str,
    insecure: bool,
) -> int:
    """Mirror the images of a skopeo sync YAML file into a registry or an OCI layout.

    CONFIG is skopeo's format (`skopeo sync --src yaml`): registries with `images` (tags,
    digests, or [] for all), `images-by-tag-regex`, `images-by-semver`, `credentials` and
    `tls-verify`. DEST is docker://REGISTRY[/PREFIX] (images land at PREFIX/REPOSITORY, as with
    skopeo) or oci:DIR (one layout, images named REPOSITORY:TAG, blobs stored once).
    Incremental: an image already there costs one manifest HEAD on each side. Every blob is
    sent once per run and mounted where other repositories need it. Exit 2 when an image
    failed (the others are still copied).

      imagewise sync mirror.yaml docker://localhost:5000/mirror
      imagewise sync mirror.yaml docker://localhost:5000/mirror --prune --dry-run
      imagewise sync mirror.yaml oci:./offline-bundle
    """
    from imagewise.storage.sync import sync

    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    result = sync(
        config,
        destination,
        scoped=scoped,
        prune=prune,
        dry_run=dry_run,
        jobs=jobs,
        insecure=insecure,
    )
    echo(SYNC.encode(fmt, result), nl=False)
    for line in result.errors:
        echo(f"imagewise: error: {line}", err=True)
    return 2 if result.failed else 0


def _policy_option(fn: F) -> F:
    return option(
        "--policy",
        "policy_file",
        type=path_type(dir_okay=False, as_path=True),
        help="Policy YAML whose storage_management.retention holds the rules.",
    )(fn)


@group("retention")
def retention_group() -> None:
    """Retention: plan which tags and manifests go, then delete exactly that plan.

    Rules live in the policy's storage_management.retention (Harbor's templates: keep_latest,
    keep_days, always; repository and tag selectors; rules OR-ed). Env tags, immutable release
    tags, recently promoted digests and history records always stay.
    """


@retention_group.command("plan")
@argument("refs", nargs="+", metavar="REF")
@_policy_option
@option("-o", "--output", metavar="FILE", help="Write the plan to FILE (default: stdout).")
@_storage_dir_option
@format_option(RETENTION_PLAN)
@insecure_option
def retention_plan_cmd(
    refs: tuple[str, ...],
    policy_file: Path | None,
    output: str | None,
    storage_dir: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Print every tag and manifest retention would keep or delete, and why; delete nothing.

    REF as for `du`: a registry (every repository), repositories, or oci:DIR. Save the plan as
    JSON (`--format json -o plan.json`) to review it and apply exactly it later. Untagged
    manifests (delete_untagged_after_hours) are found in OCI layouts, and in a registry whose
    storage directory is given (--storage-dir): its API lists tags, not manifests.

      imagewise retention plan localhost:5000 --policy policy.yaml
      imagewise retention plan localhost:5000 --policy policy.yaml --format json -o plan.json
      imagewise retention plan localhost:5000 --storage-dir /var/lib/docker-registry
    """
    from imagewise.policy.model import load_policy
    from imagewise.storage.retention import plan_for

    plan = plan_for(
        list(refs), load_policy(policy_file), insecure=insecure, storage_dir=storage_dir
    )
    text = RETENTION_PLAN.encode(fmt, plan)
    if output and output != "-":
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
        echo(f"wrote {output} ({len(plan.deletions)} deletion(s) planned)", err=True)
    else:
        echo(text, nl=False)
    return 0


@retention_group.command("apply")
@argument("refs", nargs="*", metavar="REF")
@_policy_option
@option("--plan", "plan_file", metavar="FILE", help="Apply this saved plan (JSON) instead.")
@option(
    "--max-delete",
    type=int,
    metavar="N",
    help="Refuse (deleting nothing) when the plan deletes more than N manifests.",
)
@_storage_dir_option
@format_option(RETENTION_APPLY)
@insecure_option
def retention_apply_cmd(
    refs: tuple[str, ...],
    policy_file: Path | None,
    plan_file: str | None,
    max_delete: int | None,
    storage_dir: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Delete exactly the retention plan (a saved one with --plan, else the plan made now).

    Each manifest is re-checked first: one that gained a tag, or whose planned tags moved,
    since the plan is skipped, with its platforms and referrers. A registry that does not
    allow deletes is reported before anything is touched. Run the registry's garbage collector
    afterwards to free the bytes (`docker-registry garbage-collect CONFIG`).

      imagewise retention apply --plan plan.json --max-delete 50
      imagewise retention apply localhost:5000 --policy policy.yaml
    """
    from imagewise.policy.model import load_policy
    from imagewise.storage.retention import apply_for, load_plan, plan_for

    if plan_file:
        if refs:
            raise UsageError("give either --plan FILE or REFs, not both")
        plan = load_plan(plan_file)
    elif refs:
        plan = plan_for(
            list(refs), load_policy(policy_file), insecure=insecure, storage_dir=storage_dir
        )
    else:
        raise UsageError("retention apply needs REFs or --plan FILE")
    result = apply_for(plan, max_delete=max_delete, insecure=insecure)
    echo(RETENTION_APPLY.encode(fmt, result), nl=False)
    return 0
