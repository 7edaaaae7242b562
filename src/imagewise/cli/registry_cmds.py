"""``imagewise tags REPO``: list a repository's tags (all pages)."""

from __future__ import annotations

from typing import Any

from imagewise.cli.args import argument, command, echo
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import TAGS


@command("tags")
@argument("repository", metavar="REPO")
@format_option(TAGS)
@insecure_option
def tags_cmd(repository: str, fmt: str, insecure: bool) -> int:
    """List the tags of REPO (e.g. docker.io/library/alpine or localhost:5000/app).

    A docker:// prefix is accepted; a tag or digest in REPO is ignored.
    """
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import client_for

    ref = ImageReference.parse(repository.removeprefix("docker://"))
    tags = client_for(ref, insecure).list_tags(ref.repository)
    if fmt == "table" and not tags:
        echo(f"{ref.name}: no tags", err=True)
        return 0
    echo(TAGS.encode(fmt, {"repository": ref.name, "tags": tags}), nl=False)
    return 0


def tags_table(doc: dict[str, Any]) -> str:
    """One tag a line."""
    return "".join(f"{tag}\n" for tag in doc["tags"])
