"""``imagewise files IMAGE [--layer N]``: translation only; the listing is ``layers.listing``."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import (
    RichReporter,
    format_option,
    insecure_option,
    platform_option,
    verify_option,
)
from imagewise.encoders import FILES


@command("files")
@argument("image")
@option(
    "--layer",
    "layer",
    type=int,
    default=None,
    metavar="N",
    help="Show what layer N adds (+), modifies (~) and deletes (-) instead of the "
    "merged filesystem. 0 is the base layer; negative numbers count from the top.",
)
@format_option(FILES)
@platform_option
@insecure_option
@verify_option
def files_cmd(
    image: str, layer: int | None, fmt: str, platform: str | None, insecure: bool, verify: bool
) -> int:
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
        text = FILES.encode(fmt, listing, image=img)
    echo(text, nl=False)
    if not text and listing.layer is not None:
        echo(f"layer {listing.layer} changes no files", err=True)
    return 0
