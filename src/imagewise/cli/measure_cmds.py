"""``imagewise measure pull`` (flags -> ``imagewise.measure.measure_pull``)."""

from __future__ import annotations

from imagewise.cli.args import argument, echo, group, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import PULL, STARTUP
from imagewise.errors import UsageError


@group("measure")
def measure_group() -> None:
    """Measure what users feel: how long an image takes to pull and to start."""


@measure_group.command("pull")
@argument("image")
@option("--runs", type=int, default=3, metavar="N", help="Pull N times; the median is reported.")
@format_option(PULL)
@insecure_option
def measure_pull_cmd(image: str, runs: int, fmt: str, insecure: bool) -> int:
    """Time a cold pull of IMAGE: every blob fetched, every layer decompressed, per layer.

    imagewise measure pull localhost:5000/app:1.4.2 --runs 5
    """
    from imagewise.measure import measure_pull

    echo(PULL.encode(fmt, measure_pull(image, runs=runs, insecure=insecure)), nl=False)
    return 0


@measure_group.command("startup")
@argument("image")
@option(
    "--command",
    metavar="'CMD ARG...'",
    help="Start this (split as a shell would) instead of the image's ENTRYPOINT and CMD.",
)
@option("--log", metavar="REGEX", help="Ready when a line of its output matches.")
@option("--port", type=int, metavar="N", help="Ready when 127.0.0.1:N accepts connections.")
@option("--runs", type=int, default=3, metavar="N", help="Start N times; the median is reported.")
@option("--timeout", type=float, default=60.0, metavar="SECONDS", help="Give up after this long.")
@format_option(STARTUP)
@insecure_option
def measure_startup_cmd(
    image: str,
    command: str | None,
    log: str | None,
    port: int | None,
    runs: int,
    timeout: float,
    fmt: str,
    insecure: bool,
) -> int:
    """Time how long IMAGE takes to be ready: its entrypoint started in a fresh container (with
    buildah) until a log line matches --log, --port accepts connections, or its HEALTHCHECK passes.

    imagewise measure startup localhost:5000/api:1.4.2 --port 8080 --runs 5
    imagewise measure startup oci:build/app:dev --log "listening on" --command "/app --fast"
    """
    import shlex

    from imagewise.measure import measure_startup

    try:
        argv = shlex.split(command) if command else []
    except ValueError as e:
        raise UsageError(f"--command {command!r}: {e}") from None

    result = measure_startup(
        image,
        command=argv or None,
        log=log,
        port=port,
        runs=runs,
        timeout=timeout,
        insecure=insecure,
    )
    echo(STARTUP.encode(fmt, result), nl=False)
    return 0
