"""The storage commands: ``du`` (flags -> one library call in ``imagewise.storage`` ->
renderer -> exit code)."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import DU


@command("du")
@argument("refs", nargs="+", metavar="REF")
@option("--top", type=int, default=10, metavar="N", help="How many of the most shared blobs.")
@option(
    "-o", "--output", metavar="FILE", help="Write the report to FILE (e.g. with --format html)."
)
@format_option(DU)
@insecure_option
def du_cmd(refs: tuple[str, ...], top: int, output: str | None, fmt: str, insecure: bool) -> int:
    """Space used by registries, repositories and OCI layouts: logical, unique, shared.

    REF is a registry (localhost:5000: every repository its catalog lists), repositories
    (localhost:5000/app) or an OCI layout (oci:DIR). Per repository and tag: the logical size
    (its images' bytes) and the unique size (every blob once across all REFs), the shared bytes
    and dedup ratio, the blobs the most images share, and untagged manifests (OCI layouts; a
    registry's API cannot list them). Reads manifests only, in parallel.

      imagewise du localhost:5000
      imagewise du localhost:5000/app localhost:5000/base --format json
      imagewise du oci:build/layout --format html -o du.html
    """
    from imagewise.storage.du import read_targets, space_report

    report = space_report(read_targets(list(refs), insecure=insecure), top=top)
    text = DU.encode(fmt, report)
    if output and output != "-":
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
        echo(f"wrote {output} ({fmt} space report)", err=True)
    else:
        echo(text, nl=False)
    return 0
