"""``imagewise analyze`` and ``imagewise diff``: flags -> library call -> renderer -> exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from imagewise.cli.args import argument, command, echo, option, path_type
from imagewise.cli.common import (
    RichReporter,
    format_option,
    insecure_option,
    platform_option,
    verify_option,
)
from imagewise.encoders import ANALYSIS, DIFF

if TYPE_CHECKING:
    from imagewise.progress import Reporter


def _write(text: str, output: str | None) -> None:
    if output and output != "-":
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
    else:
        echo(text, nl=False)


def _open_image(text: str, platform: str | None, insecure: bool) -> Any:
    from imagewise.oci.model import Platform
    from imagewise.sources import open_source

    wanted = Platform.parse(platform) if platform else None
    src = open_source(text, insecure=insecure)
    try:
        return src, src.image(wanted)
    except BaseException:
        src.close()
        raise


def _gates(
    ci: bool,
    ci_config: str | None,
    efficiency: str | None,
    wasted: str | None,
    user_percent: str | None,
    reclaimable: str | None,
) -> list[Any]:
    """The gates asked for (``analysis.gates.gates_for``; not imported when none is)."""
    flags = (efficiency, wasted, user_percent, reclaimable)
    if not ci and not ci_config and all(f is None for f in flags):
        return []
    from imagewise.analysis.gates import gates_for

    return gates_for(
        ci=ci,
        ci_config=ci_config,
        efficiency=efficiency,
        wasted=wasted,
        user_percent=user_percent,
        reclaimable=reclaimable,
    )


def _gate_lines(outcomes: list[Any]) -> str:
    from imagewise.analysis.text import render_gates

    return render_gates(outcomes)


@command("analyze")
@argument("image")
@format_option(ANALYSIS, "--format", "-f")
@option("-o", "--output", metavar="FILE", help="Write the report to FILE (default: stdout).")
@option(
    "--fail-under-efficiency",
    metavar="RATIO",
    help="Fail when dive's efficiency is below RATIO (0-1, or a percentage like 90%).",
)
@option(
    "--max-wasted-bytes",
    metavar="SIZE",
    help="Fail when dive's wasted bytes exceed SIZE (20MB, 20MiB, 512).",
)
@option(
    "--max-user-wasted-percent",
    metavar="RATIO",
    help="Fail when dive's user wasted percent exceeds RATIO (0-1).",
)
@option(
    "--max-reclaimable-bytes", metavar="SIZE", help="Fail when the reclaimable bytes exceed SIZE."
)
@option(
    "--ci",
    flag=True,
    help="Apply dive's default CI rules (efficiency 0.9, user wasted 0.1) and read "
    "./.dive-ci when present.",
)
@option(
    "--ci-config",
    metavar="FILE",
    type=path_type(dir_okay=False),
    help="Read gate thresholds from a dive .dive-ci YAML file (either key spelling).",
)
@platform_option
@insecure_option
@verify_option
def analyze_cmd(
    image: str,
    fmt: str,
    output: str | None,
    fail_under_efficiency: str | None,
    max_wasted_bytes: str | None,
    max_user_wasted_percent: str | None,
    max_reclaimable_bytes: str | None,
    ci: bool,
    ci_config: str | None,
    platform: str | None,
    insecure: bool,
    verify: bool,
) -> int:
    """Layer efficiency of IMAGE: dive-exact figures, reclaimable bytes, waste and its fixes.

    Exit status: 0 ok, 1 a gate failed, 2 bad input.
    """
    from imagewise.analysis import analyze

    gate_list = _gates(
        ci,
        ci_config,
        fail_under_efficiency,
        max_wasted_bytes,
        max_user_wasted_percent,
        max_reclaimable_bytes,
    )  # validated before the pass
    src, img = _open_image(image, platform, insecure)
    with src, RichReporter() as reporter:
        result = analyze(img, cast("Reporter", reporter), verify=verify)
    outcomes = [g.evaluate(result) for g in gate_list]
    failed = any(r.failed for r in outcomes)
    _write(ANALYSIS.encode(fmt, result, gates=outcomes), output)
    if output and output != "-":
        verdict = f", gates {'failed' if failed else 'passed'}" if outcomes else ""
        echo(f"wrote {output} ({fmt} analysis{verdict})", err=True)
    table_on_stdout = fmt == "table" and (not output or output == "-")
    if outcomes and not table_on_stdout:  # gate lines reach the terminal whatever the format
        echo(_gate_lines(outcomes).lstrip("\n"), err=True)
    if failed:
        return 1
    return 0


@command("diff")
@argument("image_a")
@argument("image_b")
@format_option(DIFF)
@option("-o", "--output", metavar="FILE", help="Write the report to FILE (default: stdout).")
@platform_option
@insecure_option
@verify_option
def diff_cmd(
    image_a: str,
    image_b: str,
    fmt: str,
    output: str | None,
    platform: str | None,
    insecure: bool,
    verify: bool,
) -> int:
    """Files added, removed and changed between IMAGE_A and IMAGE_B, and the size per layer."""
    from imagewise.analysis.diff import diff_images

    src_a, img_a = _open_image(image_a, platform, insecure)
    src_b, img_b = _open_image(image_b, platform, insecure)
    with src_a, src_b, RichReporter() as reporter:
        result = diff_images(img_a, img_b, cast("Reporter", reporter), verify=verify)
    _write(DIFF.encode(fmt, result), output)
    return 0
