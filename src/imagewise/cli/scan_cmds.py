"""``imagewise scan`` and ``imagewise db import|status``: flags -> library call -> renderer -> exit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from imagewise.cli.args import argument, command, echo, group, option, path_type
from imagewise.cli.common import (
    checked_files_option,
    format_option,
    insecure_option,
    platform_option,
)
from imagewise.encoders import DB_STATUS, SCAN

F = TypeVar("F", bound=Callable[..., Any])

_DB_HELP = (
    "SQLite vulnerability database (default: $IMAGEWISE_DB, else the user cache dir "
    "imagewise/osv.sqlite)."
)


def _db_path(db: Path | None) -> Path:
    from imagewise.vulns.store import default_path

    return db if db is not None else default_path()


def _warn(text: str) -> None:
    from imagewise.textsafe import safe

    echo(f"imagewise: warning: {safe(text)}", err=True)


def _say(text: str) -> None:
    echo(f"imagewise: {text}", err=True)


def db_update_options(fn: F) -> F:
    """--offline, --skip-db-update, --update-db and --mirror: shared by scan and check."""
    fn = option(
        "--mirror",
        metavar="URL",
        envvar="IMAGEWISE_OSV_MIRROR",
        help="Where automatic updates fetch OSV data: a mirror of the OSV bucket (URL or "
        "directory with <Ecosystem>/all.zip), or docker://REGISTRY/REPO:TAG to pull "
        "the database pushed there (default: the public OSV bucket).",
    )(fn)
    fn = option(
        "--update-db",
        flag=True,
        help="Update the database before matching even when --db names it.",
    )(fn)
    fn = option(
        "--skip-db-update",
        flag=True,
        help="Don't update a missing or stale database before matching.",
    )(fn)
    return option(
        "--offline",
        flag=True,
        help="No network for vulnerability data (as --skip-db-update; also IMAGEWISE_OFFLINE=1).",
    )(fn)


def auto_update(
    db: Path | None,
    offline: bool,
    skip_db_update: bool,
    update_db: bool,
    mirror: str | None,
    reporter: Any = None,
) -> Any:
    """The database update a scan or check runs with (``vulns.target.db_update_for``), its
    messages on stderr."""
    from imagewise.vulns.target import db_update_for

    return db_update_for(
        db,
        offline=offline,
        skip_db_update=skip_db_update,
        update_db=update_db,
        mirror=mirror,
        say=_say,
        reporter=reporter,
    )


@command("scan")
@argument("target", metavar="IMAGE|SBOM")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@option(
    "--fail-on",
    choices=["low", "medium", "high", "critical"],
    help="Exit 1 when a vulnerability (or secret) at or above this severity is found.",
)
@option(
    "--ignore-file",
    "ignore_files",
    multiple=True,
    type=path_type(exists=True, dir_okay=False, as_path=True),
    help=".imagewise-ignore.yaml, .trivyignore or .grype.yaml (repeatable; default: "
    "those present in the current directory).",
)
@option(
    "--vex",
    "vex_files",
    multiple=True,
    type=path_type(exists=True, dir_okay=False, as_path=True),
    help="OpenVEX document; not_affected/fixed statements suppress (repeatable).",
)
@format_option(SCAN, "--format", "-f")
@option(
    "-o",
    "--output",
    type=path_type(dir_okay=False, as_path=True),
    help="Write the report to this file instead of stdout.",
)
@option(
    "--max-db-age",
    type=float,
    default=7.0,
    show_default=True,
    envvar="IMAGEWISE_MAX_DB_AGE",
    metavar="DAYS",
    help="Warn when the newest record in the database is older than this.",
)
@option("--no-secrets", flag=True, help="Skip the secrets scan of layers and config.")
@checked_files_option
@db_update_options
@platform_option
@insecure_option
def scan_cmd(
    target: str,
    db: Path | None,
    fail_on: str | None,
    ignore_files: tuple[Path, ...],
    vex_files: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    max_db_age: float,
    no_secrets: bool,
    no_cache: bool,
    offline: bool,
    skip_db_update: bool,
    update_db: bool,
    mirror: str | None,
    platform: str | None,
    insecure: bool,
) -> int:
    """Vulnerabilities (OSV database) and secrets of an image, or of an SBOM file.

    Exit codes: 0 no finding at the --fail-on level, 1 gate failed, 2 bad input.
    The default database updates the ecosystems the packages need when they are missing or
    were not checked for a day (see 'imagewise db update'); --offline never uses the network
    for vulnerability data, and a database named with --db is used as it is.

    The layers of a local archive or layout are checked against their digests; the check is
    remembered in the cache directory ($IMAGEWISE_CACHE_DIR or the user cache dir), so the
    same unchanged file is not hashed again by a later `scan`, `sbom` or `check`.
    """
    from imagewise.cli.common import RichReporter, checked_files
    from imagewise.vulns.ignores import discover, load_decisions
    from imagewise.vulns.target import scan_target

    files = list(ignore_files) or discover(Path.cwd())
    decisions = load_decisions(files, list(vex_files))
    with RichReporter() as rep:
        result = scan_target(
            target,
            _db_path(db),
            decisions=decisions,
            platform=platform,
            insecure=insecure,
            secrets=not no_secrets,
            max_age_days=max_db_age,
            update=lambda r: auto_update(db, offline, skip_db_update, update_db, mirror, r),
            reporter=rep,
            warn=_warn,
            checked=checked_files(no_cache),
        )
    for w in result.warnings:
        _warn(w)
    if not result.vulns_scanned:
        _warn(result.db_note)
    text = SCAN.encode(fmt, result)
    if output is not None:
        from imagewise.fileio import write_file

        write_file(str(output), text.encode("utf-8"))
    else:
        echo(text, nl=False)
    if fail_on and not result.vulns_scanned:
        echo(f"imagewise: error: --fail-on {fail_on} cannot be decided: {result.db_note}", err=True)
        return 2
    if result.fails(fail_on):
        return 1
    return 0


@group("db")
def db_group() -> None:
    """The vulnerability database (OSV records in SQLite): update, import, status, push, pull."""


@db_group.command("update")
@option(
    "--ecosystem",
    "ecosystems",
    multiple=True,
    metavar="NAME",
    help="OSV ecosystem to fetch, as the bucket names it: PyPI, npm, Go, Maven, crates.io, "
    "RubyGems, Debian, Alpine, Ubuntu, Red Hat, ... (repeatable; default: those an "
    "earlier update fetched, else these ten).",
)
@option(
    "--mirror",
    metavar="URL",
    envvar="IMAGEWISE_OSV_MIRROR",
    help="A mirror of the OSV bucket: URL or directory with <Ecosystem>/all.zip, or "
    "docker://REGISTRY/REPO:TAG to pull a database 'db push' stored there (default: "
    "$IMAGEWISE_OSV_MIRROR, else https://osv-vulnerabilities.storage.googleapis.com).",
)
@option("--force", flag=True, help="Download even what did not change since the last update.")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
def db_update_cmd(
    ecosystems: tuple[str, ...], mirror: str | None, force: bool, db: Path | None
) -> int:
    """Fetch the OSV exports of each ecosystem (<mirror>/<Ecosystem>/all.zip), only what changed.

    A conditional request (ETag, Last-Modified) skips an unchanged archive; a changed one is
    downloaded next to the database, checked, and imported in one transaction, so a scan
    running meanwhile sees the old data or the new. Exit 2 when an ecosystem could not be
    updated (the others still are).
    """
    from imagewise.cli.common import RichReporter
    from imagewise.errors import VulnDBError
    from imagewise.vulns.update import known_ecosystems, mirror_url, update

    db_path = _db_path(db)
    wanted = list(ecosystems) or known_ecosystems(db_path)
    if mirror_url(mirror).startswith("docker://"):
        _say(f"updating {db_path} from {mirror_url(mirror)} (the whole database)")
    else:
        _say(f"updating {db_path} from {mirror_url(mirror)}: {', '.join(wanted)}")
    with RichReporter() as rep:
        results = update(db_path, wanted, mirror, reporter=rep, force=force)
    for r in results:
        echo(r.line())
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise VulnDBError(
            f"{len(failed)} of {len(results)} ecosystems not updated "
            f"({', '.join(r.ecosystem for r in failed)})"
        )
    return 0


@db_group.command("import")
@argument("paths", nargs="+", type=path_type(as_path=True))
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
def db_import_cmd(paths: tuple[Path, ...], db: Path | None) -> int:
    """Import OSV records: JSON/YAML files, directories of them, osv.dev all.zip exports.

    Re-importing is incremental: records whose 'modified' time did not change are skipped.
    """
    from imagewise.errors import VulnDBError
    from imagewise.vulns.store import VulnDB

    for p in paths:
        if not p.exists():
            raise VulnDBError(f"{p}: no such file or directory")
    db_path = _db_path(db)
    with VulnDB(db_path, create=True) as store:
        stats = store.import_paths(paths)
        status = store.status()
    echo(
        f"{db_path}: {stats.added} added, {stats.updated} updated, "
        f"{stats.unchanged} unchanged, {len(stats.skipped)} skipped; "
        f"{status.records} records in total"
    )
    for where, reason in stats.skipped[:20]:
        _warn(f"skipped {where}: {reason}")
    if len(stats.skipped) > 20:
        _warn(f"... and {len(stats.skipped) - 20} more skipped")
    if stats.seen == 0 and stats.skipped:
        raise VulnDBError("no OSV record could be imported")
    return 0


@db_group.command("status")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@format_option(DB_STATUS)
def db_status_cmd(db: Path | None, fmt: str) -> int:
    """Sources, record counts per ecosystem and age of the database."""
    from imagewise.vulns.store import VulnDB

    with VulnDB(_db_path(db)) as store:
        status = store.status()
        feeds = store.feeds()
    echo(DB_STATUS.encode(fmt, status, feeds=feeds), nl=False)
    return 0


@db_group.command("push")
@argument("target", metavar="docker://REGISTRY/REPO:TAG")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@insecure_option
def db_push_cmd(target: str, db: Path | None, insecure: bool) -> int:
    """Push the database to a registry as an OCI artifact (application/vnd.imagewise.osv-db.v1).

    A consistent snapshot is taken even while an import runs. Every CI job can then
    'imagewise db pull' it from the team's own registry instead of the OSV bucket.
    """
    from imagewise.cli.common import RichReporter
    from imagewise.vulns.artifact import push

    with RichReporter() as rep:
        t = push(_db_path(db), target, insecure=insecure, reporter=rep)
    echo(f"pushed {t.reference}: {t.records} records, newest modified {t.newest[:10] or '-'}")
    echo(f"digest: {t.digest}")
    return 0


@db_group.command("pull")
@argument("source", metavar="docker://REGISTRY/REPO:TAG")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@insecure_option
def db_pull_cmd(source: str, db: Path | None, insecure: bool) -> int:
    """Pull a database pushed with 'imagewise db push' and swap it in whole.

    The blob's digest is verified and the file checked before it replaces the database;
    scans running meanwhile see the old database or the new one. Nothing is downloaded when
    the database already is that artifact.
    """
    from imagewise.cli.common import RichReporter
    from imagewise.vulns.artifact import pull

    db_path = _db_path(db)
    with RichReporter() as rep:
        t = pull(source, db_path, insecure=insecure, reporter=rep)
    if t.unchanged:
        echo(f"{db_path}: already holds {t.reference} ({t.records} records); nothing downloaded")
    else:
        echo(
            f"{db_path}: pulled {t.reference}: {t.records} records, newest modified "
            f"{t.newest[:10] or '-'}"
        )
    echo(f"digest: {t.digest}")
    return 0
