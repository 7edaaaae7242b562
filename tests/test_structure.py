"""``imagewise test``: container-structure-test's schema (our own test files, written after its
documentation's examples) on an image built here, with passing and failing expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner
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
        "needs a container runtime",
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
