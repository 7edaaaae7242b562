"""``imagewise tag``: flags -> ``release.apply.tag_image`` -> renderer -> exit code."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import TAG


@command("tag")
@argument("image")
@option(
    "--semver", metavar="X.Y.Z", help="Release version: tags X.Y.Z, and X.Y and X (forward only)."
)
@option("--env", metavar="NAME", help="Environment tag to point at IMAGE (dev, staging, prod...).")
@option("--timestamp", flag=True, help="Add a YYYYMMDD-HHMMSS tag (UTC, now).")
@option("--git-sha", flag=True, help="Add sha-<7> of the git HEAD (repository in or above cwd).")
@option("--git-dir", metavar="DIR", help="The .git directory for --git-sha.")
@option("--tag", "extra", multiple=True, metavar="TAG", help="Another tag to add (repeatable).")
@option("--dry-run", flag=True, help="Print the plan; write nothing.")
@format_option(TAG)
@insecure_option
def tag_cmd(
    image: str,
    semver: str | None,
    env: str | None,
    timestamp: bool,
    git_sha: bool,
    git_dir: str | None,
    extra: tuple[str, ...],
    dry_run: bool,
    fmt: str,
    insecure: bool,
) -> int:
    """Give a registry image its conventional tags: semantic version, environment, timestamp.

    Tags are applied by manifest PUT in IMAGE's repository: no blob is sent again, and an
    index (multi-platform image) keeps its digest. The moving tags of --semver (1.4 and 1 for
    1.4.2) only move forward: a tag that already names a newer release is left where it is, and
    a pre-release (1.5.0-rc.1) moves nothing but itself. Each tag's old and new digest is shown.

      imagewise tag localhost:5000/app:build-42 --semver 1.4.2 --env staging --git-sha
      imagewise tag docker://localhost:5000/app@sha256:... --env prod --dry-run
    """
    from imagewise.release.apply import tag_image

    run = tag_image(
        image,
        semver=semver,
        env=env,
        timestamp=timestamp,
        git_sha=git_sha,
        git_dir=git_dir,
        extra=extra,
        dry_run=dry_run,
        insecure=insecure,
    )
    echo(TAG.encode(fmt, run), nl=False)
    return 0
