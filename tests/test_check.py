"""``imagewise check`` end to end on an image built by buildah with planted problems."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import corpus

BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")

DOCKERFILE = """\
FROM oci-archive:{base}
RUN mkdir -p /var/lib/apt/lists /var/cache/apt/archives && \\
    dd if=/dev/urandom of=/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages bs=1k count=40 2>/dev/null
RUN printf '[default]\\naws_access_key_id = AKIAZ3MNQ7XW5KDP2R4T\\naws_secret_access_key = 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\\n' > /root/credentials
RUN rm /root/credentials && mkdir -p /usr/local/bin && cp /bin/busybox /usr/local/bin/helper && chmod 4755 /usr/local/bin/helper
COPY PyYAML-5.3.1.dist-info /usr/lib/python3.11/site-packages/PyYAML-5.3.1.dist-info
ENV DB_PASSWORD=s3cr3tP4ssw0rdValue
CMD ["sh"]
"""

METADATA = (
    "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3.1\nSummary: YAML parser\nLicense: MIT\n"
)


def _buildah() -> str:
    exe = shutil.which("buildah")
    if not exe:
        pytest.fail("buildah is required (scripts/install-deps installs it)")
    return exe


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    base = corpus(*BUSYBOX)
    ctx = tmp_path_factory.mktemp("check-ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    info = ctx / "PyYAML-5.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(METADATA)
    (info / "RECORD").write_text("")
    out = ctx / "image.tar"
    name = f"localhost/iw-check-{ctx.name.lower()}:1.0.0"
    # a store of its own: each xdist worker builds this fixture, under the same image name
    own = tmp_path_factory.mktemp("check-store")
    store = [
        "--storage-driver",
        "vfs",
        "--root",
        str(own / "root"),
        "--runroot",
        str(own / "runroot"),
    ]
    subprocess.run(
        [
            _buildah(),
            "bud",
            *store,
            "--isolation",
            "chroot",
            "--layers",
            "-q",
            "-t",
            name,
            str(ctx),
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [_buildah(), "push", *store, name, f"docker-archive:{out}:{name}"],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run([_buildah(), "rmi", *store, name], capture_output=True)
    return out, ctx / "Dockerfile"


@pytest.fixture(scope="module")
def osv_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("osv") / "osv.sqlite"
    src = corpus("osv", "pypa-advisory-database", "vulns", "pyyaml")
    from cli_runner import CliRunner

    from imagewise.cli.main import cli

    res = CliRunner().invoke(cli, ["db", "import", str(src), "--db", str(db)])
    assert res.exit_code == 0, res.output
    return db


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["imagewise", *args], capture_output=True, text=True)


def test_check_reports_every_planted_problem(planted, osv_db, tmp_path):
    image, dockerfile = planted
    res = run_cli(
        "check",
        f"docker-archive:{image}",
        "--dockerfile",
        str(dockerfile),
        "--db",
        str(osv_db),
        "--format",
        "json",
        "--no-cache",
    )
    assert res.returncode == 1, res.stderr  # the default policy fails it
    doc = json.loads(res.stdout)
    assert doc["schema"] == "imagewise/check/v1"
    audit = {f["rule"]: f for f in doc["audit"]}
    # root user, pointing at the Dockerfile (no USER: the final FROM line)
    assert audit["CIS-DI-0001"]["dockerfile_line"] == 1
    # setuid file with layer and path, linked to its RUN line
    suid = audit["CIS-DI-0008"]
    assert suid["path"] == "/usr/local/bin/helper" and suid["layer_index"] == 3
    assert suid["dockerfile_line"] == 5
    # apt caches from the files present, with layer and line: one finding (the waste
    # analysis', with the bytes) that names the audit's DKL-DI-0005 too
    apt = [
        f
        for f in [*doc["audit"], *doc["analysis"]["leftovers"]]
        if "DKL-DI-0005" in (f["rule"], *f.get("also", ()))
    ]
    assert len(apt) == 1 and apt[0]["layer_index"] == 1 and apt[0]["dockerfile_line"] == 2
    # ENV password, masked, at its ENV line
    env = next(
        f for f in doc["audit"] if f["rule"] == "CIS-DI-0010" and "DB_PASSWORD" in f["message"]
    )
    assert "s3cr3tP4ssw0rdValue" not in json.dumps(doc)
    assert env["dockerfile_line"] == 7
    # the secret in a layer that a later layer deletes is still found
    aws = [s for s in doc["secrets"] if s["path"] == "root/credentials"]
    assert aws and aws[0]["layer_index"] == 2 and aws[0]["dockerfile_line"] == 4
    # the old vulnerable Python package
    vulns = [v for v in doc["vulnerabilities"] if v["package"].lower() == "pyyaml"]
    assert vulns and doc["vulnerability_scan"]["performed"]
    assert any("5.4" in fv or "5.3.2" in fv for v in vulns for fv in v["fixed_versions"])
    rules = {v["rule"] for v in doc["policy"]["violations"]}
    assert {
        "security_baseline.require_non_root",
        "security_baseline.forbid_secrets",
        "optimization.forbid_caches",
        "security_baseline.max_vulnerability_severity",
    } <= rules
    assert set(doc["score"]) >= {"build", "security", "performance", "operations", "grade"}


def test_check_without_db_says_scan_skipped(planted, tmp_path):
    image, _ = planted
    res = run_cli(
        "check", f"docker-archive:{image}", "--db", str(tmp_path / "none.sqlite"), "--no-cache"
    )
    assert res.returncode == 1
    assert "vulnerability scan skipped" in res.stdout


def test_layer_cache_reused_by_sibling_image(planted, tmp_path):
    image, _ = planted
    env_cache = tmp_path / "cache"
    first = subprocess.run(
        ["imagewise", "check", f"docker-archive:{image}", "--format", "json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "IMAGEWISE_CACHE_DIR": str(env_cache)},
    )
    second = subprocess.run(
        ["imagewise", "check", f"docker-archive:{image}", "--format", "json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "IMAGEWISE_CACHE_DIR": str(env_cache)},
    )
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["timing"]["read_layers"] == len_layers(a) and a["timing"]["cached_layers"] == 0
    assert b["timing"]["cached_layers"] == len_layers(b) and b["timing"]["read_layers"] == 0
    for key in ("audit", "secrets", "packages", "analysis"):
        assert a[key] == b[key], key


def len_layers(doc: dict) -> int:
    return doc["image"]["layers"]


def test_check_usage_errors_exit_2(tmp_path):
    res = run_cli("check", str(tmp_path / "missing.tar"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    bad = tmp_path / "p.yaml"
    bad.write_text("optimization: {max_size: huge}\n")
    res = run_cli("check", "oci:" + str(tmp_path), "--policy", str(bad))
    assert res.returncode == 2 and "max_size" in res.stderr


def test_layers_prepared_one_by_one_give_the_same_check(planted, osv_db, tmp_path):
    """The split a fleet runs: each layer analysed on its own (out of order, as separate
    ``layer`` jobs would), then the image's check joins them without reading any layer, and
    says exactly what a check that read every layer says."""
    from imagewise.cache import LayerCache
    from imagewise.check.render import to_json
    from imagewise.check.run import CheckOptions, layer_ready, prepare_layer, run_check
    from imagewise.sources import open_source

    image, _ = planted
    ref = f"docker-archive:{image}"
    with open_source(ref) as src:
        digests = [str(layer.digest) for layer in src.image().layers]
    assert len(digests) >= 4
    cache = LayerCache(tmp_path / "split")
    for digest in reversed(digests):
        assert not layer_ready(digest, cache)
        assert prepare_layer(ref, digest, cache=cache) is True
        assert layer_ready(digest, cache)
        assert prepare_layer(ref, digest, cache=cache) is False  # once is enough
    joined = run_check(CheckOptions(ref, db=osv_db, cache_dir=tmp_path / "split"))
    assert (joined.cache_hits, joined.cache_misses) == (len(digests), 0)
    whole = run_check(CheckOptions(ref, db=osv_db, use_cache=False))
    a, b = to_json(joined), to_json(whole)
    for doc in (a, b):
        doc.pop("timing")
    assert a == b
    assert a["secrets"] and a["audit"] and a["vulnerabilities"]  # the planted problems are there


def test_prepare_layer_names_a_layer_the_image_lacks(planted, tmp_path):
    from imagewise.cache import LayerCache
    from imagewise.check.run import prepare_layer
    from imagewise.errors import NotFound

    image, _ = planted
    with pytest.raises(NotFound, match="has no layer sha256:0000"):
        prepare_layer(
            f"docker-archive:{image}", "sha256:" + "0" * 64, cache=LayerCache(tmp_path / "c")
        )
