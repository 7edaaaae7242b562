"""The fleet's layer results live in the service database: a base layer analysed by one worker
is a hit for every other (another process, another machine), so a layer shared by many images is
read once for the whole fleet; nothing goes to a worker's own cache directory."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_images import alpine_image, tar_bytes, write_oci_layout
from fixtures_registry import RegistryServer
from sqlalchemy import func, select

from imagewise.cli.main import cli
from imagewise.service.db import connect, jobs, layer_cache, results
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


def _layers(registry: RegistryServer, name: str) -> list[str]:
    from imagewise.sources import open_source

    with open_source(f"docker://{registry.host}/fleet/{name}:1", insecure=True) as src:
        return [str(layer.digest) for layer in src.image().layers]


def test_a_split_check_joins_layer_jobs_each_run_once_for_the_fleet(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``split_layers``: each image's check needs one ``layer`` job per layer not yet in the
    fleet's results (keyed by blob digest, so the shared base is one job for both images),
    waits for them without counting a failed attempt, then joins them reading no layer."""
    from imagewise.service.queue import SqlJobQueue
    from imagewise.service.run import worker_pool

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))
    monkeypatch.setenv("IMAGEWISE_DB", str(tmp_path / "no-osv.sqlite"))
    engine = connect(f"sqlite:///{tmp_path / 'split.sqlite'}")
    digests = {n: _push(registry, tmp_path, n, {f"app/{n}.txt": n.encode()}) for n in "abc"}
    unique = {d for n in "abc" for d in _layers(registry, n)}
    assert len(unique) == 4  # Alpine's layer under all three, one app layer each
    queue = SqlJobQueue(engine)
    for n, digest in digests.items():
        queue.submit(
            "check",
            f"check:{digest}",
            {
                "registry": registry.host,
                "repository": f"fleet/{n}",
                "tag": "1",
                "digest": digest,
                "insecure": True,
            },
            10,
        )
    workers = worker_pool(
        engine, queue, count=2, policy_file=None, config={"split_layers": True}, stale=60
    )
    workers.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.begin() as conn:
                rows = conn.execute(
                    select(jobs.c.kind, jobs.c.key, jobs.c.state, jobs.c.attempts, jobs.c.outcome)
                ).all()
            checks = [r for r in rows if r.kind == "check"]
            if len(checks) == 3 and all(r.state in ("done", "failed") for r in rows):
                break
            time.sleep(0.1)
    finally:
        workers.close()
    layer_jobs = [r for r in rows if r.kind == "layer"]
    assert {r.key for r in layer_jobs} == {f"layer:{d}" for d in unique}
    assert {r.state for r in layer_jobs} == {"done"}
    checks = [r for r in rows if r.kind == "check"]
    assert [r.state for r in checks] == ["done"] * 3
    assert {r.attempts for r in checks} == {1}  # waiting for a layer is not a failed attempt
    # each layer read once for the fleet: by its job, or by the check that held its job
    # (a check that looked before a layer job ended may queue another, which reads nothing)
    read_by_job = [r.key for r in layer_jobs if r.outcome == "analysed"]
    held = [r.key for r in layer_jobs if r.outcome.startswith("analysed by the check of")]
    assert sorted(read_by_job + held) == sorted(f"layer:{d}" for d in unique)
    assert all(
        r.outcome in ("analysed", "already analysed")
        or r.outcome.startswith("analysed by the check of")
        for r in layer_jobs
    )
    read_by_checks = sum(int(re.search(r"(\d+) analysed$", r.outcome).group(1)) for r in checks)
    assert read_by_checks == len(held)
    with engine.begin() as conn:
        checked = {row[0] for row in conn.execute(select(results.c.digest))}
    assert checked == set(digests.values())


def test_a_split_check_runs_untaken_layer_jobs_waits_for_running_ones_skips_failed_ones(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The joining worker runs itself the layer jobs nobody has taken; it waits (Deferred,
    nothing to add) while another worker is on one; a layer whose job failed for good is not
    waited for: the check reads it itself, so a split check never waits for ever."""
    from imagewise.service.queue import Deferred, SqlJobQueue

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))
    monkeypatch.setenv("IMAGEWISE_DB", str(tmp_path / "no-osv.sqlite"))
    engine = connect(f"sqlite:///{tmp_path / 'split.sqlite'}")
    digest = _push(registry, tmp_path, "solo", {"app/solo.txt": b"solo\n"})
    base, app = _layers(registry, "solo")
    payload = {
        "registry": registry.host,
        "repository": "fleet/solo",
        "tag": "1",
        "digest": digest,
        "insecure": True,
    }
    queue = SqlJobQueue(engine)
    handlers, _ = job_handlers(engine, policy_file=None, config={"split_layers": True})
    other = queue.submit("layer", f"layer:{app}", {**payload, "layer": app})
    assert queue.claim_id(other, "another-worker") is not None  # busy with the app layer
    with engine.begin() as conn:  # and the base layer's job ran out of attempts
        conn.execute(
            jobs.insert().values(
                kind="layer", key=f"layer:{base}", payload={}, state="failed", created=0.0
            )
        )
    with pytest.raises(Deferred) as waiting:
        handlers["check"](payload)
    assert waiting.value.needs == [] and waiting.value.payload["waited"] == 1
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == 0
    queue.fail(other, "the other worker gave up")  # queued again: nobody has it now
    outcome = handlers["check"](waiting.value.payload)  # holds it, reads both layers itself
    assert outcome.endswith("0 layer(s) from the fleet's layer results, 2 analysed"), outcome
    with engine.begin() as conn:
        row = conn.execute(
            select(jobs.c.state, jobs.c.outcome, jobs.c.claimed_by).where(jobs.c.id == other)
        ).one()
    assert row.state == "done" and row.claimed_by.endswith("/joining")
    assert row.outcome == f"analysed by the check of {digest[:19]}"
    # the same image checked again (forced) reads nothing: both layers are in the results
    again = handlers["check"]({**payload, "tag": "2", "force": True})
    assert again.endswith("2 layer(s) from the fleet's layer results, 0 analysed"), again


def test_split_layers_must_be_true_or_false() -> None:
    from imagewise.errors import ConfigError
    from imagewise.service.run import split_layers

    assert split_layers(None) is False
    assert split_layers({"broker": "redis://x"}) is True
    assert split_layers({"broker": "redis://x", "split_layers": False}) is False
    with pytest.raises(ConfigError, match="split_layers: expected true or false"):
        split_layers({"split_layers": "yes"})


def test_layer_jobs_of_a_worker_that_died_mid_layer_run_again_and_the_check_completes(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while it held an image's layer jobs (running, heartbeats stopped): only
    those layers' work is lost. The jobs are taken back once stale, run on a live worker, and
    the check, waiting for them, joins them: one result, each layer read once after all."""
    from imagewise.service.queue import SqlJobQueue
    from imagewise.service.run import worker_pool

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))
    monkeypatch.setenv("IMAGEWISE_DB", str(tmp_path / "no-osv.sqlite"))
    engine = connect(f"sqlite:///{tmp_path / 'dead.sqlite'}")
    digest = _push(registry, tmp_path, "dead", {"app/dead.txt": b"dead\n"})
    layers = _layers(registry, "dead")
    payload = {"registry": registry.host, "repository": "fleet/dead", "digest": digest}
    queue = SqlJobQueue(engine)
    held = [
        queue.submit("layer", f"layer:{d}", {**payload, "layer": d, "insecure": True}, 11)
        for d in layers
    ]
    for job_id in held:  # the dead worker's claims; its heartbeats stopped at the claim
        assert queue.claim_id(job_id, "dead-worker/joining") is not None
    check = queue.submit("check", f"check:{digest}", {**payload, "tag": "1", "insecure": True})
    workers = worker_pool(
        engine, queue, count=2, policy_file=None, config={"split_layers": True}, stale=1.0
    )
    workers.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and queue.state(check)[0] != "done":  # type: ignore[index]
            time.sleep(0.1)
    finally:
        workers.close()
    with engine.begin() as conn:
        rows = conn.execute(select(jobs.c.id, jobs.c.state, jobs.c.attempts, jobs.c.outcome)).all()
        stored = conn.execute(select(func.count()).select_from(results)).scalar_one()
    by_id = {r.id: r for r in rows}
    assert by_id[check].state == "done" and stored == 1
    for job_id in held:  # taken back and run again: the second attempt read the layer
        assert (by_id[job_id].state, by_id[job_id].attempts) == ("done", 2)
        assert by_id[job_id].outcome == "analysed"
    assert by_id[check].outcome.endswith(
        f"{len(layers)} layer(s) from the fleet's layer results, 0 analysed"
    )


def test_the_database_store_answers_existence_without_the_record(tmp_path: Path) -> None:
    from imagewise.cache import LayerCache
    from imagewise.service.layer_store import SqlLayerStore

    engine = connect(f"sqlite:///{tmp_path / 'layers.sqlite'}")
    store = SqlLayerStore(engine)
    key = "sha256:" + "e" * 64
    cache = LayerCache(tmp_path, store=store)
    assert not store.exists(("results", "sbom-1", key)) and not cache.has_result("sbom", "1", key)
    cache.store_result("sbom", "1", key, {"packages": ["p"]})
    assert cache.has_result("sbom", "1", key) and not cache.has_result("sbom", "9", key)
    assert cache.load_result("sbom", "1", key) == (True, {"packages": ["p"]})
