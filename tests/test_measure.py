"""``imagewise measure pull`` against the real registry."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from cli_runner import CliRunner
from conftest import corpus
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli


def test_measure_pull(registry: RegistryServer) -> None:
    repo = unique_repo("pull")
    img = push_image(registry, repo, "1.0", build_image((50_000, 20_000), seed=9801))
    result = CliRunner().invoke(
        cli, ["measure", "pull", f"{registry.host}/{repo}:1.0", "--runs", "2", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "imagewise/pull/v1" and len(doc["runs"]) == 2
    assert [x["digest"] for x in doc["layers"]] == [str(d.digest) for d in img.layers]
    assert doc["bytes"] == img.config.size + sum(d.size for d in img.layers)
    assert all(x["uncompressed_bytes"] > x["compressed_bytes"] * 0.9 for x in doc["layers"])
    bad = CliRunner().invoke(cli, ["measure", "pull", "oci:/x:1"])
    assert bad.exit_code == 2 and "needs a registry image" in bad.output


BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")


def _startup(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        ["imagewise", "measure", "startup", *args], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr


def _no_leftovers(marker: str) -> None:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert marker not in ps, "a started container process outlived the measurement"


@pytest.fixture()
def busybox() -> str:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail("start-up is measured with buildah as root (scripts/install-deps installs it)")
    return f"oci-archive:{corpus(*BUSYBOX)}"


def test_startup_until_a_log_line(busybox: str) -> None:
    code, out = _startup(
        busybox,
        "--log",
        "^ready$",
        "--runs",
        "3",
        "--format",
        "json",
        "--command",
        "sh -c 'sleep 0.4; echo ready; sleep 31'",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/startup/v1" and doc["ready_by"] == "log /^ready$/"
    assert len(doc["runs"]) == 3 and all(0.4 <= r < 10 for r in doc["runs"])
    assert doc["seconds"] == sorted(doc["runs"])[1]  # the median
    _no_leftovers("sleep 31")


def test_startup_until_a_port_and_until_the_healthcheck(busybox: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = _startup(
        busybox,
        "--port",
        str(port),
        "--runs",
        "1",
        "--command",
        f"sh -c 'sleep 0.3; exec httpd -f -p 127.0.0.1:{port}'",
    )
    assert code == 0 and f"ready (port {port}) in" in out, out
    # an image with a HEALTHCHECK (docker format keeps it): ready when the check passes
    bah = ["buildah", "--storage-driver", "vfs"]
    ctr = subprocess.run(
        [*bah, "from", "-q", busybox], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        subprocess.run(
            [
                *bah,
                "config",
                "--healthcheck",
                "CMD-SHELL test -f /tmp/up",
                "--cmd",
                '["sh", "-c", "sleep 0.5; touch /tmp/up; sleep 32"]',
                ctr,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "BUILDAH_FORMAT": "docker"},  # OCI configs have no HEALTHCHECK
        )
        archive = tmp_path / "health.tar"
        subprocess.run(
            [*bah, "commit", "-q", "--format", "docker", ctr, f"docker-archive:{archive}:health:1"],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run([*bah, "rm", ctr], capture_output=True)
    code, out = _startup(f"docker-archive:{archive}", "--runs", "1")
    assert code == 0 and "ready (HEALTHCHECK) in" in out, out
    seconds = float(out.split(" in ")[1].split("s")[0])
    assert seconds >= 0.5
    _no_leftovers("sleep 32")


def test_startup_failures_are_one_line(busybox: str) -> None:
    for args, text in (
        ([busybox], "has no HEALTHCHECK: say when it is ready with --log or --port"),
        (
            [busybox, "--log", "x", "--command", "sh -c 'echo nope; exit 4'"],
            "exited with 4 before it was ready (log /x/): nope",
        ),
        (
            [busybox, "--port", "1", "--command", "sleep 33", "--timeout", "1"],
            "not ready (port 1) within 1s",
        ),
        ([busybox, "--log", "x", "--command", "sh -c 'unterminated"], "--command"),
    ):
        code, err = _startup(*args)
        assert code == 2 and err.count("\n") == 1 and text in err, (args, err)
    _no_leftovers("sleep 33")
