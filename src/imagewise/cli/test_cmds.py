"""``imagewise test IMAGE --config tests.yaml`` (flags -> ``imagewise.structure.run_tests``)."""

from __future__ import annotations

from imagewise.cli.args import argument, command, echo, option
from imagewise.cli.common import format_option, insecure_option
from imagewise.encoders import STRUCTURE
from imagewise.errors import UsageError


@command("test")
@argument("image")
@option("--config", "config_file", metavar="FILE", help="container-structure-test YAML (required).")
@format_option(STRUCTURE)
@insecure_option
def test_cmd(image: str, config_file: str | None, fmt: str, insecure: bool) -> int:
    """Run container-structure-test's YAML tests on an image, without a container runtime.

    File existence (permissions, uid, gid, isExecutableBy), file content (expectedContents,
    excludedContents), metadata (env, labels, entrypoint, cmd, workdir, user, ports, volumes)
    and license tests are answered from the image's final filesystem and config. Command tests
    need a runtime and are reported as failing with that reason. Exit 1 when a test fails.

      imagewise test oci:build/app:1.0 --config structure-tests.yaml
      imagewise test localhost:5000/app:1.0 --config tests.yaml --format junit > junit.xml
    """
    from imagewise.structure import run_tests

    if config_file is None:
        raise UsageError("test needs --config FILE (container-structure-test YAML)")
    run = run_tests(image, config_file, insecure=insecure)
    echo(STRUCTURE.encode(fmt, run), nl=False)
    return 0 if run.passed else 1
