"""The fleet's layer results live in the service database: a base layer analysed by one worker
is a hit for every other (another process, another machine), so a layer shared by many images is
read once for the whole fleet; nothing goes to a worker's own cache directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_images import alpine_image, tar_bytes, write_oci_layout
from fixtures_registry import RegistryServer
from sqlalchemy import func, select

from imagewise.cli.main import cli
from imagewise.service.db import connect, layer_cache
from imagewise.service.run import job_handlers

CHECK_IN_ANOTHER_PROCESS = """
import sys
from imagewise.service.db import connect
from imagewise.service.run import job_handlers
handlers, _ = job_handlers(connect(sys.argv[1]), policy_file=None, config=None)
print(handlers["check"]({"registry": sys.argv[2], "repository": sys.argv[3], "tag": "1",
                         "digest": sys.argv[4], "insecure": True}))
"""


def _push(registry: RegistryServer, tmp_path: Path, name: str, files: dict[str, bytes]) -> str:
    layout = write_oci_layout(
        alpine_image("3.20.3", extra_layers=[tar_bytes(files)]), tmp_path / name, "1"
    )
    done = CliRunner().invoke(cli, ["copy", layout, f"docker://{registry.host}/fleet/{name}:1"])
    assert done.exit_code == 0, done.output
    from imagewise.sources import open_source

    with open_source(f"docker://{registry.host}/fleet/{name}:1") as src:
        return str(src.image().manifest.digest)


def test_a_shared_base_layer_is_analysed_once_for_the_fleet(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))
    monkeypatch.setenv("IMAGEWISE_DB", str(tmp_path / "no-osv.sqlite"))
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = connect(db)
    a = _push(registry, tmp_path, "a", {"app/a.txt": b"a\n"})
    b = _push(registry, tmp_path, "b", {"app/b.txt": b"b\n"})
    handlers, _ = job_handlers(engine, policy_file=None, config=None)
    first = handlers["check"](
        {
            "registry": registry.host,
            "repository": "fleet/a",
            "tag": "1",
            "digest": a,
            "insecure": True,
        }
    )
    assert first.endswith("0 layer(s) from the fleet's layer results, 2 analysed"), first
    with engine.begin() as conn:
        stored = conn.execute(select(func.count()).select_from(layer_cache)).scalar_one()
    assert stored > 0
    # another worker process, with its own (empty) cache directory: Alpine's layer is a hit
    other = subprocess.run(
        [sys.executable, "-c", CHECK_IN_ANOTHER_PROCESS, db, registry.host, "fleet/b", b],
        capture_output=True,
        text=True,
        env={
            "XDG_CACHE_HOME": str(tmp_path / "other-cache"),
            "IMAGEWISE_DB": str(tmp_path / "x"),
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.strip().endswith("1 layer(s) from the fleet's layer results, 1 analysed"), (
        other.stdout
    )
    for own in (tmp_path / "own-cache", tmp_path / "other-cache"):
        assert not [p for p in own.rglob("*") if p.is_file() and "layers" in p.parts]
