"""``imagewise sbom IMAGE``: flags -> ``sbom.catalog`` -> renderer -> file or stdout."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, int_range, option, path_type
from imagewise.cli.common import (
    RichReporter,
    checked_files,
    checked_files_option,
    format_option,
    insecure_option,
    platform_option,
)
from imagewise.encoders import SBOM


def sbom_for(
    text: str,
    *,
    platform: str | None = None,
    insecure: bool = False,
    base_layers: int | None = None,
    reporter: object = None,
    checked: object = None,
) -> object:
    """The Catalog of an image reference, or of an SBOM file given instead of an image; with
    ``checked`` (an ``imagewise.cache.LayerCache``), local blobs whose digests an earlier run
    checked are not hashed again while their files are unchanged."""
    from imagewise import progress
    from imagewise.oci.model import Platform
    from imagewise.sbom.catalog import catalog
    from imagewise.sbom.read import looks_like_sbom, read_sbom
    from imagewise.sources import open_source

    if looks_like_sbom(text):
        return read_sbom(text)
    wanted = Platform.parse(platform) if platform else None
    rep = reporter if reporter is not None else progress.NULL
    with open_source(text, insecure=insecure) as src:
        img = src.image(wanted)
        return catalog(img, rep, base_layers=base_layers, checked=checked)  # type: ignore[arg-type]


def _list_catalogers() -> str:
    from imagewise.sbom.catalogers import ALL

    width = max(len(c.id) for c in ALL)
    return "".join(
        f"{c.id:<{width}}  {','.join(c.types) or '-':<8}  {c.description}\n" for c in ALL
    )


@command("sbom")
@argument("image", nargs="?")
@format_option(SBOM, "--format", "-f")
@option(
    "-o",
    "--output",
    "output",
    type=path_type(dir_okay=False),
    help="Write the SBOM to this file instead of stdout.",
)
@option(
    "--base-layers",
    type=int_range(0),
    default=None,
    help="Number of layers that belong to the base image (default: from history).",
)
@option("--list-catalogers", flag=True, help="List the catalogers and exit.")
@checked_files_option
@platform_option
@insecure_option
def sbom_cmd(
    image: str | None,
    fmt: str,
    output: str | None,
    base_layers: int | None,
    list_catalogers: bool,
    no_cache: bool,
    platform: str | None,
    insecure: bool,
) -> int:
    """Software bill of materials of IMAGE: OS packages (apk, deb, rpm) and language packages
    (Python, npm, Go binaries, Java archives), each with the layer that introduced it and whether
    that layer belongs to the base image. IMAGE may also be a CycloneDX or SPDX JSON file.

    The layers of a local archive or layout are checked against their digests; the check is
    remembered in the cache directory ($IMAGEWISE_CACHE_DIR or the user cache dir), so the
    same unchanged file is not hashed again by a later `sbom`, `scan` or `check`."""
    if list_catalogers:
        echo(_list_catalogers(), nl=False)
        return 0
    if not image:
        from imagewise.errors import UsageError

        raise UsageError("missing argument IMAGE (or use --list-catalogers)")
    with RichReporter() as rep:
        cat = sbom_for(
            image,
            platform=platform,
            insecure=insecure,
            base_layers=base_layers,
            reporter=rep,
            checked=checked_files(no_cache),
        )
    text = SBOM.encode(fmt, cat)
    if output:
        from imagewise.fileio import write_file

        write_file(output, text.encode("utf-8"))
        echo(f"wrote {fmt} SBOM to {output}", err=True)
    else:
        echo(text, nl=False)
    return 0
