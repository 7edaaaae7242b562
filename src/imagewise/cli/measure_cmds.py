"""``imagewise measure pull`` (flags -> ``imagewise.measure.measure_pull``)."""

from __future__ import annotations

from imagewise.cli.args import argument, echo, group, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import PULL


@group("measure")
def measure_group() -> None:
    """Measure what users feel: how long an image takes to pull."""


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
