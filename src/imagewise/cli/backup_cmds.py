"""The backup commands: ``backup run|list|verify`` and ``restore`` (flags -> one library call
in ``imagewise.backup`` -> renderer -> exit code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from imagewise.cli.args import argument, command, echo, group, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import (
    BACKUP,
    BACKUP_DU,
    BACKUP_VERIFY,
    DRILL,
    FORGET,
    PRUNE,
    RESTORE,
    SNAPSHOTS,
)
from imagewise.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _key_option(fn: F) -> F:
    return option(
        "--key-file",
        metavar="FILE",
        help="The store's key (an encrypted store; `backup keygen FILE` makes one).",
    )(fn)


def _key(key_file: str | None) -> bytes | None:
    if key_file is None:
        return None
    from imagewise.backup.codec import read_key

    return read_key(key_file)


@group("backup")
def backup_group() -> None:
    """Back up images and config into a deduplicated store; list and verify snapshots.

    A store is a directory: every blob once across all snapshots, manifests byte-exact (digests
    survive a restore), one small JSON record per snapshot. Restore with `imagewise restore`.
    """


@backup_group.command("run")
@argument("refs", nargs="*", metavar="REF")
@option("--to", "store", metavar="STORE", help="The backup store directory (required).")
@option(
    "--kind",
    choices=("full", "incremental", "differential"),
    default="incremental",
    help="full: read everything; incremental: against the last snapshot; differential: "
    "against the last full one.",
)
@option(
    "--config",
    "config_paths",
    multiple=True,
    metavar="PATH",
    help="Also back up this file or directory (repeatable).",
)
@option(
    "--data",
    "data_paths",
    multiple=True,
    metavar="PATH",
    help="Also back up this directory or file, in content-defined chunks (repeatable).",
)
@option("--jobs", "-j", type=int, default=8, metavar="N", help="Images read in parallel.")
@option(
    "--compress",
    flag=True,
    help="A new store compresses small blobs (manifests, configs, config files) with zstd.",
)
@option(
    "--schedule-due",
    flag=True,
    help="Run the jobs of --jobs-file whose cron schedule is due (for cron and systemd timers).",
)
@option("--jobs-file", metavar="FILE", help="Backup jobs with cron schedules (see --schedule-due).")
@_key_option
@format_option(BACKUP)
@insecure_option
def backup_run_cmd(
    refs: tuple[str, ...],
    store: str | None,
    kind: str,
    config_paths: tuple[str, ...],
    data_paths: tuple[str, ...],
    jobs: int,
    compress: bool,
    schedule_due: bool,
    jobs_file: str | None,
    key_file: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Snapshot images (a registry, repositories, OCI layouts) and config files into a store.

    REF as for `du`: localhost:5000 (every repository), localhost:5000/app, oci:DIR. Blobs
    the store has are not read again; an incremental snapshot takes over every tag whose digest
    is unchanged since the last one after a single manifest HEAD. Safe to kill at any moment:
    nothing half-written becomes visible, and a re-run sends only what did not arrive.

      imagewise backup run localhost:5000 --to /backup/registry
      imagewise backup run localhost:5000/app --to /backup/registry --kind full --config policy.yaml
    """
    from imagewise.backup.run import backup_run

    if schedule_due or jobs_file:
        if not (schedule_due and jobs_file) or refs or store:
            raise UsageError(
                "--schedule-due runs the jobs of --jobs-file FILE: give both, no REF/--to"
            )
        from imagewise.backup.schedule import run_due

        due = run_due(jobs_file, insecure=insecure)
        echo(BACKUP.encode(fmt, due), nl=False)
        return 2 if due.failed else 0
    if store is None:
        raise UsageError("backup run needs --to STORE (the backup store directory)")
    result = backup_run(
        list(refs),
        store,
        kind=kind,
        config_paths=config_paths,
        data_paths=data_paths,
        insecure=insecure,
        jobs=jobs,
        key=_key(key_file),
        compress=compress,
    )
    echo(BACKUP.encode(fmt, result), nl=False)
    return 0


@backup_group.command("keygen")
@argument("key_file", metavar="FILE")
def backup_keygen_cmd(key_file: str) -> int:
    """Write a new random key for an encrypted store to FILE (mode 0600; never overwritten).

    Keep a copy of the key away from the store: without it nothing in the store can be read.

      imagewise backup keygen /etc/imagewise/backup.key
      imagewise backup run localhost:5000 --to /backup/registry --key-file /etc/imagewise/backup.key
    """
    from imagewise.backup.codec import write_key

    try:
        write_key(key_file)
    except FileExistsError:
        raise UsageError(f"{key_file} exists: a key file is never overwritten") from None
    echo(f"wrote {key_file}", err=True)
    return 0


@backup_group.command("list")
@argument("store", metavar="STORE")
@_key_option
@format_option(SNAPSHOTS)
def backup_list_cmd(store: str, key_file: str | None, fmt: str) -> int:
    """List a store's snapshots: id, time, kind, parent, images, bytes added.

    imagewise backup list /backup/registry
    """
    from imagewise.backup.store import open_store

    echo(SNAPSHOTS.encode(fmt, open_store(store, key=_key(key_file))), nl=False)
    return 0


@backup_group.command("verify")
@argument("store", metavar="STORE")
@option("--read-data", flag=True, help="Rehash every blob (not only check it is there).")
@option(
    "--read-data-subset",
    type=float,
    metavar="SHARE",
    help="Rehash a random share of the blobs (0.1 = 10%).",
)
@_key_option
@format_option(BACKUP_VERIFY)
def backup_verify_cmd(
    store: str, read_data: bool, read_data_subset: float | None, key_file: str | None, fmt: str
) -> int:
    """Check a store: every snapshot's manifests and blobs are there (exit 1 when not).

    With --read-data every blob is rehashed; a damaged blob is named with the snapshots that
    need it.

      imagewise backup verify /backup/registry --read-data
    """
    from imagewise.backup.restore import verify_store

    if read_data_subset is not None and not 0 < read_data_subset <= 1:
        raise UsageError("--read-data-subset: expected a share above 0 and at most 1")
    result = verify_store(
        store,
        read_data=read_data or read_data_subset is not None,
        subset=read_data_subset,
        key=_key(key_file),
    )
    echo(BACKUP_VERIFY.encode(fmt, result), nl=False)
    return 0 if result.ok else 1


@backup_group.command("forget")
@argument("store", metavar="STORE")
@option("--keep-last", type=int, default=0, metavar="N", help="Keep the N newest snapshots.")
@option("--keep-daily", type=int, default=0, metavar="N", help="Keep the newest of each of N days.")
@option(
    "--keep-weekly", type=int, default=0, metavar="N", help="Keep the newest of each of N weeks."
)
@option(
    "--keep-monthly", type=int, default=0, metavar="N", help="Keep the newest of each of N months."
)
@option("--dry-run", flag=True, help="Print what would be forgotten; change nothing.")
@_key_option
@format_option(FORGET)
def backup_forget_cmd(
    store: str,
    keep_last: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    dry_run: bool,
    key_file: str | None,
    fmt: str,
) -> int:
    """Forget snapshots by grandfather-father-son rules (a snapshot any rule keeps stays).

    Only snapshot records go; `backup prune` then frees the blobs no remaining snapshot needs.

      imagewise backup forget /backup/registry --keep-daily 7 --keep-weekly 4 --keep-monthly 12
    """
    from imagewise.backup.maintain import forget

    result = forget(
        store,
        last=keep_last,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        dry_run=dry_run,
        key=_key(key_file),
    )
    echo(FORGET.encode(fmt, result), nl=False)
    return 0


@backup_group.command("prune")
@argument("store", metavar="STORE")
@option(
    "--grace",
    type=float,
    default=3600,
    metavar="SECONDS",
    help="Keep unreferenced blobs younger than this.",
)
@option("--dry-run", flag=True, help="Print what would be removed; change nothing.")
@_key_option
@format_option(PRUNE)
def backup_prune_cmd(
    store: str, grace: float, dry_run: bool, key_file: str | None, fmt: str
) -> int:
    """Remove the blobs no remaining snapshot needs (mark and sweep, with a grace period).

    imagewise backup prune /backup/registry
    """
    from imagewise.backup.maintain import prune

    echo(
        PRUNE.encode(fmt, prune(store, grace=grace, dry_run=dry_run, key=_key(key_file))), nl=False
    )
    return 0


@backup_group.command("du")
@argument("store", metavar="STORE")
@_key_option
@format_option(BACKUP_DU)
def backup_du_cmd(store: str, key_file: str | None, fmt: str) -> int:
    """Logical bytes per snapshot against the bytes stored: what deduplication saves.

    imagewise backup du /backup/registry
    """
    from imagewise.backup.maintain import usage

    echo(BACKUP_DU.encode(fmt, usage(store, key=_key(key_file))), nl=False)
    return 0


@command("restore")
@argument("snapshot", metavar="SNAPSHOT")
@option("--store", metavar="STORE", help="The backup store directory (required).")
@option("--to", "target", metavar="REGISTRY|oci:DIR", help="Where to restore (required).")
@option("--repo", metavar="REPO", help="Only this repository.")
@option("--tag", metavar="TAG", help="Only this tag.")
@option("--prefix", default="", metavar="P", help="Restore under P/ in the target.")
@option(
    "--files-to",
    metavar="DIR",
    help="Write the snapshot's config files and data directories under DIR.",
)
@option("--jobs", "-j", type=int, default=4, metavar="N", help="Images restored in parallel.")
@_key_option
@format_option(RESTORE)
@insecure_option
def restore_cmd(
    snapshot: str,
    store: str | None,
    target: str | None,
    repo: str | None,
    tag: str | None,
    prefix: str,
    files_to: str | None,
    jobs: int,
    key_file: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Restore a snapshot's images (digests preserved), then read everything back to verify.

    SNAPSHOT is an id, a unique id prefix, or `latest`. First prepares (the store has every
    blob, the target answers), then restores in parallel, then verifies: every manifest and
    blob is read back from the target and digest-checked, and every tag names the digest the
    snapshot recorded. A failed verification exits 2.

      imagewise restore latest --store /backup/registry --to localhost:5000
      imagewise restore 20261204T0512 --store /backup/registry --repo app --to oci:./app-restore
    """
    from imagewise.backup.restore import restore

    if store is None or (target is None and files_to is None):
        raise UsageError(
            "restore needs --store STORE and --to REGISTRY|oci:DIR (or --files-to DIR)"
        )
    if files_to is not None:
        from imagewise.backup.restore import restore_files

        done = restore_files(store, snapshot, files_to, key=_key(key_file))
        echo(
            f"wrote {done['config_files']} config file(s) and {done['data_files']} data file(s) "
            f"of snapshot {done['snapshot']} under {done['to']}",
            err=True,
        )
        if target is None:
            return 0
    assert target is not None
    result = restore(
        store,
        snapshot,
        target,
        repo=repo,
        tag=tag,
        prefix=prefix,
        insecure=insecure,
        jobs=jobs,
        key=_key(key_file),
    )
    echo(RESTORE.encode(fmt, result), nl=False)
    return 0


@command("drill")
@argument("snapshot", metavar="SNAPSHOT")
@option("--store", metavar="STORE", help="The backup store directory (required).")
@option("--scratch", metavar="REGISTRY|oci:DIR", help="Where to restore for the drill (required).")
@option(
    "--policy",
    "policy_file",
    metavar="FILE",
    help="Check restored images under this policy "
    "(default: the policy file the snapshot backed up, else the default policy).",
)
@option("--require-pass", flag=True, help="Fail the drill when a restored image fails its check.")
@option("-o", "--output", metavar="FILE", help="Write the report to FILE (default: stdout).")
@_key_option
@format_option(DRILL)
@insecure_option
def drill_cmd(
    snapshot: str,
    store: str | None,
    scratch: str | None,
    policy_file: str | None,
    require_pass: bool,
    output: str | None,
    key_file: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """A recovery drill: restore to a scratch target, verify, check, measure, clean up.

    Restores SNAPSHOT under drill-<id> in the scratch registry (or a fresh directory in the
    scratch layout), reads everything back, runs `imagewise check` on every restored image, and
    reports restore throughput, the drill's total time (RTO) and the snapshot's age (RPO). The
    scratch images are deleted afterwards. Exit 1 when the drill failed.

      imagewise drill latest --store /backup/registry --scratch localhost:5001
      imagewise drill latest --store /backup/registry --scratch oci:/tmp/drills --format html -o drill.html
    """
    from imagewise.backup.drill import drill

    if store is None or scratch is None:
        raise UsageError("drill needs --store STORE and --scratch REGISTRY|oci:DIR")
    result = drill(
        store,
        snapshot,
        scratch,
        policy_file=policy_file,
        require_pass=require_pass,
        insecure=insecure,
        key=_key(key_file),
    )
    text = DRILL.encode(fmt, result)
    if output and output != "-":
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
        echo(f"wrote {output} ({fmt} drill report)", err=True)
    else:
        echo(text, nl=False)
    return 0 if result.ok else 1
