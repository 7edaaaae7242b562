"""``imagewise tags [list] REPO``: list a repository's tags (all pages); ``imagewise tags lint
REPO``: check them against the tag convention."""

from __future__ import annotations

from pathlib import Path

from imagewise.cli.args import argument, echo, group, option, path_type
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import TAG_LINT, TAGS


@group("tags", default="list")
def tags_group() -> None:
    """List a repository's tags, or lint them against the tag convention.

    `imagewise tags REPO` is `imagewise tags list REPO`.
    """


@tags_group.command("list")
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


@tags_group.command("lint")
@argument("repository", metavar="REPO")
@option(
    "--policy",
    "policy_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Policy YAML: tags.allowed_patterns and version_management.tagging.",
)
@option(
    "--state",
    "state_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Where release tags' first-seen digests are kept (default: the user cache dir).",
)
@option("--no-record", flag=True, help="Do not add newly seen release tags to the state file.")
@format_option(TAG_LINT)
@insecure_option
def tags_lint_cmd(
    repository: str,
    policy_file: Path | None,
    state_file: Path | None,
    no_record: bool,
    fmt: str,
    insecure: bool,
) -> int:
    """Check a repository's tags against the tag convention (exit 1 on an error finding).

    Reports tags that are no version, env or timestamp tag (IW-TAG-001), `latest` (IW-TAG-002),
    release tags whose digest changed since first seen (IW-TAG-003; first-seen digests are
    kept in --state), env tags on digests no version tag carries (IW-TAG-004) and tags whose
    manifest is gone (IW-TAG-005). Reads only: one manifest HEAD per tag.

      imagewise tags lint localhost:5000/app --policy policy.yaml
      imagewise tags lint ghcr.io/org/app --state .imagewise/tags-seen.json --format json
    """
    from imagewise.policy.model import load_policy
    from imagewise.release.tags_lint import lint_tags

    result = lint_tags(
        repository,
        policy=load_policy(policy_file),
        state_file=state_file,
        record=not no_record,
        insecure=insecure,
    )
    echo(TAG_LINT.encode(fmt, result), nl=False)
    return 1 if result.failed else 0
