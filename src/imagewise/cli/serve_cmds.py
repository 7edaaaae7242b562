"""``imagewise serve [run]`` and ``imagewise serve token`` (flags -> ``imagewise.service``)."""

from __future__ import annotations

import os
from typing import Any

from imagewise.cli.args import argument, command, group, option
from imagewise.cli.common import insecure_option
from imagewise.errors import UsageError

#: serve's and worker's --stale-after
stale_after_option = option(
    "--stale-after",
    type=float,
    default=60.0,
    metavar="SECONDS",
    help="A running job without a heartbeat this long is taken back (its worker died).",
)


@group("serve", default="run")
def serve_group() -> None:
    """Run the service (`imagewise serve [run] ...`) and manage its API tokens.

    `imagewise serve --listen ...` is `imagewise serve run --listen ...`.
    """


@serve_group.command("token")
@argument("name", metavar="NAME")
@option(
    "--scope", choices=("read", "write", "admin"), default="read", help="What the token may do."
)
@option("--revoke", flag=True, help="Revoke the token NAME instead.")
@option(
    "--db", metavar="URL", help="The service's database (default: SQLite in the user data dir)."
)
def serve_token_cmd(name: str, scope: str, revoke: bool, db: str | None) -> int:
    """Create an API token (printed once; kept only as a hash) or revoke one.

    Scopes nest: read (the API and /metrics), write (also queue checks), admin (everything).

      imagewise serve token grafana --scope read
      imagewise serve token ci --scope write
      imagewise serve token grafana --revoke
    """
    from imagewise.cli.args import echo

    try:
        from imagewise.service.db import connect
        from imagewise.service.tokens import create_token, revoke_token
    except ImportError as e:
        raise _no_server_extra("serve", e) from None
    engine = connect(db)
    if revoke:
        if not revoke_token(engine, name):
            raise UsageError(f"no token named {name!r}")
        echo(f"revoked {name}", err=True)
        return 0
    echo(create_token(engine, name, scope))
    echo(f"created token {name} ({scope}); it is shown only now", err=True)
    return 0


@serve_group.command("run")
@option("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="Where the API listens.")
@option("--db", metavar="URL", help="SQLAlchemy URL (default: SQLite in the user data dir).")
@option(
    "--workers", type=int, default=1, metavar="N", help="Jobs each worker process runs at once."
)
@option(
    "--worker-processes",
    type=int,
    default=2,
    metavar="N",
    help="Worker processes (`imagewise worker`) the service starts; 0: threads of this one.",
)
@stale_after_option
@option("--policy", "policy_file", metavar="FILE", help="The policy checks run under.")
@option(
    "--config",
    "config_file",
    metavar="FILE",
    help="Service config YAML (alerts: rules and channels).",
)
@option(
    "--secret-env",
    default="IMAGEWISE_SECRET",
    metavar="VAR",
    help="Environment variable holding the shared secret of /notifications and the API.",
)
@insecure_option
def serve_cmd(
    listen: str,
    db: str | None,
    workers: int,
    worker_processes: int,
    stale_after: float,
    policy_file: str | None,
    config_file: str | None,
    secret_env: str,
    insecure: bool,
) -> int:
    """Run the service: scan on push, a job queue and workers, an API and /metrics.

    Point a registry's notifications at http://HOST:PORT/notifications with the header
    `Authorization: Bearer $IMAGEWISE_SECRET`; every pushed tag is checked once per digest,
    and the results are served by the API (/api/v1/images, OpenAPI at /openapi.json) and as
    Prometheus metrics (/metrics). Needs `pip install 'imagewise[server]'`.

      IMAGEWISE_SECRET=... imagewise serve --listen 0.0.0.0:8080 --policy policy.yaml
    """
    try:
        from imagewise.service.run import Service
    except ImportError as e:
        raise _no_server_extra("serve", e) from None
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise UsageError(f"set {secret_env}: the shared secret registries and API clients send")
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen {listen}: expected HOST:PORT")
    if worker_processes < 0 or stale_after <= 0:
        raise UsageError("--worker-processes must be 0 or more and --stale-after positive")
    service = Service(
        config=_read_config(config_file),
        config_file=config_file,
        worker_processes=worker_processes,
        stale=stale_after,
        db_url=db,
        secret=secret,
        host=host or "127.0.0.1",
        port=int(port),
        workers=workers,
        policy_file=policy_file,
        insecure=insecure,
    )
    service.serve_forever()
    return 0


def _read_config(config_file: str | None) -> dict[str, Any] | None:
    """The service config's mapping (None without a file)."""
    if not config_file:
        return None
    import yaml

    try:
        with open(config_file, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise UsageError(f"config file not found: {config_file}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"config file {config_file}: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise UsageError(f"config file {config_file}: expected a mapping")
    return config


@command("worker")
@option(
    "--db", metavar="URL", help="The service's database (default: SQLite in the user data dir)."
)
@option("--workers", type=int, default=2, metavar="N", help="Jobs this process runs at once.")
@option("--policy", "policy_file", metavar="FILE", help="The policy checks run under.")
@option("--config", "config_file", metavar="FILE", help="Service config YAML (alerts).")
@stale_after_option
@option(
    "--parent-pid",
    type=int,
    metavar="PID",
    help="Exit, killing this process's jobs, when process PID is gone (serve starts it so).",
)
def worker_cmd(
    db: str | None,
    workers: int,
    policy_file: str | None,
    config_file: str | None,
    stale_after: float,
    parent_pid: int | None,
) -> int:
    """Run jobs of the service's queue in this process: checks, builds, backups, drills,
    space reports. Start as many as you like, on this machine or others that reach the
    database and what the jobs read; `imagewise serve --worker-processes N` starts N itself.
    SIGTERM finishes the running jobs and exits. Needs `pip install 'imagewise[server]'`.

      imagewise worker --db postgresql+psycopg://imagewise@db/imagewise --workers 4
    """
    try:
        from imagewise.service.run import run_worker
    except ImportError as e:
        raise _no_server_extra("worker", e) from None
    if workers < 1 or stale_after <= 0:
        raise UsageError("--workers must be 1 or more and --stale-after positive")
    run_worker(
        db_url=db,
        threads=workers,
        policy_file=policy_file,
        config=_read_config(config_file),
        stale=stale_after,
        parent_pid=parent_pid,
    )
    return 0


def _no_server_extra(command: str, e: ImportError) -> UsageError:
    return UsageError(
        f"imagewise {command} needs the server extra: pip install 'imagewise[server]' ({e.name})"
    )
