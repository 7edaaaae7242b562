"""A backup store on S3-compatible object storage: moto's standalone S3 server, started here."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import RegistryServer, push_image, unique_repo
from storage_support import image

from imagewise.cli.main import cli

MOTO = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import httpx

    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; returns its name (AWS_* point boto3 at the moto server)."""
    for k, v in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "imagewise",
        "AWS_SECRET_ACCESS_KEY": "imagewise-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    import boto3

    bucket = unique_repo("bk").replace("/", "-")
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


def test_backup_restore_verify_on_s3(s3: str, registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo("s3src")
    digests = {
        t: push_image(registry, repo, t, image([9600, 9600 + i])).manifest_digest
        for i, t in enumerate(("1", "2"), 1)
    }
    store = f"s3://{s3}/nightly"
    code, out = _run("backup", "run", f"{registry.host}/{repo}", "--to", store, "--format", "json")
    assert code == 0, out
    first = json.loads(out)
    assert (
        first["kind"] == "full" and first["totals"]["added_blobs"] == 7
    )  # base, 2 tops, 2 configs, 2 manifests
    code, out = _run("backup", "run", f"{registry.host}/{repo}", "--to", store, "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["added_bytes"] == 0, out
    code, out = _run("backup", "list", store)
    assert code == 0 and out.count("\n") == 3, out
    code, out = _run("backup", "verify", store, "--read-data", "--format", "json")
    assert code == 0 and json.loads(out)["blobs_checked"] == 7, out
    code, out = _run(
        "restore", "latest", "--store", store, "--to", f"oci:{tmp_path / 'out'}", "--format", "json"
    )
    assert code == 0, out
    assert {i["digest"] for i in json.loads(out)["images"]} == set(digests.values())
    # the objects are where the prefix says, and nothing else is in the bucket
    import boto3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3)["Contents"]]
    assert all(k.startswith("nightly/") for k in keys) and "nightly/lock" not in keys


def test_s3_lock_and_encryption(s3: str, registry: RegistryServer, tmp_path: Path) -> None:
    import boto3

    repo = unique_repo("s3lock")
    push_image(registry, repo, "1", image([9700]))
    key = tmp_path / "k"
    assert _run("backup", "keygen", str(key))[0] == 0
    store = f"s3://{s3}"
    assert (
        _run("backup", "run", f"{registry.host}/{repo}", "--to", store, "--key-file", str(key))[0]
        == 0
    )
    client = boto3.client("s3")
    client.put_object(
        Bucket=s3,
        Key="lock",
        Body=json.dumps({"pid": 1, "host": "elsewhere", "time": time.time()}).encode(),
    )
    code, out = _run(
        "backup", "run", f"{registry.host}/{repo}", "--to", store, "--key-file", str(key)
    )
    assert code == 2 and "locked by pid 1 on elsewhere" in out, out
    client.delete_object(Bucket=s3, Key="lock")
    code, out = _run("backup", "verify", store, "--key-file", str(key), "--read-data")
    assert code == 0, out
    body = b"".join(
        client.get_object(Bucket=s3, Key=o["Key"])["Body"].read()
        for o in client.list_objects_v2(Bucket=s3)["Contents"]
        if o["Key"].startswith("blobs/")
    )
    assert b"mediaType" not in body  # encrypted on the server


def test_s3_errors_are_one_line(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code, out = _run("backup", "list", "s3://no-such-bucket-here")
    assert code == 2 and out.count("\n") == 1, out
    os.environ.pop("IMAGEWISE_UNUSED", None)
