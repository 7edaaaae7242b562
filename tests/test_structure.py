"""``imagewise test``: container-structure-test's schema (our own test files, written after its
documentation's examples) on an image built here, with passing and failing expectations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_images import TarFile, build_image, tar_bytes, write_oci_layout

from imagewise.cli.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code in (0, 1) else result.output


@pytest.fixture
def image_ref(tmp_path: Path) -> str:
    base = tar_bytes(
        {
            "usr/": TarFile(kind="dir"),
            "usr/bin/": TarFile(kind="dir"),
            "usr/bin/app": TarFile(b"#!/bin/sh\necho app\n", mode=0o755),
            "bin": TarFile(kind="symlink", linkname="usr/bin"),
            "etc/": TarFile(kind="dir"),
            "etc/app.conf": b"listen = 8080\nlog_level = info\n",
            "etc/secret.key": b"nope\n",
            "usr/share/doc/libfoo/copyright": b"MIT\n",
            "usr/share/doc/libbar/README": b"no copyright here\n",
        }
    )
    top = tar_bytes(
        {
            "etc/.wh.secret.key": b"",
            "srv/data/": TarFile(kind="dir", mode=0o750, uid=1000, gid=1000),
        }
    )
    img = build_image(
        [base, top],
        config={
            "Env": ["PATH=/usr/bin:/bin", "APP_MODE=production"],
            "Labels": {"org.opencontainers.image.version": "1.4.2"},
            "Entrypoint": ["/bin/app"],
            "Cmd": ["--serve"],
            "User": "1000",
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/srv/data": {}},
        },
    )
    return write_oci_layout(img, tmp_path / "layout", "1.0")


PASSING = """
schemaVersion: 2.0.0
fileExistenceTests:
  - name: app binary
    path: /bin/app            # through the bin -> usr/bin symlink
    shouldExist: true
    permissions: "-rwxr-xr-x"
    uid: 0
    isExecutableBy: other
  - name: deleted key
    path: /etc/secret.key     # removed by a whiteout in the second layer
    shouldExist: false
  - name: data dir
    path: /srv/data
    permissions: "drwxr-x---"
    uid: 1000
    gid: 1000
fileContentTests:
  - name: config
    path: /etc/app.conf
    expectedContents: ["^listen = 8080$"]
    excludedContents: ["debug"]
metadataTest:
  envVars:
    - {key: APP_MODE, value: production}
    - {key: PATH, value: "/usr/bin", isRegex: true}
  labels:
    - {key: org.opencontainers.image.version, value: "^1\\\\.4\\\\.", isRegex: true}
  entrypoint: ["/bin/app"]
  cmd: ["--serve"]
  workdir: /srv
  user: "1000"
  exposedPorts: ["8080"]
  unexposedPorts: ["22"]
  volumes: [/srv/data]
licenseTests:
  - debian: false
    files: [/usr/share/doc/libfoo/copyright]
"""


def test_passing_tests(image_ref: str, tmp_path: Path) -> None:
    cfg = tmp_path / "tests.yaml"
    cfg.write_text(PASSING)
    code, out = _run("test", image_ref, "--config", str(cfg), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/test/v1" and doc["fail"] == 0 and doc["pass"] == 6


def test_failing_expectations_are_named(image_ref: str, tmp_path: Path) -> None:
    cfg = tmp_path / "tests.yaml"
    cfg.write_text(
        """
schemaVersion: 2.0.0
fileExistenceTests:
  - {name: missing, path: /opt/nothing}
  - {name: wrong mode, path: /etc/app.conf, permissions: "-rwxrwxrwx", isExecutableBy: owner}
fileContentTests:
  - {name: content, path: /etc/app.conf, expectedContents: ["^debug"], excludedContents: ["info"]}
metadataTest:
  user: root
  exposedPorts: ["9090"]
licenseTests:
  - {debian: true}
commandTests:
  - {name: runs, command: /bin/app, expectedOutput: ["app"]}
"""
    )
    code, out = _run("test", image_ref, "--config", str(cfg))
    assert code == 1, out
    for text in (
        "/opt/nothing does not exist",
        "has permissions -rw-r--r--, expected -rwxrwxrwx",
        "is not executable by owner",
        "expected content /^debug/ not found",
        "excluded content /info/ found",
        "user is '1000', expected 'root'",
        "port 9090 is not exposed",
        "/usr/share/doc/libbar has no copyright file",
        "output lacks 'app'",  # run for real: the image has no /bin/app
    ):
        assert text in out, (text, out)
    code, xml = _run("test", image_ref, "--config", str(cfg), "--format", "junit")
    assert (
        code == 1 and xml.startswith('<?xml version="1.0"') and 'tests="6" failures="6"' in xml
    ), xml


def test_bad_configs(image_ref: str, tmp_path: Path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("schemaVersion: 1.0.0\n")
    result = CliRunner().invoke(cli, ["test", image_ref, "--config", str(cfg)])
    assert result.exit_code == 2 and "schemaVersion: 2.0.0" in result.output
    result = CliRunner().invoke(cli, ["test", image_ref])
    assert result.exit_code == 2 and "--config" in result.output


BUSYBOX = "rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar"


@pytest.fixture
def own_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """buildah as root, in a storage of this test's own (so what is left in it is this test's);
    returns the buildah command on that storage."""
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail("command tests run with buildah as root (scripts/install-deps installs it)")
    root = tmp_path / "buildah"
    monkeypatch.setenv("IMAGEWISE_BUILDAH_ROOT", str(root))
    return [
        "buildah",
        "--storage-driver",
        "vfs",
        "--root",
        str(root / "storage"),
        "--runroot",
        str(root / "run"),
    ]


def _containers(buildah: list[str]) -> list[str]:
    listed = subprocess.run(
        [*buildah, "containers", "--format", "{{.ContainerName}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def test_command_tests_run_the_image_with_buildah(tmp_path: Path, own_storage: list[str]) -> None:
    """Command tests (setup, teardown, env, stdout/stderr regexes, exit codes) run in a fresh
    buildah container of a real busybox image, one per test; passing and failing expectations."""
    ref = f"oci-archive:{corpus(*BUSYBOX)}"
    cfg = tmp_path / "commands.yaml"
    cfg.write_text(
        """
schemaVersion: 2.0.0
globalEnvVars:
  - {key: GREETING, value: hello}
commandTests:
  - name: echo with env
    command: sh
    args: ["-c", "echo $GREETING $WHO"]
    envVars: [{key: WHO, value: world}]
    expectedOutput: ["^hello world$"]
  - name: setup then read
    setup: [["sh", "-c", "echo prepared > /tmp/state"]]
    command: cat
    args: [/tmp/state]
    expectedOutput: ["prepared"]
    excludedOutput: ["error"]
    teardown: [["rm", "/tmp/state"]]
  - name: a fresh container each time
    command: ls
    args: [/tmp/state]
    exitCode: 1
    expectedError: ["No such file"]
  - name: wrong exit code
    command: sh
    args: ["-c", "echo oops >&2; exit 3"]
    excludedError: ["oops"]
  - name: wrong output
    command: echo
    args: [goodbye]
    expectedOutput: ["^hello"]
"""
    )
    code, out = _run("test", ref, "--config", str(cfg), "--format", "json")
    doc = json.loads(out)
    results = {r["name"]: r for r in doc["results"]}
    assert code == 1 and doc["pass"] == 3 and doc["fail"] == 2, out
    assert all(
        results[n]["pass"]
        for n in ("echo with env", "setup then read", "a fresh container each time")
    )
    assert results["wrong exit code"]["errors"] == [
        "exit code 3, expected 0",
        "error has 'oops': 'oops'",
    ]
    assert results["wrong output"]["errors"] == ["output lacks '^hello': 'goodbye'"]
    assert _containers(own_storage) == []  # every working container removed


def test_a_multi_platform_image_is_tested_per_platform(
    tmp_path: Path, own_storage: list[str]
) -> None:
    """File and metadata tests on every platform's image; command tests where this machine runs
    the platform (amd64 here: Alpine's real root filesystem), skipped for arm64 (no emulation)."""
    from fixtures_images import alpine_image, build_index

    amd64 = alpine_image()
    arm64 = build_image(
        [tar_bytes({"etc/": TarFile(kind="dir"), "etc/alpine-release": b"3.20.3\n"})],
        platform=("linux", "arm64", ""),
        config={"Cmd": ["/bin/sh"]},
    )
    ref = write_oci_layout(build_index([amd64, arm64]), tmp_path / "multi", "1", nested_index=True)
    cfg = tmp_path / "multi.yaml"
    cfg.write_text(
        """
schemaVersion: 2.0.0
fileExistenceTests:
  - {name: release file, path: /etc/alpine-release, shouldExist: true}
  - {name: a shell, path: /bin/sh, shouldExist: true}
metadataTest:
  cmd: ["/bin/sh"]
commandTests:
  - name: the shell runs
    command: sh
    args: ["-c", "cat /etc/alpine-release"]
    expectedOutput: ['^3\\.20\\.3$']
"""
    )
    code, out = _run("test", ref, "--config", str(cfg), "--format", "json")
    doc = json.loads(out)
    got = {(r["name"], r["platform"]): r for r in doc["results"]}
    assert code == 1 and (doc["pass"], doc["fail"], doc["skip"]) == (6, 1, 1), out
    assert [k for k, r in got.items() if not r["pass"]] == [("a shell", "linux/arm64")]
    assert (
        got["the shell runs", "linux/amd64"]["pass"]
        and not got["the shell runs", "linux/amd64"]["skipped"]
    )
    skipped = got["the shell runs", "linux/arm64"]
    assert (
        skipped["pass"]
        and "linux/arm64 does not run on this linux/amd64 machine" in skipped["skipped"]
    )
    code, xml = _run("test", ref, "--config", str(cfg), "--format", "junit")
    assert (
        'failures="1" skipped="1"' in xml and 'name="the shell runs [linux/arm64]"><skipped' in xml
    )
    assert _containers(own_storage) == []


def test_a_layout_whose_path_is_no_image_name_still_runs(
    tmp_path: Path, own_storage: list[str]
) -> None:
    """buildah names an ``oci:`` image it stores after the layout's path and refuses paths that
    are no valid image name; pytest's random temp names (``-_``) and a user's ``/home/Ann`` are
    such paths. The container is made anyway, and nothing is left behind."""
    import tempfile

    from imagewise.copy import copy
    from imagewise.runtime import BuildahRuntime

    layout = tmp_path / "Odd-_Dir" / "layout"
    copy(f"oci-archive:{corpus(*BUSYBOX)}", f"oci:{layout}:1.0")
    before = set(os.listdir(tempfile.gettempdir()))
    runtime = BuildahRuntime()
    with runtime.container(f"oci:{layout}:1.0") as name:
        done = runtime.run(name, ["sh", "-c", "echo up"])
        assert done.exit_code == 0 and done.stdout == "up\n", done.stderr
    assert _containers(own_storage) == []
    # the link's directory is gone too (only its names are looked at: tests running beside this
    # one, pip's among them, come and go in the same temporary directory)
    link_dirs = re.compile(r"imagewise-[0-9a-f]{16}")
    after = set(os.listdir(tempfile.gettempdir())) - before
    assert {n for n in after if link_dirs.fullmatch(n)} == set()
