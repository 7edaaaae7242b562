"""``imagewise files IMAGE [--layer N]``: translation only; the listing is ``layers.listing``."""

from __future__ import annotations

import json

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import (
    RichReporter,
    handle_errors,
    insecure_option,
    platform_option,
    verify_option,
)
from imagewise.units import format_size

_MARK = {"added": "+", "modified": "~", "deleted": "-"}


def _show(name: str) -> str:
    """A tar name for a terminal: control characters and bytes that are not UTF-8 escaped."""
    from imagewise.textsafe import safe

    return safe(name)


@command("files")
@argument("image")
@option("--layer", "layer", type=int, default=None, metavar="N",
         help="Show what layer N adds (+), modifies (~) and deletes (-) instead of the "
              "merged filesystem. 0 is the base layer; negative numbers count from the top.")
@option("--format", "fmt", choices=["table", "json"], default="table",
         show_default=True, help="Output format.")
@platform_option
@insecure_option
@verify_option
@handle_errors
def files_cmd(image: str, layer: int | None, fmt: str, platform: str | None,
              insecure: bool, verify: bool) -> None:
    """List the files of IMAGE: the merged filesystem, or one layer's changes.

    IMAGE is a reference with an optional transport: docker://, oci:, oci-archive:,
    docker-archive: (see `imagewise --help`).
    """
    from imagewise.layers.listing import list_files
    from imagewise.oci.model import Platform
    from imagewise.sources import open_source

    wanted = Platform.parse(platform) if platform else None
    with open_source(image, insecure=insecure) as src:
        img = src.image(wanted)
        with RichReporter() as reporter:
            listing = list_files(img, layer, reporter, verify=verify)
        if fmt == "json":
            echo(json.dumps(listing.to_json(img), indent=2))
            return
    lines = []
    for r in listing.rows:
        name = _show(r.path)
        if r.kind.value == "symlink":
            name = f"{name} -> {_show(r.linkname)}"
        elif r.kind.value == "hardlink":
            name = f"{name} link to {_show(r.linkname)}"
        owner = f"{r.uid}:{r.gid}"
        size = format_size(r.size) if r.kind.value == "file" else "-"
        mark = f"{_MARK.get(r.change, ' ')} " if listing.layer is not None else ""
        lines.append(f"{mark}{r.permissions} {owner:>11} {size:>9}  {name}")
    if lines:
        echo("\n".join(lines))
    elif listing.layer is not None:
        echo(f"layer {listing.layer} changes no files", err=True)
