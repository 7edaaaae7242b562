"""CI pipelines that build, gate and ship one image with imagewise: ``imagewise ci init``.

The guide's CI example (checkout, buildx, build-push with a registry cache) improved:

* every third-party action pinned by commit SHA, the release it is in a comment (``ACTIONS``);
  Renovate and Dependabot keep such pins current;
* a lint gate before the build (``imagewise lint``, SARIF or GitLab code quality), a check gate
  after it (``imagewise check`` on the built image, SARIF uploaded to code scanning even when the
  gate fails), an SBOM (CycloneDX) kept with the run;
* the build uses the registry cache (buildx ``cache-from``/``cache-to`` on GitHub, buildah
  ``--layers --cache-from/--cache-to`` on GitLab) and writes the image as an OCI archive, which
  imagewise reads without a daemon;
* the image is pushed only from the main branch, tagged by the tag convention (``imagewise
  tag --git-sha --timestamp``).

The text is made here, the CLI only writes it (``write_pipeline``: whole or not at all, never over
a file unless asked).
"""

from __future__ import annotations

from pathlib import Path

from imagewise.errors import UsageError
from imagewise.record import Record

#: action -> (release, commit SHA of that release)
ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("v7.0.1", "3d3c42e5aac5ba805825da76410c181273ba90b1"),
    "actions/setup-python": ("v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97"),
    "actions/upload-artifact": ("v7.0.0", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"),
    "docker/setup-buildx-action": ("v4.3.0", "37fe631027851001ddb9b187196cc803df7f5f0e"),
    "docker/login-action": ("v4.1.0", "4907a6ddec9925e35a0a9e82d7399ccc52663121"),
    "docker/build-push-action": ("v7.3.0", "53b7df96c91f9c12dcc8a07bcb9ccacbed38856a"),
    "github/codeql-action/upload-sarif": ("v4.36.2", "8aad20d150bbac5944a9f9d289da16a4b0d87c1e"),
}

#: where ``imagewise ci init KIND`` writes by default
DEFAULT_PATHS = {"github": ".github/workflows/imagewise.yml", "gitlab": ".gitlab-ci.yml"}


class CiOptions(Record):
    """What a pipeline builds and where it pushes. ``image``: the repository to push to (empty:
    the CI system's own registry for this project); ``install``: the pip requirement that
    installs imagewise on the runner."""

    __slots__ = ("image", "dockerfile", "context", "branch", "policy", "install")  # noqa: RUF023

    def __init__(
        self,
        image: str = "",
        dockerfile: str = "Dockerfile",
        context: str = ".",
        branch: str = "main",
        policy: str = "",
        install: str = "imagewise",
    ) -> None:
        for name, value in (("dockerfile", dockerfile), ("context", context), ("branch", branch)):
            if not value or any(c in value for c in "\n\"'$`"):
                raise UsageError(f"--{name} {value!r}: give a plain path or name")
        if any(c in image + policy + install for c in "\n\"'`"):
            raise UsageError("--image, --policy and --install take plain values (no quotes)")
        self.image = image
        self.dockerfile = dockerfile
        self.context = context
        self.branch = branch
        self.policy = policy
        self.install = install


def _uses(action: str) -> str:
    release, sha = ACTIONS[action]
    return f"{action}@{sha} # {release}"


def github_workflow(opts: CiOptions) -> str:
    """A GitHub Actions workflow (``.github/workflows/imagewise.yml``)."""
    image = opts.image or "ghcr.io/${{ github.repository }}"
    if opts.image:  # another registry: its credentials are repository secrets
        registry = opts.image.split("/", 1)[0]
        username = "${{ secrets.REGISTRY_USERNAME }}"
        password = "${{ secrets.REGISTRY_PASSWORD }}"
    else:
        registry, username, password = (
            "ghcr.io",
            "${{ github.actor }}",
            "${{ secrets.GITHUB_TOKEN }}",
        )
    policy = f" --policy {opts.policy}" if opts.policy else ""
    on_main = f"github.event_name == 'push' && github.ref == 'refs/heads/{opts.branch}'"
    return f"""\
# Written by `imagewise ci init github`: lint, build with a registry cache, check, SBOM, and
# push from {opts.branch} only. Actions are pinned by commit SHA (the release in the comment).
name: image

on:
  push:
    branches: [{opts.branch}]
  pull_request:
    branches: [{opts.branch}]

permissions:
  contents: read

env:
  IMAGE: {image}

jobs:
  image:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      packages: write
      security-events: write
    steps:
      - uses: {_uses("actions/checkout")}

      - uses: {_uses("actions/setup-python")}
        with:
          python-version: "3.12"

      - name: Install imagewise
        run: python -m pip install "{opts.install}"

      - name: Lint gate (errors stop the build)
        run: imagewise lint {opts.dockerfile} --failure-threshold error

      - uses: {_uses("docker/setup-buildx-action")}

      - name: Log in to the registry
        if: ${{{{ github.event_name == 'push' }}}}
        uses: {_uses("docker/login-action")}
        with:
          registry: {registry}
          username: {username}
          password: {password}

      - name: Build (registry cache)
        uses: {_uses("docker/build-push-action")}
        with:
          context: {opts.context}
          file: {opts.dockerfile}
          push: false
          outputs: type=oci,dest=${{{{ runner.temp }}}}/image.oci.tar
          cache-from: type=registry,ref=${{{{ env.IMAGE }}}}:buildcache
          cache-to: ${{{{ {on_main} && format('type=registry,ref={{0}}:buildcache,mode=max', env.IMAGE) || '' }}}}

      - name: Check gate (policy verdict; findings go to code scanning)
        run: >-
          imagewise check oci-archive:${{{{ runner.temp }}}}/image.oci.tar{policy}
          --format sarif -o imagewise.sarif

      - name: Upload the findings to code scanning
        if: ${{{{ !cancelled() }}}}
        uses: {_uses("github/codeql-action/upload-sarif")}
        with:
          sarif_file: imagewise.sarif
          category: imagewise

      - name: SBOM
        run: >-
          imagewise sbom oci-archive:${{{{ runner.temp }}}}/image.oci.tar
          --format cyclonedx-json -o sbom.cdx.json

      - uses: {_uses("actions/upload-artifact")}
        with:
          name: sbom
          path: sbom.cdx.json

      - name: Push ({opts.branch} only), tagged by the convention
        if: ${{{{ {on_main} }}}}
        run: |
          imagewise copy "oci-archive:${{{{ runner.temp }}}}/image.oci.tar" "docker://$IMAGE:sha-${{GITHUB_SHA::7}}"
          imagewise tag "docker://$IMAGE:sha-${{GITHUB_SHA::7}}" --git-sha --timestamp
"""


def gitlab_pipeline(opts: CiOptions) -> str:
    """A GitLab CI pipeline (``.gitlab-ci.yml``)."""
    image = opts.image or "$CI_REGISTRY_IMAGE"
    policy = f" --policy {opts.policy}" if opts.policy else ""
    return f"""\
# Written by `imagewise ci init gitlab`: lint, build with a registry cache (buildah, no
# daemon), check, SBOM, and push from {opts.branch} only.
stages: [lint, build, check, push]

variables:
  IMAGE: {image}
  PIP_INSTALL_IMAGEWISE: "{opts.install}"

.imagewise:
  image: python:3.12-slim
  before_script:
    - python -m pip install --quiet "$PIP_INSTALL_IMAGEWISE"

lint:
  stage: lint
  extends: .imagewise
  script:
    - imagewise lint {opts.dockerfile} --failure-threshold error --format gitlab > gl-code-quality.json
  artifacts:
    when: always
    reports:
      codequality: gl-code-quality.json

build:
  stage: build
  image: quay.io/buildah/stable
  variables:
    STORAGE_DRIVER: vfs
    BUILDAH_ISOLATION: chroot
  script:
    - buildah login -u "$CI_REGISTRY_USER" -p "$CI_REGISTRY_PASSWORD" "$CI_REGISTRY"
    - >-
      buildah build --layers --cache-from "$IMAGE/buildcache" --cache-to "$IMAGE/buildcache"
      -f {opts.dockerfile} -t image {opts.context}
    - buildah push image oci-archive:image.oci.tar
  artifacts:
    paths: [image.oci.tar]
    expire_in: 1 day

check:
  stage: check
  extends: .imagewise
  needs: [build]
  script:
    - imagewise check oci-archive:image.oci.tar{policy} --format html -o imagewise.html
    - imagewise sbom oci-archive:image.oci.tar --format cyclonedx-json -o sbom.cdx.json
  artifacts:
    when: always
    paths: [imagewise.html, sbom.cdx.json]
    reports:
      cyclonedx: sbom.cdx.json

push:
  stage: push
  extends: .imagewise
  needs: [build, check]
  rules:
    - if: $CI_COMMIT_BRANCH == "{opts.branch}" && $CI_PIPELINE_SOURCE == "push"
  variables:
    REGISTRY_AUTH_FILE: $CI_PROJECT_DIR/.registry-auth.json
  script:
    - |
      auth=$(printf '%s:%s' "$CI_REGISTRY_USER" "$CI_REGISTRY_PASSWORD" | base64 | tr -d '\\n')
      printf '{{"auths":{{"%s":{{"auth":"%s"}}}}}}' "$CI_REGISTRY" "$auth" > "$REGISTRY_AUTH_FILE"
    - imagewise copy oci-archive:image.oci.tar "docker://$IMAGE:sha-$CI_COMMIT_SHORT_SHA"
    - imagewise tag "docker://$IMAGE:sha-$CI_COMMIT_SHORT_SHA" --timestamp
"""


PIPELINES = {"github": github_workflow, "gitlab": gitlab_pipeline}


def pipeline(kind: str, opts: CiOptions) -> str:
    """The pipeline text for ``kind`` (github or gitlab)."""
    make = PIPELINES.get(kind)
    if make is None:
        raise UsageError(f"unknown CI system {kind!r} (known: {', '.join(PIPELINES)})")
    return make(opts)


def write_pipeline(kind: str, opts: CiOptions, dest: str | Path = "", force: bool = False) -> Path:
    """Write the pipeline for ``kind`` to ``dest`` (default: where that CI system looks for it),
    creating its directory; an existing file is kept unless ``force``. Returns the path."""
    from imagewise.fileio import write_file

    text = pipeline(kind, opts)  # an unknown kind is refused before anything is touched
    path = Path(dest or DEFAULT_PATHS[kind])
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(str(path), text.encode("utf-8"))
    return path
