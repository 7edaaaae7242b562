"""``imagewise ci init`` (flags -> ``imagewise.ci.write_pipeline``)."""

from __future__ import annotations

from imagewise.cli.args import argument, echo, group, option


@group("ci")
def ci_group() -> None:
    """CI pipelines that lint, build, check and ship an image with imagewise."""


@ci_group.command("init")
@argument("system", metavar="github|gitlab")
@option(
    "-o",
    "--output",
    "dest",
    metavar="PATH",
    help="Where to write (default: .github/workflows/imagewise.yml or .gitlab-ci.yml; "
    "`-` for standard output).",
)
@option("--image", default="", metavar="REPO", help="Push here (default: the CI's own registry).")
@option("--dockerfile", default="Dockerfile", metavar="PATH", help="The Dockerfile to build.")
@option("--context", default=".", metavar="DIR", help="The build context.")
@option("--branch", default="main", metavar="NAME", help="Push from this branch only.")
@option("--policy", default="", metavar="FILE", help="Policy YAML for the check gate.")
@option(
    "--install",
    default="imagewise",
    metavar="REQUIREMENT",
    help="What pip installs on the runner (a version pin, a wheel URL, a git URL).",
)
@option("--force", flag=True, help="Overwrite an existing pipeline file.")
def ci_init_cmd(
    system: str,
    dest: str | None,
    image: str,
    dockerfile: str,
    context: str,
    branch: str,
    policy: str,
    install: str,
    force: bool,
) -> int:
    """Write a pipeline: lint gate, build with a registry cache, check gate with the findings
    published, SBOM, push from the main branch only; third-party actions pinned by commit SHA.

    imagewise ci init github --image ghcr.io/acme/app
    imagewise ci init gitlab -o - | less
    """
    from imagewise.ci import CiOptions, pipeline, write_pipeline

    opts = CiOptions(image, dockerfile, context, branch, policy, install)
    if dest == "-":
        echo(pipeline(system, opts), nl=False)
        return 0
    path = write_pipeline(system, opts, dest or "", force)
    echo(f"wrote {path}", err=True)
    return 0
