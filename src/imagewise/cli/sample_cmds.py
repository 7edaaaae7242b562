"""``imagewise sample DIR``: write the bundled sample image (offline) as an OCI layout."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option, path_type


@command("sample")
@argument("directory", type=path_type(file_okay=False))
@option("--tag", default=None, help="Tag in the layout's index.json (default: latest).")
@option(
    "--source",
    type=path_type(exists=True, file_okay=False),
    default=None,
    help="The examples/sample directory to build from (default: this checkout's).",
)
def sample_cmd(directory: str, tag: str | None, source: str | None) -> int:
    """Build the sample image into DIRECTORY as an OCI layout, without network.

    The image is deliberately flawed (root user, a password in ENV, a setuid file, a deleted
    private key, apt caches, old Python packages, wasted bytes), so every imagewise command has
    something to show. Try next:

      imagewise check oci:DIRECTORY
      imagewise inspect oci:DIRECTORY
    """
    from imagewise.sample import build_sample

    result = build_sample(directory, source=source, tag=tag)
    echo(f"{result.reference} {result.digest} ({result.layers} layers, {result.size} bytes)")
    return 0
