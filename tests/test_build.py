"""``imagewise build`` with the real engine (buildah, chroot isolation, vfs storage): timings
and cache hits from its output, pushes, the lint and check gates, and failure diagnoses."""

from __future__ import annotations

import datetime
import fcntl
import http.server
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_runner import CliRunner
from fixtures_registry import RegistryServer, unique_repo

from imagewise.cli.main import cli


@pytest.fixture(autouse=True)
def _buildah() -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.fail(
            "these tests build with buildah as root (scripts/install-deps installs it; CI runs as root)"
        )


def _run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _context(tmp_path: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_bytes(data)
    return ctx


def test_build_push_cache_and_check(tmp_path: Path) -> None:
    ctx = _context(
        tmp_path,
        'FROM scratch\nLABEL org.opencontainers.image.version="1.0"\nCOPY app.txt /app.txt\nCMD ["/app"]\n',
        {"app.txt": b"hello\n", "big.bin": b"0" * 300_000, ".dockerignore": b"big.bin\n"},
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("extends: none\n")
    out = f"oci:{tmp_path / 'out'}:1.0"
    tag = f"localhost/iw-test-{os.getpid()}:1"
    code, doc = _run(
        "build", str(ctx), "-t", tag, "--push", out, "--check", "--policy", str(policy)
    )
    assert code == 0 and doc["ok"], doc
    assert doc["schema"] == "imagewise/build/v1" and [s["step"] for s in doc["steps"]] == [
        1,
        2,
        3,
        4,
    ]
    assert doc["steps"][2]["instruction"] == "COPY app.txt /app.txt"
    assert doc["pushed"] == [out] and doc["check"]["status"] == "PASS"
    assert doc["dockerignore_excluded_bytes"] == 300_000 and doc["context_bytes"] < 1000
    code, again = _run("build", str(ctx), "-t", tag)
    assert code == 0 and again["cache_hits"] >= 2, (
        again
    )  # the layer cache, seen in the engine's output


ROOT = Path(__file__).resolve().parents[1]
#: test images kept between runs (both passes of scripts/test); .gitignore'd
CACHE = ROOT / ".cache" / "test-images"
DEBIAN_MIRROR = os.environ.get("IMAGEWISE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")


@pytest.fixture(scope="session")
def debian_base() -> str:
    """Debian bookworm (minbase and python3-pip), made by debootstrap from the Debian archive
    the first time and kept in .cache/test-images; the tests' real builds start from it."""
    target = CACHE / "debian-bookworm-pip.tar"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:  # one maker at a time across xdist workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _make_debian(target)
    return f"oci-archive:{target}"


def _make_debian(target: Path) -> None:
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap makes the Debian base (scripts/install-deps installs it)")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs, tar = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3-pip", "bookworm"]
            + [str(rootfs), DEBIAN_MIRROR],
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        bah = ["buildah", "--storage-driver", "vfs"]
        ctr = subprocess.run(
            [*bah, "from", "-q", "scratch"], capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            subprocess.run([*bah, "add", ctr, str(tar), "/"], capture_output=True, check=True)
            path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            subprocess.run([*bah, "config", "--env", path, ctr], check=True)
            partial = Path(tmp) / "image.tar"
            subprocess.run(
                [*bah, "commit", "-q", ctr, f"oci-archive:{partial}:bookworm"],
                capture_output=True,
                check=True,
            )
            partial.rename(target)
        finally:
            subprocess.run([*bah, "rm", ctr], capture_output=True)


@pytest.fixture()
def untrusted_index(tmp_path: Path) -> Iterator[str]:
    """An HTTPS package index on loopback with a self-signed certificate nobody trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "index.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def test_every_diagnosis_class_from_a_real_build(
    tmp_path: Path, debian_base: str, registry: RegistryServer, untrusted_index: str
) -> None:
    """Builds that fail for real, one per class: the engine's parse error, apt and PyPI
    reached for a package or version that does not exist, an index whose certificate the build
    does not trust, a base tag missing from a local registry."""
    ca = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt").read_bytes()
    cases = {
        "dockerfile-syntax": ("FROM scratch\nFROBNICATE the build\n", "FROBNICATE"),
        "apt-package-missing": (
            f"FROM {debian_base}\n"
            "RUN apt-get update -q && apt-get install -y -q --no-install-recommends "
            "imagewise-no-such-package\n",
            "Unable to locate package imagewise-no-such-package",
        ),
        "pip-version-missing": (
            # this machine's CA bundle, for a proxy that intercepts TLS: the index is reached
            f"FROM {debian_base}\nCOPY ca.pem /ca.pem\n"
            "RUN PIP_CERT=/ca.pem pip install --break-system-packages requests==0.0.0.1\n",
            "the requirement requests==0.0.0.1 (from versions: 0.2.0",
        ),
        "tls-certificate": (
            f"FROM {debian_base}\n"
            f"RUN pip install --break-system-packages --retries 0 --index-url {untrusted_index} "
            "requests\n",
            "certificate",
        ),
        "base-image-missing": (
            f"FROM {registry.host}/{unique_repo('gone')}:1.0\nCOPY ca.pem /ca.pem\n",
            "manifest unknown",
        ),
    }
    for cause, (dockerfile, evidence) in cases.items():
        ctx = tmp_path / cause
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(dockerfile)
        (ctx / "ca.pem").write_bytes(ca)
        code, doc = _run("build", str(ctx), "--lint-fail-on", "none", "--no-layers")
        assert code == 1 and not doc["ok"], (cause, doc)
        assert doc["diagnosis"]["cause"] == cause, (cause, doc["diagnosis"], doc["log_tail"])
        assert evidence.lower() in doc["diagnosis"]["evidence"].lower(), (cause, doc["diagnosis"])
        assert doc["diagnosis"]["fix"], cause


@pytest.mark.parametrize(
    ("dockerfile", "cause", "where"),
    [
        ("FROM scratch\nCOPY missing.txt /x\n", "copy-source-missing", "COPY missing.txt"),
        ("FROM localhost:1/no/such:tag\n", "network", ""),
    ],
)
def test_failures_are_diagnosed(tmp_path: Path, dockerfile: str, cause: str, where: str) -> None:
    ctx = _context(tmp_path, dockerfile)
    code, doc = _run("build", str(ctx), "--lint-fail-on", "none")
    assert code == 1 and not doc["ok"], doc
    assert doc["diagnosis"]["cause"] == cause, doc["diagnosis"]
    assert where in (doc["failed_step"] or ""), doc
    assert doc["log_tail"] and doc["diagnosis"]["fix"]


def test_the_lint_gate_stops_before_the_engine(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM scratch\nWORKDIR relative/dir\n")
    code, doc = _run("build", str(ctx))
    assert code == 1 and doc["steps"] == [] and doc["diagnosis"]["cause"] == "lint-gate", doc
    assert "DL3000" in doc["diagnosis"]["evidence"]


def _build_file(tmp_path: Path, broken: str = "") -> Path:
    """base (scratch + a file), app and tools on base, docs on nothing, report after app:
    app and tools may build at once once base is there."""
    tag = f"localhost/iw-set-{os.getpid()}-{tmp_path.name[-8:].lower()}"
    for name, body in {
        "base": "FROM scratch\nCOPY base.txt /base.txt\n",
        "app": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n",
        "tools": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tools.txt /tools.txt\n",
        "docs": "FROM scratch\nCOPY docs.txt /docs.txt\n",
        "report": "FROM scratch\nCOPY report.txt /report.txt\n",
    }.items():
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(body if name != broken else "FROM scratch\nCOPY nope /x\n")
        (ctx / f"{name}.txt").write_text(name)
    spec = tmp_path / "imagewise-build.yaml"
    spec.write_text(
        "images:\n"
        f"  base: {{context: base, tags: ['{tag}-base:1']}}\n"
        f"  app: {{context: app, base: base, tags: ['{tag}-app:1'],"
        f" push: ['oci:{tmp_path}/out-app:1']}}\n"
        f"  tools: {{context: tools, base: base, tags: ['{tag}-tools:1']}}\n"
        f"  docs: {{context: docs, tags: ['{tag}-docs:1']}}\n"
        f"  report: {{context: report, after: [app], tags: ['{tag}-report:1']}}\n"
    )
    return spec


def test_build_file_builds_in_dependency_order_and_in_parallel(tmp_path: Path) -> None:
    spec = _build_file(tmp_path)
    code, doc = _run("build", "--build-file", str(spec), "--jobs", "2", "--lint-fail-on", "none")
    assert code == 0 and doc["ok"], json.dumps(doc)[:2000]
    images = {i["name"]: i for i in doc["images"]}
    assert [i["name"] for i in doc["images"]] == ["base", "app", "tools", "docs", "report"]
    assert {n: i["status"] for n, i in images.items()} == dict.fromkeys(images, "built")
    assert images["app"]["after"] == ["base"] and images["report"]["after"] == ["app"]
    # app was built on base: its image holds base's file (pushed to an OCI layout)
    from imagewise.sources import open_source

    with open_source(f"oci:{tmp_path}/out-app:1") as src:
        image = src.image()
        assert len(image.layers) == 2
    assert doc["jobs"] == 2 and doc["seconds"] > 0
    # two at a time: docs ran beside base; app and report waited for what they name
    assert images["docs"]["start_seconds"] < images["base"]["end_seconds"]
    assert images["app"]["start_seconds"] >= images["base"]["end_seconds"]
    assert images["report"]["start_seconds"] >= images["app"]["end_seconds"]


def test_build_file_skips_what_a_failed_base_would_carry(tmp_path: Path) -> None:
    spec = _build_file(tmp_path, broken="base")
    code, doc = _run("build", "--build-file", str(spec), "--lint-fail-on", "none")
    assert code == 1 and not doc["ok"]
    status = {i["name"]: i["status"] for i in doc["images"]}
    assert status == {
        "base": "failed",
        "app": "skipped",
        "tools": "skipped",
        "docs": "built",
        "report": "skipped",
    }
    reasons = {i["name"]: i.get("reason") for i in doc["images"]}
    assert reasons["app"] == "base was not built" and reasons["report"] == "app was not built"
    base = next(i for i in doc["images"] if i["name"] == "base")
    assert base["build"]["diagnosis"]["cause"] == "copy-source-missing"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "images:\n  a: {context: a, base: b, tags: [x]}\n  b: {context: b, base: a, tags: [y]}\n",
            "cycle: a -> b -> a",
        ),
        ("images:\n  a: {context: a, after: [zz]}\n", "'zz', which the file does not define"),
        ("images:\n  a: {context: a, colour: red}\n", "unknown key colour"),
        ("images:\n  a: {context: a}\n  b: {context: b, base: a}\n", "needs a tag"),
        ("images: []\n", "expected `images:`"),
        ("images:\n  a: {context: a, cache_to: 'r.example/c:1'}\n", "without a tag or digest"),
        ("images:\n  a: {context: a, platforms: [amd64]}\n", "expected os/arch"),
        (
            "images:\n  a: {context: a, platforms: [linux/amd64, linux/arm64], cache_to: r/c}\n",
            "multi-platform build runs without the layer cache",
        ),
    ],
)
def test_bad_build_files_are_refused_before_any_build(
    tmp_path: Path, text: str, message: str
) -> None:
    spec = tmp_path / "imagewise-build.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(cli, ["build", "--build-file", str(spec)])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_registry_cache_serves_a_fresh_storage(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--cache-to pushes each step to a registry repository; a build in another, empty storage
    (another machine, a fresh CI runner) with --cache-from takes every step from there."""
    ctx = _context(
        tmp_path,
        "FROM scratch\nCOPY a.bin /a.bin\nLABEL step=3\nCOPY a.bin /b.bin\n",
        {"a.bin": os.urandom(200_000)},
    )
    cache = f"{registry.host}/{unique_repo('cache')}"
    tag = f"localhost/iw-cache-{os.getpid()}:1"
    monkeypatch.setenv("IMAGEWISE_BUILDAH_ROOT", str(tmp_path / "first"))
    code, first = _run("build", str(ctx), "-t", tag, "--cache-to", cache, "--lint-fail-on", "none")
    assert code == 0 and first["cache_hits"] == 0 and first["cache_to"] == cache, first
    pushed = httpx.get(f"{registry.url}/v2/{cache.split('/', 1)[1]}/tags/list").json()["tags"]
    assert len(pushed) == 3  # one cache image per step that made a layer or config
    monkeypatch.setenv("IMAGEWISE_BUILDAH_ROOT", str(tmp_path / "second"))
    code, second = _run(
        "build", str(ctx), "-t", tag, "--cache-from", cache, "--lint-fail-on", "none"
    )
    assert code == 0 and second["cache_from"] == cache, second
    assert [s["cache"] for s in second["steps"]] == [None, "registry", "registry", "registry"]
    assert second["registry_cache_hits"] == 3 and second["cache_hits"] == 3
    for args, message in (
        (["--cache-from", f"{cache}:1"], "give a registry repository, without a tag or digest"),
        (["--cache-to", cache, "--no-layers"], "need the layer cache: drop --no-layers"),
        (
            ["--cache-to", cache, "--platform", "linux/amd64,linux/arm64"],
            "one --platform at a time",
        ),
        (["--platform", "arm64"], "--platform arm64: malformed platform"),
    ):
        bad = CliRunner().invoke(cli, ["build", str(ctx), *args])
        assert bad.exit_code == 2 and message in bad.stderr, (args, bad.stderr)


def test_multi_platform_build_pushes_one_index(tmp_path: Path, registry: RegistryServer) -> None:
    """Several --platform values make a manifest list named by the first tag, pushed with all
    its images; each step is reported with its platform."""
    from imagewise.sources import open_source

    ctx = _context(tmp_path, "FROM scratch\nCOPY app.txt /app.txt\n", {"app.txt": b"app\n"})
    repo = unique_repo("multi")
    dest = f"{registry.host}/{repo}:1"
    code, doc = _run(
        "build",
        str(ctx),
        "-t",
        f"localhost/iw-multi-{os.getpid()}-{tmp_path.name[-8:].lower()}:1",
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "--push",
        dest,
        "--lint-fail-on",
        "none",
    )
    assert code == 0 and doc["platforms"] == ["linux/amd64", "linux/arm64"], doc
    assert sorted({s["platform"] for s in doc["steps"]}) == ["linux/amd64", "linux/arm64"]
    assert "layer cache is off" in doc["notes"][0]
    with open_source(f"docker://{dest}") as src:
        top = src.top()
        assert sorted(top.platforms()) == ["linux/amd64", "linux/arm64"]  # type: ignore[union-attr]
        for plat in ("linux/amd64", "linux/arm64"):
            from imagewise.oci.model import Platform

            assert str(src.image(Platform.parse(plat)).config.platform) == plat
