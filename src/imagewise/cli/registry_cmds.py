"""``imagewise tags REPO``: list a repository's tags (all pages)."""

from __future__ import annotations

import json

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import handle_errors, insecure_option


@command("tags")
@argument("repository", metavar="REPO")
@option("--format", "fmt", choices=["table", "json"], default="table",
         show_default=True, help="Output format.")
@insecure_option
@handle_errors
def tags_cmd(repository: str, fmt: str, insecure: bool) -> None:
    """List the tags of REPO (e.g. docker.io/library/alpine or localhost:5000/app).

    A docker:// prefix is accepted; a tag or digest in REPO is ignored.
    """
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    tags = client_for(ref, insecure).list_tags(ref.repository)
    if fmt == "json":
        doc = {"schema": "imagewise/tags/v1", "repository": ref.name, "tags": tags}
        echo(json.dumps(doc, indent=2))
        return
    if not tags:
        echo(f"{ref.name}: no tags", err=True)
        return
    for tag in tags:
        echo(tag)
