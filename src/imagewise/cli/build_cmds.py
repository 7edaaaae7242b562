"""``imagewise build`` (flags -> ``imagewise.build.build``)."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import format_option, insecure_option, parse_build_args
from imagewise.encoders import BUILD
from imagewise.errors import UsageError


@command("build")
@argument("context", nargs="?", metavar="CONTEXT")
@option(
    "--build-file",
    "build_file",
    metavar="BUILD_FILE",
    help="Build every image of an imagewise-build.yaml (in dependency order, --jobs at a time).",
)
@option("--jobs", type=int, default=2, metavar="N", help="With --build-file: images built at once.")
@option(
    "-f",
    "--file",
    "dockerfile",
    metavar="DOCKERFILE",
    help="The Dockerfile (default: CONTEXT/Dockerfile).",
)
@option("-t", "--tag", "tags", multiple=True, metavar="NAME", help="Name the image (repeatable).")
@option(
    "--push",
    multiple=True,
    metavar="DEST",
    help="Push the image here after the build (repeatable; any transport).",
)
@option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="NAME=VALUE",
    help="A build arg (repeatable).",
)
@option("--no-layers", flag=True, help="Do not use the engine's layer cache.")
@option(
    "--cache-from",
    metavar="REPO",
    help="Registry repository to take cached steps from (a fresh machine reuses them).",
)
@option("--cache-to", metavar="REPO", help="Registry repository to push each built step to.")
@option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH",
    help="Build for this platform (repeatable or comma-separated; more than one: a manifest list).",
)
@option(
    "--lint-fail-on",
    choices=("error", "warning", "info", "none"),
    default="error",
    help="Lint gate: stop before building at findings of this severity or above.",
)
@option(
    "--check",
    "check_gate",
    flag=True,
    help="Check gate: `imagewise check` the pushed image; a failure fails the build.",
)
@option("--policy", "policy_file", metavar="FILE", help="Policy for the check gate.")
@format_option(BUILD)
@insecure_option
def build_cmd(
    context: str | None,
    build_file: str | None,
    jobs: int,
    dockerfile: str | None,
    tags: tuple[str, ...],
    push: tuple[str, ...],
    build_args: tuple[str, ...],
    no_layers: bool,
    cache_from: str | None,
    cache_to: str | None,
    platforms: tuple[str, ...],
    lint_fail_on: str,
    check_gate: bool,
    policy_file: str | None,
    fmt: str,
    insecure: bool,
) -> int:
    """Build an image with buildah, with a lint gate before and a check gate after.

    Prints each step's time and cache use (from the engine's own output), the context size and
    what .dockerignore kept out. A failed build names the failed step, shows the log tail and
    classifies the cause (Dockerfile syntax, a missing COPY source, a package or version that
    does not exist, network, an untrusted TLS certificate, registry auth, disk full, a missing
    base image) with a fix.
    Exit 1 when the build or a gate failed.

      imagewise build . -t localhost:5000/app:dev --push localhost:5000/app:dev --check
      imagewise build ./svc -f svc/Dockerfile --build-arg PY=3.12 --format json
      imagewise build . -t app:ci --cache-from localhost:5000/app-cache --cache-to localhost:5000/app-cache
      imagewise build . -t localhost:5000/app:1 --platform linux/amd64,linux/arm64 --push localhost:5000/app:1
      imagewise build --build-file imagewise-build.yaml --jobs 3
    """
    from imagewise.build import build

    args = parse_build_args(build_args)
    policy = None
    if policy_file:
        from imagewise.policy.model import load_policy

        policy = load_policy(policy_file)
    if build_file is not None:
        if context is not None or dockerfile or tags or push or args or platforms:
            raise UsageError(
                "--build-file takes the images, contexts, tags, build args and platforms from "
                "the build file: give no CONTEXT, -f, -t, --push, --build-arg or --platform"
            )
        if cache_from or cache_to:
            raise UsageError(
                "--build-file: name each image's cache_from/cache_to repository in the build file"
            )
        if jobs < 1:
            raise UsageError(f"--jobs {jobs}: give 1 or more")
        from imagewise.buildset import build_set

        built = build_set(
            build_file,
            jobs=jobs,
            layers=not no_layers,
            lint_fail_on=None if lint_fail_on == "none" else lint_fail_on,
            check_gate=check_gate,
            policy=policy,
            insecure=insecure,
        )
        echo(BUILD.encode(fmt, built), nl=False)
        return 0 if built.ok else 1
    if context is None:
        raise UsageError("give a build CONTEXT directory, or --build-file BUILD_FILE")
    result = build(
        context,
        dockerfile=dockerfile,
        tags=tags,
        push=push,
        layers=not no_layers,
        build_args=args,
        lint_fail_on=None if lint_fail_on == "none" else lint_fail_on,
        check_gate=check_gate,
        policy=policy,
        insecure=insecure,
        cache_from=cache_from,
        cache_to=cache_to,
        platforms=tuple(p.strip() for item in platforms for p in item.split(",") if p.strip()),
    )
    echo(BUILD.encode(fmt, result), nl=False)
    return 0 if result.ok else 1
