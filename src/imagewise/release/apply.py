"""Apply a tag set by manifest PUT only: the source manifest's exact bytes under each tag."""

from __future__ import annotations

from imagewise.errors import NotFound
from imagewise.registry.client import RegistryClient


class TagChange:
    """One tag's move: its digest before (None: new tag) and after."""

    __slots__ = ("tag", "old", "new")  # noqa: RUF023

    def __init__(self, tag: str, old: str | None, new: str) -> None:
        self.tag, self.old, self.new = tag, old, new

    @property
    def changed(self) -> bool:
        return self.old != self.new


def apply_tags(
    client: RegistryClient, repo: str, source: str, tags: list[str], *, dry_run: bool = False
) -> list[TagChange]:
    """Point each of ``tags`` at the manifest ``source`` names (tag or digest).

    The manifest (image or index) is fetched once; its bytes are PUT as is under each tag, so no
    blob is uploaded again. Tags already at that digest are left alone.
    """
    fetched = client.get_manifest(repo, source)
    new = str(fetched.digest)
    changes = []
    for tag in tags:
        try:
            old: str | None = str(client.head_manifest(repo, tag).digest)
        except NotFound:
            old = None
        change = TagChange(tag, old, new)
        if change.changed and not dry_run:
            client.put_manifest(repo, tag, fetched.raw, fetched.media_type)
        changes.append(change)
    return changes
