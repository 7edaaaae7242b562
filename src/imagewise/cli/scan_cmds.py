"""``imagewise scan`` and ``imagewise db import|status``: flags -> library call -> renderer -> exit."""

from __future__ import annotations

import sys
from pathlib import Path

from imagewise.cli.args import argument, command, echo, group, option, path_type
from imagewise.cli.common import handle_errors, insecure_option, platform_option

_DB_HELP = ("SQLite vulnerability database (default: $IMAGEWISE_DB, else the user cache dir "
            "imagewise/osv.sqlite).")


def _db_path(db: Path | None) -> Path:
    from imagewise.vulns.store import default_path

    return db if db is not None else default_path()


def _warn(text: str) -> None:
    from imagewise.textsafe import safe

    echo(f"imagewise: warning: {safe(text)}", err=True)


def _is_json_file(target: str) -> bool:
    p = Path(target)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(512).lstrip()[:1] == b"{"


@command("scan")
@argument("target", metavar="IMAGE|SBOM")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@option("--fail-on", choices=["low", "medium", "high", "critical"],
         help="Exit 1 when a vulnerability (or secret) at or above this severity is found.")
@option("--ignore-file", "ignore_files", multiple=True,
         type=path_type(exists=True, dir_okay=False, as_path=True),
         help=".imagewise-ignore.yaml, .trivyignore or .grype.yaml (repeatable; default: "
              "those present in the current directory).")
@option("--vex", "vex_files", multiple=True,
         type=path_type(exists=True, dir_okay=False, as_path=True),
         help="OpenVEX document; not_affected/fixed statements suppress (repeatable).")
@option("--format", "fmt", choices=["table", "json", "sarif"], default="table",
         show_default=True)
@option("-o", "--output", type=path_type(dir_okay=False, as_path=True),
         help="Write the report to this file instead of stdout.")
@option("--max-db-age", type=float, default=7.0, show_default=True,
         envvar="IMAGEWISE_MAX_DB_AGE", metavar="DAYS",
         help="Warn when the newest record in the database is older than this.")
@option("--no-secrets", flag=True, help="Skip the secrets scan of layers and config.")
@platform_option
@insecure_option
@handle_errors
def scan_cmd(target: str, db: Path | None, fail_on: str | None, ignore_files: tuple[Path, ...],
             vex_files: tuple[Path, ...], fmt: str, output: Path | None, max_db_age: float,
             no_secrets: bool, platform: str | None, insecure: bool) -> None:
    """Vulnerabilities (offline OSV database) and secrets of an image, or of an SBOM file.

    Exit codes: 0 no finding at the --fail-on level, 1 gate failed, 2 bad input.
    Never uses the network for vulnerability data: import it first with 'imagewise db import'.
    """
    from imagewise.vulns.ignores import discover, load_decisions
    from imagewise.vulns.render import render
    from imagewise.vulns.scan import scan_image, scan_packages

    db_path = _db_path(db)
    files = list(ignore_files) or discover(Path.cwd())
    decisions = load_decisions(files, list(vex_files))
    if _is_json_file(target):  # an image archive never starts with "{"; an SBOM does
        from imagewise.sbom.read import read_sbom

        cat = read_sbom(Path(target))
        for s in cat.skipped[:10]:
            _warn(f"SBOM component skipped: {s.path}: {s.reason}")
        result = scan_packages(cat.packages, db_path, source=target, decisions=decisions,
                               max_age_days=max_db_age)
    else:
        from imagewise.cli.common import RichReporter
        from imagewise.oci.model import Platform
        from imagewise.sources import open_source

        plat = Platform.parse(platform) if platform else None
        with open_source(target, insecure=insecure) as src, RichReporter() as rep:
            image = src.image(plat)
            result = scan_image(image, db_path, decisions=decisions, secrets=not no_secrets,
                                max_age_days=max_db_age, reporter=rep)
    for w in result.warnings:
        _warn(w)
    if not result.vulns_scanned:
        _warn(result.db_note)
    text = render(result, fmt)
    if output is not None:
        from imagewise.fileio import write_file

        write_file(str(output), text.encode("utf-8"))
    else:
        echo(text, nl=False)
    if fail_on and not result.vulns_scanned:
        echo(f"imagewise: error: --fail-on {fail_on} cannot be decided: "
                   f"{result.db_note}", err=True)
        sys.exit(2)
    if result.fails(fail_on):
        sys.exit(1)


@group("db")
def db_group() -> None:
    """The offline vulnerability database (OSV records in SQLite)."""


@db_group.command("import")
@argument("paths", nargs="+", type=path_type(as_path=True))
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@handle_errors
def db_import_cmd(paths: tuple[Path, ...], db: Path | None) -> None:
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
    echo(f"{db_path}: {stats.added} added, {stats.updated} updated, "
               f"{stats.unchanged} unchanged, {len(stats.skipped)} skipped; "
               f"{status.records} records in total")
    for where, reason in stats.skipped[:20]:
        _warn(f"skipped {where}: {reason}")
    if len(stats.skipped) > 20:
        _warn(f"... and {len(stats.skipped) - 20} more skipped")
    if stats.seen == 0 and stats.skipped:
        raise VulnDBError("no OSV record could be imported")


@db_group.command("status")
@option("--db", "db", type=path_type(dir_okay=False, as_path=True), help=_DB_HELP)
@option("--format", "fmt", choices=["table", "json"], default="table",
         show_default=True)
@handle_errors
def db_status_cmd(db: Path | None, fmt: str) -> None:
    """Sources, record counts per ecosystem and age of the database."""
    import json

    from imagewise.vulns.store import VulnDB

    with VulnDB(_db_path(db)) as store:
        status = store.status()
    if fmt == "json":
        echo(json.dumps(status.to_json(), indent=2))
        return
    age = status.age_days()
    echo(f"database: {status.path}")
    echo(f"records: {status.records} ({status.withdrawn} withdrawn)")
    echo(f"newest record: {status.newest_modified or '-'}"
               + (f" ({age:.1f} days old)" if age is not None else ""))
    echo(f"last import: {status.last_import or '-'}")
    echo("ecosystems:")
    for eco, n in status.per_ecosystem.items():
        echo(f"  {eco:<20} {n}")
    echo("sources:")
    for path, when, n in status.sources:
        echo(f"  {path}  ({n} records, imported {when})")
