"""The layer cache trusts only what it verified: a config that lies about a layer's diff_id can
neither fill the cache for another layer nor read another layer's results, and a cache record
that is torn, edited or of the wrong shape is a miss.

The crafted images are built here: an honest image whose layer holds planted fake secrets (an
RSA private key and AWS keys), and an image whose own layer is harmless but whose config claims
the honest layer's diff_id. Each case runs for a compressed layer (the streamed walk) and for an
uncompressed one read in place (the mapped walk).
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixtures_images import (
    BuiltImage,
    build_image,
    sha256,
    tar_bytes,
    write_docker_archive,
    write_oci_layout,
)

RNG = random.Random(20261203)


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def _pem() -> bytes:
    body = base64.b64encode(RNG.randbytes(900)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n".encode()


# assembled at run time: no real-looking credential sits in the repository
AWS = (
    f"[default]\naws_access_key_id = AKIA{_rand(16, string.ascii_uppercase + '234567')}\n"
    f"aws_secret_access_key = {_rand(40, string.ascii_letters + string.digits + '/+')}\n"
)

HONEST = tar_bytes(
    {
        "root/.ssh/id_rsa": _pem(),
        "root/.aws/credentials": AWS.encode(),
        "etc/deploy/key.pem": _pem(),
        "srv/app/main.py": b"print('hello')\n" * 50,
    }
)
HARMLESS = tar_bytes({"srv/app/readme.txt": b"nothing to see here\n" * 50})


def _claiming(img: BuiltImage, diff_ids: list[str]) -> BuiltImage:
    """The same image with a config that gives other diff_ids for its layers."""
    cfg = json.loads(img.config)
    cfg["rootfs"]["diff_ids"] = diff_ids
    config = json.dumps(cfg, sort_keys=True).encode()
    doc = json.loads(img.manifest)
    doc["config"]["digest"], doc["config"]["size"] = sha256(config), len(config)
    blobs = {d: b for d, b in img.blobs.items() if d != img.config_digest}
    blobs[sha256(config)] = config
    return BuiltImage(
        json.dumps(doc, indent=2).encode(),
        config,
        blobs,
        img.layer_tars,
        img.media_type,
        img.platform,
    )


def _images(tmp: Path, medium: str) -> tuple[str, str]:
    """(honest, crafted) transports; ``medium``: ``gzip`` (an OCI layout of gzip layers, the
    streamed walk), ``plain`` (an OCI layout of uncompressed layers, the mapped walk) or
    ``docker`` (a legacy docker-archive, uncompressed layers: the mapped walk)."""
    compression = "gzip" if medium == "gzip" else ""
    honest = build_image([HONEST], compression=compression)
    crafted = _claiming(build_image([HARMLESS], compression=compression), honest.diff_ids)
    if medium == "docker":
        return (
            write_docker_archive(honest, tmp / "honest.tar", "honest/img:1"),
            write_docker_archive(crafted, tmp / "crafted.tar", "crafted/img:1"),
        )
    return (
        write_oci_layout(honest, tmp / "honest", "1"),
        write_oci_layout(crafted, tmp / "crafted", "1"),
    )


def _check(image: str, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "imagewise",
            "check",
            image,
            "--db",
            str(cache.parent / "no-db.sqlite"),
            "--format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "IMAGEWISE_CACHE_DIR": str(cache)},
    )


def _secrets(res: subprocess.CompletedProcess[str]) -> tuple[list[Any], dict[str, int]]:
    """The secrets found in the layer content, as (rule, path): the secrets section, and the
    secret rules an audit finding on a credential file carries along (``also``)."""
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    found = [(s["rule"], s["path"].lstrip("/")) for s in doc["secrets"]]
    for a in doc["audit"]:
        found += [
            (rule, a.get("path", "").lstrip("/"))
            for rule in a.get("also", ())
            if rule.startswith("secret/")
        ]
    return sorted(found), doc["timing"]


def _refused(res: subprocess.CompletedProcess[str]) -> None:
    """The crafted image is an input error: one line naming the diff_id, exit 2."""
    assert res.returncode == 2, (res.returncode, res.stdout[:300], res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "diff_id" in lines[0] or "digest mismatch" in lines[0], lines[0]


MEDIA = ["gzip", "plain", "docker"]


@pytest.mark.parametrize("medium", MEDIA)
def test_crafted_first_cannot_blind_a_later_honest_image(tmp_path: Path, medium: str) -> None:
    honest, crafted = _images(tmp_path, medium)
    cache = tmp_path / "cache"
    truth, _ = _secrets(_check(honest, tmp_path / "other-cache", "--no-cache"))
    rules = {r for r, _ in truth}
    assert len(truth) >= 3 and any("private-key" in r for r in rules), truth
    assert any("aws" in r for r in rules), truth

    _refused(_check(crafted, cache))
    _refused(_check(crafted, cache, "--no-cache"))  # the same verdict without the cache
    first, timing = _secrets(_check(honest, cache))
    assert first == truth and timing["cached_layers"] == 0
    again, timing = _secrets(_check(honest, cache))  # the honest run did fill the cache
    assert again == truth and timing["cached_layers"] == 1


@pytest.mark.parametrize("medium", MEDIA)
def test_crafted_after_honest_cannot_read_its_results(tmp_path: Path, medium: str) -> None:
    honest, crafted = _images(tmp_path, medium)
    cache = tmp_path / "cache"
    truth, timing = _secrets(_check(honest, cache))
    assert truth and timing["cached_layers"] == 0
    _refused(_check(crafted, cache))
    again, timing = _secrets(_check(honest, cache))
    assert again == truth and timing["cached_layers"] == 1


@pytest.mark.parametrize("medium", ["gzip", "plain"])
def test_run_pass_stores_only_under_the_verified_diff_id(tmp_path: Path, medium: str) -> None:
    """The library pass, both walks: the crafted image raises and leaves the cache empty; the
    honest layer's records then go under its real diff_id, bound to its blob digest."""
    from imagewise.cache import LayerCache
    from imagewise.errors import DigestMismatch
    from imagewise.layers.passes import run_pass
    from imagewise.secrets.visitor import SecretsVisitor
    from imagewise.sources import open_source

    honest, crafted = _images(tmp_path, medium)
    cache = LayerCache(tmp_path / "cache")
    with open_source(crafted) as src:
        with pytest.raises(DigestMismatch, match="diff_id"):
            run_pass(src.image(), [SecretsVisitor()], cache=cache)
    assert not any(p.is_file() for p in cache.root.rglob("*")) if cache.root.exists() else True
    with open_source(honest) as src:
        img = src.image()
        v = SecretsVisitor()
        run_pass(img, [v], cache=cache)
        found = sorted(f.location.path for f in v.findings)
        assert cache.bound(str(img.layers[0].digest)) == str(img.layers[0].diff_id)
        again = SecretsVisitor()
        run_pass(img, [again], cache=cache)
        assert cache.hits == 1 and sorted(f.location.path for f in again.findings) == found
    assert len(found) >= 3


def test_verify_checks_diff_ids_of_compressed_layers(tmp_path: Path) -> None:
    """``--verify`` checks a gzip layer's content against the config's diff_id; without it
    ``analyze`` trusts the config as before."""
    _, crafted = _images(tmp_path, "gzip")
    res = subprocess.run(
        ["imagewise", "analyze", crafted, "--verify"], capture_output=True, text=True
    )
    _refused(res)
    res = subprocess.run(["imagewise", "analyze", crafted], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def _poison(path: Path, how: str) -> None:
    data = path.read_bytes()
    head, _, payload = data.partition(b"\n")
    if how == "null":
        path.write_bytes(b"null")
    elif how == "framed-null":  # a well-framed record whose payload is null (digest fixed up)
        import hashlib

        parts = head.split(b" ")
        parts[-1] = hashlib.sha256(b"null").hexdigest().encode()
        path.write_bytes(b" ".join(parts) + b"\nnull")
    elif how == "shape":  # JSON of another shape, unframed (what an older writer left)
        path.write_bytes(json.dumps({"rule": 1, "path": None}).encode())
    elif how == "torn":
        path.write_bytes(data[: len(data) // 2])
    elif how == "edited":
        path.write_bytes(head + b"\n" + payload.replace(b"secret", b"sekret").replace(b"a", b"b"))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["null", "framed-null", "shape", "torn", "edited", "empty"])
def test_bad_cache_records_are_misses(tmp_path: Path, how: str) -> None:
    honest, _ = _images(tmp_path, "gzip")
    cache = tmp_path / "cache"
    truth, _ = _secrets(_check(honest, cache))
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert any("results" in p.parts for p in files) and any("blobs" in p.parts for p in files)
    for p in files:
        _poison(p, how)
    res = _check(honest, cache)
    assert "Traceback" not in res.stderr
    got, timing = _secrets(res)
    assert got == truth and timing["cached_layers"] == 0
    # the miss rewrote the records: the next run is served from the cache again
    got, timing = _secrets(_check(honest, cache))
    assert got == truth and timing["cached_layers"] == 1


def test_a_record_copied_under_another_key_is_a_miss(tmp_path: Path) -> None:
    from imagewise.cache import LayerCache

    cache = LayerCache(tmp_path / "c")
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    cache.store_result("secrets", "1", a, [{"rule": "x"}])
    cache.store_entries(a, (["etc/x"], [0], [1], [0o644], [0], [0], [""], [0], ["etc/x"], [0]))
    cache.bind(a, a)
    assert cache.load_result("secrets", "1", a) == (True, [{"rule": "x"}])
    assert cache.load_entries(a) is not None and cache.bound(a) == a
    for kind in ("results/secrets-1", "entries", "blobs"):
        src = cache.root / kind / a.replace(":", "_")
        (cache.root / kind / b.replace(":", "_")).write_bytes(src.read_bytes())
    assert cache.load_result("secrets", "1", b) == (False, None)
    assert cache.load_entries(b) is None and cache.bound(b) is None
    cache.store_result("secrets", "1", b, None)  # nothing derived: nothing stored
    assert cache.load_result("secrets", "1", b) == (False, None)
    # entries of the wrong shape inside an intact frame
    cache.store_entries(b, (["etc/x"], [99], [1]))
    assert cache.load_entries(b) is None
