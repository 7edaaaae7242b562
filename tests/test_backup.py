"""Backup and restore against the real distribution registry: round trip with the registry's
data deleted (skopeo inspect shows the same digests), incremental and differential kinds,
kill -9 at random points, a flipped byte found by verify, a held lock."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import RegistryServer, push_image, start_registry, stop_registry
from storage_support import image, index_bytes

from imagewise.backup.store import LocalStore
from imagewise.cli.main import cli
from imagewise.oci import media
from imagewise.registry.client import RegistryClient

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path / "reg")
    yield server
    stop_registry(server)


def _seed(reg: RegistryServer) -> dict[str, str]:
    client = RegistryClient(reg.host, reg.url, insecure=True)
    out = {}
    for repo, tag, seeds in (
        ("app", "1.0", [9000, 9001]),
        ("app", "1.1", [9000, 9002]),
        ("web", "2.0", [9000, 9003]),
    ):
        out[f"{repo}:{tag}"] = push_image(reg, repo, tag, image(seeds)).manifest_digest
    amd, arm = image([9010]), image([9011])
    push_image(reg, "multi", "amd", amd)
    push_image(reg, "multi", "arm", arm)
    index = index_bytes([amd, arm], ["amd64", "arm64"])
    out["multi:1.0"] = str(client.put_manifest("multi", "1.0", index, media.OCI_INDEX))
    return out


def _skopeo_digest(ref: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", ref], capture_output=True, check=True
    ).stdout
    import hashlib

    return "sha256:" + hashlib.sha256(out).hexdigest()


def test_round_trip_after_the_registry_data_is_gone(reg: RegistryServer, tmp_path: Path) -> None:
    digests = _seed(reg)
    store = tmp_path / "store"
    policy = tmp_path / "policy.yaml"
    policy.write_text("extends: default\n")
    code, out = _run(
        "backup", "run", reg.host, "--to", str(store), "--config", str(policy), "--format", "json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/backup/v1" and doc["kind"] == "full"
    assert doc["totals"]["images"] == len(digests) + 2  # + the platforms' own tags amd, arm
    assert doc["totals"]["config_files"] == 1
    # every blob once: the shared base layer is stored a single time
    stored = dict(LocalStore(store).blobs())
    assert len(stored) == len(set(stored))
    # the registry's data is gone; a new registry gets everything back
    stop_registry(reg)
    shutil.rmtree(reg.storage_dir)
    fresh = start_registry(tmp_path / "fresh")
    try:
        code, out = _run(
            "restore", "latest", "--store", str(store), "--to", fresh.host, "--format", "json"
        )
        assert code == 0, out
        restored = json.loads(out)
        assert restored["verified"] is True
        for name, digest in digests.items():
            repo, tag = name.split(":")
            assert _skopeo_digest(f"docker://{fresh.host}/{repo}:{tag}") == digest
    finally:
        stop_registry(fresh)
    # into an OCI layout too, one repository only
    code, out = _run(
        "restore",
        "latest",
        "--store",
        str(store),
        "--repo",
        "app",
        "--to",
        f"oci:{tmp_path / 'layout'}",
        "--format",
        "json",
    )
    assert code == 0, out
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    names = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
    }
    assert names == {"app:1.0": digests["app:1.0"], "app:1.1": digests["app:1.1"]}


def test_incremental_and_differential_kinds(reg: RegistryServer, tmp_path: Path) -> None:
    _seed(reg)
    store = str(tmp_path / "store")
    assert _run("backup", "run", reg.host, "--to", store, "--kind", "full")[0] == 0
    code, out = _run("backup", "run", reg.host, "--to", store, "--format", "json")
    assert code == 0, out
    inc = json.loads(out)
    assert inc["kind"] == "incremental" and inc["totals"]["added_bytes"] == 0
    assert inc["totals"]["reused_manifests"] == inc["totals"]["manifests"]
    push_image(reg, "app", "1.2", image([9000, 9004]))
    code, out = _run(
        "backup", "run", reg.host, "--to", store, "--kind", "differential", "--format", "json"
    )
    assert code == 0, out
    diff = json.loads(out)
    snaps = LocalStore(store).snapshots()
    assert diff["kind"] == "differential" and diff["parent"] == snaps[0]["id"]
    assert diff["totals"]["added_blobs"] == 3  # the new layer, config and manifest
    code, out = _run("backup", "list", store)
    assert code == 0 and out.count("\n") == 4 and "differential" in out, out


def test_verify_names_a_flipped_byte_and_the_snapshots_needing_it(
    reg: RegistryServer, tmp_path: Path
) -> None:
    _seed(reg)
    store = tmp_path / "store"
    assert _run("backup", "run", f"{reg.host}/app", "--to", str(store))[0] == 0
    code, out = _run("backup", "verify", str(store), "--read-data")
    assert code == 0 and out.rstrip().endswith("ok"), out
    s = LocalStore(store)
    victim = max(s.blobs(), key=lambda b: b[1])[0]
    path = s.blob_path(victim)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    snap = s.snapshots()[0]["id"]
    code, out = _run("backup", "verify", str(store))
    assert code == 0, out  # structure only: the blob is there, with its size
    code, out = _run("backup", "verify", str(store), "--read-data")
    assert code == 1 and f"{victim}: content does not match its digest; needed by {snap}" in out, (
        out
    )


def test_kill_9_at_random_points_then_rerun(reg: RegistryServer, tmp_path: Path) -> None:
    for i in range(6):
        push_image(reg, f"big{i}", "1.0", image([9100 + i, 9200 + i]))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    clean = tmp_path / "clean"
    assert _run("backup", "run", reg.host, "--to", str(clean))[0] == 0
    store = tmp_path / "store"
    rng = random.Random(4)
    for _ in range(20):  # kill -9 at 20 random points of a full backup
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagewise",
                "backup",
                "run",
                reg.host,
                "--to",
                str(store),
                "--kind",
                "full",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.02, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the lock of a killed writer is stale: the next run takes it over and completes
    code, out = _run("backup", "run", reg.host, "--to", str(store), "--format", "json")
    assert code == 0, out
    code, out = _run("backup", "verify", str(store), "--read-data")
    assert code == 0, out
    assert dict(LocalStore(store).blobs()) == dict(LocalStore(clean).blobs())
    assert not list(store.glob("blobs/sha256/*/.tmp-*"))


def test_one_writer_at_a_time_and_bad_input(reg: RegistryServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    push_image(reg, "one", "1.0", image([9300]))
    assert _run("backup", "run", reg.host, "--to", str(store))[0] == 0
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (store / "lock").write_text(
            json.dumps({"pid": holder.pid, "host": os.uname().nodename, "time": time.time()})
        )
        code, out = _run("backup", "run", reg.host, "--to", str(store))
        assert code == 2 and f"locked by pid {holder.pid}" in out, out
    finally:
        holder.kill()
        holder.wait()
    (store / "lock").unlink()
    for args, message in (
        (["backup", "run", reg.host], "needs --to STORE"),
        (["backup", "list", str(tmp_path)], "not an imagewise backup store"),
        (["restore", "nope", "--store", str(store), "--to", reg.host], "no such snapshot"),
        (["restore", "latest", "--store", str(store), "--to", "127.0.0.1:1"], "127.0.0.1:1"),
    ):
        code, out = _run(*args)
        assert code == 2 and message in out, (args, out)


def test_forget_prune_and_du(reg: RegistryServer, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from imagewise.backup.maintain import keep_set
    from imagewise.backup.run import backup_run

    store = tmp_path / "store"
    start = datetime(2026, 11, 1, 2, tzinfo=timezone.utc)
    for day in range(10):  # one image per day; each snapshot adds that day's image
        push_image(reg, "daily", f"d{day}", image([9400, 9500 + day]))
        backup_run([f"{reg.host}/daily"], store, now=start + timedelta(days=day))
    snaps = LocalStore(store).snapshots()
    kept = keep_set(snaps, last=2, weekly=2)
    # keep-last 2: Nov 10 and 9; keep-weekly 2: the newest of ISO weeks 46 (Nov 10) and 45 (Sun Nov 8)
    assert set(kept) == {snaps[-1]["id"], snaps[-2]["id"], snaps[-3]["id"]}
    code, out = _run("backup", "du", str(store), "--format", "json")
    assert code == 0, out
    before = json.loads(out)
    assert before["dedup_ratio"] > 3  # ten snapshots share the base and earlier images
    code, out = _run("backup", "forget", str(store), "--keep-last", "1", "--format", "json")
    assert code == 0 and len(json.loads(out)["forgotten"]) == 9, out
    code, out = _run("backup", "prune", str(store), "--grace", "0", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["removed_blobs"] == 0  # the last snapshot still holds every image
    # delete a tag from the registry: the next snapshot no longer has it; forget the older one
    RegistryClient(reg.host, reg.url, insecure=True).delete_manifest("daily", "d0")
    backup_run([f"{reg.host}/daily"], store, now=start + timedelta(days=11))
    assert _run("backup", "forget", str(store), "--keep-last", "1")[0] == 0
    code, out = _run("backup", "prune", str(store), "--grace", "0", "--format", "json")
    assert code == 0 and json.loads(out)["removed_blobs"] == 3, out  # d0's layer, config, manifest
    code, out = _run("backup", "verify", str(store), "--read-data")
    assert code == 0, out
    code, out = _run("backup", "forget", str(store))
    assert code == 2 and "needs a rule" in out, out


def test_drill_restores_checks_measures_and_cleans(reg: RegistryServer, tmp_path: Path) -> None:
    _seed(reg)
    store = tmp_path / "store"
    policy = tmp_path / "team-policy.yaml"
    policy.write_text("extends: none\n")  # no gates: every intact image passes
    assert (
        _run("backup", "run", f"{reg.host}/app", "--to", str(store), "--config", str(policy))[0]
        == 0
    )
    scratch = start_registry(tmp_path / "scratch")
    try:
        code, out = _run(
            "drill",
            "latest",
            "--store",
            str(store),
            "--scratch",
            scratch.host,
            "--require-pass",
            "--format",
            "json",
        )
        assert code == 0, out
        doc = json.loads(out)
        assert doc["ok"] and doc["images"] == 2 and doc["restore_bytes_per_second"] > 0
        assert doc["policy"] == "the snapshot's team-policy.yaml"
        assert [c["status"] for c in doc["checks"]] == ["PASS", "PASS"]
        assert doc["rto_seconds"] >= doc["restore_seconds"] > 0 and doc["rpo_seconds"] >= 0
        assert "2 scratch image(s) deleted" in doc["cleaned"]
        client = RegistryClient(scratch.host, scratch.url, insecure=True)
        for c in doc["checks"]:
            repo, tag = c["restored_as"].removeprefix(f"docker://{scratch.host}/").rsplit(":", 1)
            assert tag not in client.list_tags(repo)
    finally:
        stop_registry(scratch)
    code, out = _run(
        "drill",
        "latest",
        "--store",
        str(store),
        "--scratch",
        f"oci:{tmp_path / 'drills'}",
        "--format",
        "html",
        "-o",
        str(tmp_path / "drill.html"),
    )
    assert code == 0, out
    assert "Checks under the snapshot" in (tmp_path / "drill.html").read_text()
    assert list((tmp_path / "drills").iterdir()) == []  # the scratch layout is removed
    # a damaged store fails the drill
    s = LocalStore(store)
    victim = max(s.blobs(), key=lambda b: b[1])[0]
    s.blob_path(victim).write_bytes(b"rotten")
    code, out = _run(
        "drill", "latest", "--store", str(store), "--scratch", f"oci:{tmp_path / 'drills'}"
    )
    assert code == 1 and "FAILED" in out, out


def test_an_encrypted_compressed_store(reg: RegistryServer, tmp_path: Path) -> None:
    digests = _seed(reg)
    key = tmp_path / "backup.key"
    assert _run("backup", "keygen", str(key))[0] == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    code, out = _run("backup", "keygen", str(key))
    assert code == 2 and "never overwritten" in out, out
    store = tmp_path / "store"
    code, out = _run(
        "backup", "run", f"{reg.host}/app", "--to", str(store), "--key-file", str(key), "--compress"
    )
    assert code == 0, out
    # nothing readable without the key: not the records, not a manifest
    raw = b"".join(
        p.read_bytes() for p in store.rglob("*") if p.is_file() and p.name != "imagewise-store.json"
    )
    assert b"mediaType" not in raw and b"app" not in raw.replace(b"imagewise", b"")
    for args in (["backup", "list", str(store)], ["backup", "verify", str(store)]):
        code, out = _run(*args)
        assert code == 2 and "encrypted; give --key-file" in out, out
    other = tmp_path / "other.key"
    _run("backup", "keygen", str(other))
    code, out = _run("backup", "list", str(store), "--key-file", str(other))
    assert code == 2 and "wrong key" in out, out
    code, out = _run("backup", "verify", str(store), "--key-file", str(key), "--read-data")
    assert code == 0, out
    code, out = _run(
        "restore",
        "latest",
        "--store",
        str(store),
        "--key-file",
        str(key),
        "--to",
        f"oci:{tmp_path / 'out'}",
        "--format",
        "json",
    )
    assert code == 0, out
    assert {i["digest"] for i in json.loads(out)["images"]} == {
        digests["app:1.0"],
        digests["app:1.1"],
    }
    # a flipped byte in an encrypted blob: authentication fails, verify names it
    s = LocalStore(store, key=bytes.fromhex(key.read_text().strip()))
    victim = max(s.blobs(), key=lambda b: b[1])[0]
    path = s.blob_path(victim)
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    code, out = _run("backup", "verify", str(store), "--key-file", str(key), "--read-data")
    assert code == 1 and victim in out, out


def test_data_directories_in_content_defined_chunks(tmp_path: Path) -> None:
    from imagewise.backup.run import backup_run

    data = tmp_path / "volume"
    (data / "db").mkdir(parents=True)
    big = random.Random(5).randbytes(6 << 20)
    (data / "db" / "table.bin").write_bytes(big)
    (data / "notes.txt").write_text("hello\n")
    os.symlink("notes.txt", data / "link")
    store = tmp_path / "store"
    first = backup_run([], store, data_paths=(str(data),)).record
    chunks = first["data"][0]["files"]["db/table.bin"]["chunks"]
    assert len(chunks) >= 3  # ~1 MiB content-defined chunks
    # one byte changed in the middle: only the chunk around it is stored again
    changed = bytearray(big)
    changed[3 << 20] ^= 0xFF
    (data / "db" / "table.bin").write_bytes(bytes(changed))
    second = backup_run([], store, data_paths=(str(data),)).record
    assert (
        second["totals"]["data_files_read"] == 1 and second["totals"]["data_files_unchanged"] == 1
    )
    assert 0 < second["totals"]["added_bytes"] <= 2 * (4 << 20)
    new = second["data"][0]["files"]["db/table.bin"]["chunks"]
    assert len(set(new) - set(chunks)) <= 2
    # restore: the files come back whole, the link too
    out = tmp_path / "out"
    code, msg = _run("restore", "latest", "--store", str(store), "--files-to", str(out))
    assert code == 0, msg
    assert (out / "volume" / "db" / "table.bin").read_bytes() == bytes(changed)
    assert (out / "volume" / "notes.txt").read_text() == "hello\n"
    assert os.readlink(out / "volume" / "link") == "notes.txt"
    code, msg = _run("backup", "verify", str(store), "--read-data")
    assert code == 0, msg


def test_disk_full_is_one_error_and_a_rerun_completes(reg: RegistryServer, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs: run the suite as root (CI does)")
    for i in range(3):
        push_image(reg, f"full{i}", "1.0", image([9800 + i, 9900 + i]))
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20k", "tmpfs", str(mnt)], check=True)
    try:
        store = mnt / "store"
        code, out = _run("backup", "run", reg.host, "--to", str(store))
        assert code == 2 and "No space left on device" in out and out.count("\n") == 1, out
        assert not list(store.glob("blobs/**/.tmp-*")) and not list(store.glob("snapshots/*.json"))
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        code, out = _run("backup", "run", reg.host, "--to", str(store))
        assert code == 0, out
        code, out = _run("backup", "verify", str(store), "--read-data")
        assert code == 0, out
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_registry_gone_mid_restore_then_the_rerun_resumes(
    reg: RegistryServer, tmp_path: Path
) -> None:
    import threading

    for i in range(8):
        push_image(reg, f"r{i}", "1.0", image([9950, 9960 + i]))
    store = tmp_path / "store"
    assert _run("backup", "run", reg.host, "--to", str(store))[0] == 0
    target = start_registry(tmp_path / "target")
    stopper = threading.Timer(0.15, lambda: stop_registry(target))
    stopper.start()
    code, out = _run("restore", "latest", "--store", str(store), "--to", target.host, "--jobs", "1")
    stopper.join()
    assert code == 2 and target.host in out, out  # one clear error naming the registry
    # the registry comes back (same storage, a new port): the re-run completes and verifies
    again = start_registry(tmp_path / "target")
    try:
        code, out = _run(
            "restore", "latest", "--store", str(store), "--to", again.host, "--format", "json"
        )
        assert code == 0, out
        doc = json.loads(out)
        assert doc["verified"] and len(doc["images"]) == 8
    finally:
        stop_registry(again)


def test_schedule_due_runs_each_job_once_per_scheduled_time(
    reg: RegistryServer, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from imagewise.backup.schedule import run_due

    push_image(reg, "sched", "1.0", image([9990]))
    jobs = tmp_path / "backups.yaml"
    store = tmp_path / "store"
    jobs.write_text(
        "backups:\n"
        "  - name: nightly\n"
        f"    sources: ['{reg.host}/sched']\n"
        f"    to: {store}\n"
        "    schedule: '0 2 * * *'\n"
        "    full_schedule: '0 3 * * 0'\n"
    )
    at = lambda d, h, m=0: datetime(2026, 11, d, h, m, tzinfo=timezone.utc)  # noqa: E731
    first = run_due(str(jobs), now=at(4, 2, 5)).jobs[0]  # Wed 02:05, no store yet
    assert first["due"] and first["kind"] == "full"
    assert run_due(str(jobs), now=at(4, 2, 10)).jobs[0]["due"] is False  # fired again: nothing
    second = run_due(str(jobs), now=at(5, 2, 1)).jobs[0]  # Thursday 02:01
    assert second["kind"] == "incremental"
    sunday = run_due(str(jobs), now=at(8, 3, 0)).jobs[0]  # Sunday 03:00: the weekly full
    assert sunday["kind"] == "full"
    kinds = [s["kind"] for s in LocalStore(store).snapshots()]
    assert kinds == ["full", "incremental", "full"]
    code, out = _run(
        "backup", "run", "--schedule-due", "--jobs-file", str(jobs), "--format", "json"
    )
    assert code == 0 and json.loads(out)["schema"] == "imagewise/backup/v1", out
    jobs.write_text("backups:\n  - name: x\n    to: /tmp/x\n    schedule: 'every day'\n")
    code, out = _run("backup", "run", "--schedule-due", "--jobs-file", str(jobs))
    assert code == 2 and "bad cron expression" in out and out.count("\n") == 1, out
    code, out = _run("backup", "run", "--schedule-due")
    assert code == 2 and "--jobs-file" in out, out


def test_a_registry_as_the_backup_store(reg: RegistryServer, tmp_path: Path) -> None:
    from fixtures_registry import blob_bytes, garbage_collect

    digests = _seed(reg)
    target = start_registry(tmp_path / "vault")
    store = f"docker://{target.host}/backups/main"
    try:
        code, out = _run("backup", "run", f"{reg.host}/app", "--to", store, "--format", "json")
        assert code == 0, out
        code, out = _run("backup", "run", f"{reg.host}/web", "--to", store, "--kind", "full")
        assert code == 0, out
        code, out = _run("backup", "list", store)
        assert code == 0 and out.count("\n") == 3, out
        code, out = _run("backup", "verify", store, "--read-data", "--format", "json")
        assert code == 0 and json.loads(out)["ok"], out
        code, out = _run(
            "restore",
            "latest",
            "--store",
            store,
            "--to",
            f"oci:{tmp_path / 'r'}",
            "--format",
            "json",
        )
        assert code == 0, out
        assert [i["digest"] for i in json.loads(out)["images"]] == [digests["web:2.0"]]
        client = RegistryClient(target.host, target.url, insecure=True)
        tags = client.list_tags("backups/main")
        assert "imagewise-store" in tags and sum(t.startswith("snapshot-") for t in tags) == 2
        assert "imagewise-lock" not in tags
        # forget the app snapshot; the registry's own GC is the prune
        code, out = _run("backup", "forget", store, "--keep-last", "1")
        assert code == 0, out
        stop_registry(target)
        before = blob_bytes(target)
        garbage_collect(target)
        freed = before - blob_bytes(target)
        assert freed > 0  # app's own layers went; the shared base stays (web needs it)
        target = start_registry(tmp_path / "vault")
        store = f"docker://{target.host}/backups/main"
        code, out = _run("backup", "verify", store, "--read-data")
        assert code == 0, out
        assert _run("backup", "keygen", str(tmp_path / "k"))[0] == 0
        code, out = _run(
            "backup", "run", f"{reg.host}/app", "--to", store, "--key-file", str(tmp_path / "k")
        )
        assert code == 2 and "registry store keeps blobs as they are" in out, out
    finally:
        stop_registry(target)
