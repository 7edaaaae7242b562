"""``imagewise tags REPO``: list a repository's tags (all pages)."""

from __future__ import annotations

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
    from imagewise.tags import list_tags

    doc = list_tags(repository, insecure=insecure)
    if fmt == "table" and not doc["tags"]:
        echo(f"{doc['repository']}: no tags", err=True)
        return 0
    echo(TAGS.encode(fmt, doc), nl=False)
    return 0
