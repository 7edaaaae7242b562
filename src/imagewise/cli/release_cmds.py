"""The release commands: ``tag``, ``promote``, ``history``, ``rollback``, ``deprecate`` (flags -> one
library call in ``imagewise.release`` -> renderer -> exit code)."""

from __future__ import annotations

from pathlib import Path

from imagewise.cli.args import argument, command, echo, option, path_type
from imagewise.cli.common import format_option, insecure_option, parse_build_args
from imagewise.encoders import DEPRECATION, HISTORY, MOVE, OUTDATED, TAG
from imagewise.errors import UsageError


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
@option(
    "--policy",
    "policy_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Policy YAML: version_management.tagging (immutable tags, timestamp format).",
)
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
    policy_file: Path | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Give a registry image its conventional tags: semantic version, environment, timestamp.

    Tags are applied by manifest PUT in IMAGE's repository: no blob is sent again, and an
    index (multi-platform image) keeps its digest. The moving tags of --semver (1.4 and 1 for
    1.4.2) only move forward: a tag that already names a newer release is left where it is, and
    a pre-release (1.5.0-rc.1) moves nothing but itself. Each tag's old and new digest is shown.
    A tag the policy declares immutable (version_management.tagging.immutable; X.Y.Z by
    default) is never moved: the whole run is refused (exit 1) and nothing is written.

      imagewise tag localhost:5000/app:build-42 --semver 1.4.2 --env staging --git-sha
      imagewise tag docker://localhost:5000/app@sha256:... --env prod --dry-run
    """
    from imagewise.policy.model import load_policy
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
        policy=load_policy(policy_file),
    )
    echo(TAG.encode(fmt, run), nl=False)
    return 0


@command("promote")
@argument("image")
@option("--to", "env", metavar="ENV", help="The environment tag to move (required: prod...).")
@option("--by", metavar="NAME", help="Who promotes (default: the registry user, else local user).")
@option("--reason", default="", metavar="TEXT", help="Why: kept in the recorded history.")
@option(
    "--into",
    metavar="REGISTRY/REPO",
    help="Promote into another repository or registry: IMAGE is copied there first.",
)
@option(
    "--policy",
    "policy_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Policy YAML whose version_management.promotion gates the move.",
)
@format_option(MOVE)
@insecure_option
def promote_cmd(
    image: str,
    env: str | None,
    by: str | None,
    reason: str,
    into: str | None,
    policy_file: Path | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Move an environment tag to an image's digest, gated by policy, and record the move.

    The tag is moved by manifest PUT (no blob is sent again). The policy's
    version_management.promotion decides what may move: with `order: [dev, staging, prod]`
    prod takes only the digest now on staging; with `require_check: true` the image must pass
    `imagewise check` first. A refusal exits 1. Every move is recorded in the repository itself
    (tags imagewise-history.ENV.*), readable by `imagewise history` with pull rights.

      imagewise promote localhost:5000/app:1.4.2 --to staging --reason "release 1.4.2"
      imagewise promote localhost:5000/app@sha256:... --to prod --policy policy.yaml
    """
    from imagewise.policy.model import load_policy
    from imagewise.release.promote import promote

    if env is None:
        raise UsageError("promote needs --to ENV (the environment tag to move)")
    result = promote(
        image,
        env,
        policy=load_policy(policy_file),
        by=by,
        reason=reason,
        into=into,
        insecure=insecure,
    )
    echo(MOVE.encode(fmt, result), nl=False)
    return 0


@command("history")
@argument("repository")
@option("--env", metavar="ENV", help="Only this environment's moves.")
@format_option(HISTORY)
@insecure_option
def history_cmd(repository: str, env: str | None, fmt: str, insecure: bool) -> int:
    """Show the recorded moves of a repository's environment tags, oldest first.

    Each promote and rollback is kept in the registry (who, when, from which digest to which,
    why), so every engineer and CI job with pull rights sees the same history.

      imagewise history localhost:5000/app --env prod
    """
    from imagewise.release.promote import history

    echo(HISTORY.encode(fmt, history(repository, env, insecure=insecure)), nl=False)
    return 0


@command("rollback")
@argument("repository")
@option("--env", metavar="ENV", help="The environment tag to move back (required).")
@option("--to", "to", metavar="DIGEST", help="Move to this digest (must still exist).")
@option(
    "--steps",
    type=int,
    default=1,
    metavar="N",
    help="Move to where ENV was N recorded moves ago (default 1).",
)
@option("--by", metavar="NAME", help="Who rolls back (default: the registry user, else local).")
@option("--reason", default="", metavar="TEXT", help="Why: kept in the recorded history.")
@format_option(MOVE)
@insecure_option
def rollback_cmd(
    repository: str,
    env: str | None,
    to: str | None,
    steps: int,
    by: str | None,
    reason: str,
    fmt: str,
    insecure: bool,
) -> int:
    """Move an environment tag back to an earlier digest; the rollback is recorded too.

    Without --to, ENV goes back to where it was --steps recorded moves ago (so a second
    `rollback` undoes the first). A digest the registry no longer has is refused (exit 2).

      imagewise rollback localhost:5000/app --env prod
      imagewise rollback localhost:5000/app --env prod --to sha256:... --reason "bad 1.4.3"
    """
    from imagewise.release.promote import rollback

    if env is None:
        raise UsageError("rollback needs --env ENV (the environment tag to move back)")
    result = rollback(repository, env, to=to, steps=steps, by=by, reason=reason, insecure=insecure)
    echo(MOVE.encode(fmt, result), nl=False)
    return 0


@command("deprecate")
@argument("image")
@option("--reason", default="", metavar="TEXT", help="Why (required): shown wherever it is used.")
@option("--sunset", metavar="DATE", help="From this date (YYYY-MM-DD) `check` fails on it.")
@option("--replacement", metavar="REF", help="What to use instead.")
@format_option(DEPRECATION)
@insecure_option
def deprecate_cmd(
    image: str,
    reason: str,
    sunset: str | None,
    replacement: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Mark an image's digest deprecated, with a reason, a sunset date and a replacement.

    The record is an OCI artifact whose subject is the digest: listed by the registry's
    referrers API where it has one, and in the spec's fallback tag sha256-<hex> otherwise.
    `imagewise check` reports a deprecated image, or one built on a deprecated base from the
    same registry (IW-IMG-005): a warning until the sunset, an error from then on.

      imagewise deprecate localhost:5000/base:3.18 --reason "EOL: no more fixes" \\
          --sunset 2027-06-30 --replacement localhost:5000/base:3.20
    """
    from imagewise.release.deprecation import deprecate

    result = deprecate(
        image, reason=reason, sunset=sunset, replacement=replacement, insecure=insecure
    )
    echo(DEPRECATION.encode(fmt, result), nl=False)
    return 0


@command("outdated")
@argument("target", metavar="DOCKERFILE|IMAGE")
@option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="NAME=VALUE",
    help="A build arg for the FROM lines (repeatable), as `docker build` takes it.",
)
@option("--fix", flag=True, help="Rewrite the FROM lines (tag and digest pin) in place.")
@option(
    "--policy",
    "policy_file",
    type=path_type(dir_okay=False, as_path=True),
    help="Policy YAML: version_management.updates (max level, per-repository constraints).",
)
@format_option(OUTDATED)
@insecure_option
def outdated_cmd(
    target: str,
    build_args: tuple[str, ...],
    fix: bool,
    policy_file: Path | None,
    fmt: str,
    insecure: bool,
) -> int:
    """List newer tags of the same flavour for each base image, moved digest pins, deprecations.

    For a Dockerfile, every FROM (build args resolved; stage names and scratch skipped); for a
    registry image, its own tag. Newer tags keep the flavour (3.11-slim-bookworm ->
    3.12-slim-bookworm, never 3.12-alpine) and precision, skip pre-releases, and are grouped as
    patch, minor and major. --fix moves each FROM to the newest tag the policy allows
    (version_management.updates: `max: minor` by default, or a constraint per repository such
    as `allow: {python: "~3.11"}`) and refreshes `@sha256:` pins; running it again changes
    nothing.

      imagewise outdated Dockerfile
      imagewise outdated Dockerfile --build-arg PY=3.11 --fix
      imagewise outdated localhost:5000/app:1.4.2 --format json
    """
    from imagewise.policy.model import load_policy
    from imagewise.release.outdated import outdated

    args = parse_build_args(build_args)
    result = outdated(
        target, policy=load_policy(policy_file), build_args=args, fix=fix, insecure=insecure
    )
    echo(OUTDATED.encode(fmt, result), nl=False)
    return 0
