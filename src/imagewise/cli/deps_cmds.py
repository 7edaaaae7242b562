"""``imagewise deps check`` (flags -> ``imagewise.deps.deps_check``)."""

from __future__ import annotations

from imagewise.cli.args import argument, echo, group, option
from imagewise.cli.common import format_option, insecure_option, parse_build_args
from imagewise.encoders import DEPS


@group("deps")
def deps_group() -> None:
    """Whether what a Dockerfile installs still exists, before a build finds out."""


@deps_group.command("check")
@argument("dockerfile", metavar="DOCKERFILE")
@option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="NAME=VALUE",
    help="A build arg for the FROM lines (repeatable).",
)
@option("--pypi-url", default="https://pypi.org", metavar="URL", help="PyPI or a mirror.")
@option("--npm-url", default="https://registry.npmjs.org", metavar="URL", help="npm registry.")
@option(
    "--debian-url", default="https://deb.debian.org/debian", metavar="URL", help="Debian archive."
)
@option(
    "--debian-security-url",
    default="https://deb.debian.org/debian-security",
    metavar="URL",
    help="Debian security archive.",
)
@option(
    "--ubuntu-url",
    default="http://archive.ubuntu.com/ubuntu",
    metavar="URL",
    help="Ubuntu archive.",
)
@option(
    "--alpine-url",
    default="https://dl-cdn.alpinelinux.org/alpine",
    metavar="URL",
    help="Alpine mirror.",
)
@option("--arch", default="amd64", metavar="ARCH", help="Architecture of the package indexes.")
@format_option(DEPS)
@insecure_option
def deps_check_cmd(
    dockerfile: str,
    build_args: tuple[str, ...],
    pypi_url: str,
    npm_url: str,
    debian_url: str,
    debian_security_url: str,
    ubuntu_url: str,
    alpine_url: str,
    arch: str,
    fmt: str,
    insecure: bool,
) -> int:
    """Look up every package (apt, apk, pip, npm) and base image of DOCKERFILE where the build
    would get it: ok, gone (that version no longer exists; the newest is shown), missing (no
    such name), unpinned, or unknown (the index was unreachable). Exit 1 when any is missing
    or gone.

    imagewise deps check Dockerfile
    imagewise deps check Dockerfile --pypi-url https://pypi.mirror.internal --format json
    """
    from imagewise.deps import DepsIndexes, deps_check

    args = parse_build_args(build_args)
    indexes = DepsIndexes(
        debian=debian_url,
        debian_security=debian_security_url,
        ubuntu=ubuntu_url,
        alpine=alpine_url,
        pypi=pypi_url,
        npm=npm_url,
        arch=arch,
    )
    result = deps_check(dockerfile, indexes=indexes, build_args=args, insecure=insecure)
    echo(DEPS.encode(fmt, result), nl=False)
    return 1 if result.failed else 0
