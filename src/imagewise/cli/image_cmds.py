"""``imagewise inspect`` and ``imagewise copy``: translation only, the work is in the library."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, int_range, option
from imagewise.cli.common import format_option, insecure_option, platform_option
from imagewise.encoders import COPY, INSPECT


@command("inspect")
@argument("image")
@format_option(INSPECT)
@option(
    "--show-secrets",
    flag=True,
    help="Show secret-looking values in clear (masked by default, as in scan and check).",
)
@platform_option
@insecure_option
def inspect_cmd(
    image: str, fmt: str, platform: str | None, insecure: bool, show_secrets: bool
) -> int:
    """Show an image's digest, platform, config and layers.

    IMAGE is a reference with an optional transport: docker://, oci:, oci-archive:,
    docker-archive: (a bare path to a local archive or layout also works).
    """
    from imagewise.inspection import inspect_image

    doc = inspect_image(image, platform=platform, insecure=insecure, show_secrets=show_secrets)
    echo(INSPECT.encode(fmt, doc), nl=False)
    return 0


@command("copy")
@argument("src")
@argument("dst")
@option(
    "--platform",
    metavar="OS/ARCH[/VARIANT]",
    help="Copy only this platform's image (default: every platform of a multi-platform "
    "image; a docker-archive destination holds one, this host's). A single-platform "
    "image must be this platform.",
)
@option(
    "--jobs",
    "-j",
    type=int_range(1, 64),
    default=6,
    show_default=True,
    help="Blobs transferred in parallel.",
)
@format_option(COPY, what="Summary format")
@option(
    "--stall-timeout",
    "stall",
    type=int_range(1, None),
    metavar="SECONDS",
    help="A registry request that moves no byte for this long is retried (3 tries), "
    "then fails. [default: 60, or $IMAGEWISE_STALL_TIMEOUT]",
)
@option(
    "--timeout",
    type=int_range(1, None),
    metavar="SECONDS",
    help="Give up when the whole copy takes longer than this. [default: no limit]",
)
@option(
    "--compress",
    choices=("gzip", "zstd"),
    help="Recompress every layer (diff_ids and config kept; manifests rewritten: new digest).",
)
@option(
    "--level",
    type=int_range(1, 19),
    metavar="N",
    help="Compression level for --compress (gzip 1-9, default 6; zstd 1-19, default 3).",
)
@insecure_option
def copy_cmd(
    src: str,
    dst: str,
    platform: str | None,
    jobs: int,
    fmt: str,
    stall: int | None,
    timeout: int | None,
    compress: str | None,
    level: int | None,
    insecure: bool,
) -> int:
    """Copy an image from SRC to DST, preserving the manifest digest where the format allows.

    An index (multi-platform image) is copied whole, every platform, unless --platform picks one
    (a docker-archive destination holds one image: this host's unless --platform says otherwise).
    Blobs the destination has are skipped; on one registry they are mounted across repositories.
    An OCI layout or archive gets Docker manifests converted to OCI media types (a new digest).
    Failed or stalled registry requests and uploads are retried; each wait is said on stderr.

      imagewise copy docker-archive:app.tar docker://localhost:5000/app:1.0
      imagewise copy docker://localhost:5000/app:1.0 oci:./backup:1.0
      imagewise copy docker://localhost:5000/app:1.0 docker://localhost:5000/app:1.0-zstd \\
          --compress zstd --level 9

    With --compress, every layer is decompressed, checked against its diff_id and compressed
    again (zstd layers get the OCI media type, which imagewise, skopeo and registries read);
    the summary gives the layer bytes before and after.
    """
    from typing import cast

    from imagewise.cli.common import RichReporter
    from imagewise.copy import copy
    from imagewise.progress import Reporter

    with RichReporter() as reporter:
        result = copy(
            src,
            dst,
            platform=platform,
            insecure=insecure,
            jobs=jobs,
            reporter=cast(Reporter, reporter),
            stall=stall,
            timeout=timeout,
            compress=compress,
            level=level,
        )
    echo(COPY.encode(fmt, result), nl=False)
    return 0
