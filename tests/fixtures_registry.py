"""Registry fixtures: the CNCF distribution registry started on a free loopback port.

Loaded as a pytest plugin (see ``conftest.py``). Each server is session-scoped (started once,
shared by every test: use your own repository names, e.g. ``unique_repo("copy")``), storage in a
temporary directory, delete enabled, readiness-polled and terminated at teardown.

Fixtures (each yields a :class:`RegistryServer`):

``registry``
    No authentication. ``host`` is ``"127.0.0.1:PORT"``; reference images as
    ``f"docker://{registry.host}/myrepo:tag"`` (loopback, so plain HTTP).
``registry_basic``
    htpasswd basic auth (bcrypt, ``htpasswd -B``); ``username`` / ``password`` are valid.
``registry_token``
    Bearer-token auth: a stdlib token server on loopback issues ES256 JWTs the registry trusts
    (``auth.token`` with ``rootcertbundle``; header ``kid`` is the libtrust key id).
    ``username`` / ``password`` get any scope; anonymous callers get ``pull`` on repositories
    under ``public/`` only. ``token_requests`` lists the scopes of every token request.
``registry_login``
    Function-scoped: isolates credential lookup (``REGISTRY_AUTH_FILE``, ``DOCKER_CONFIG``,
    ``XDG_*`` point into a temp dir) and writes an auth file holding the credentials of
    ``registry_basic`` and ``registry_token``. Use it with the auth variants so that
    ``imagewise`` finds credentials the way a user's ``auth.json`` would provide them.

Useful attributes/methods of a server: ``url`` (``http://127.0.0.1:PORT``), ``storage_dir``,
``blob_data_path(digest)`` (the file holding a blob in the registry's storage, e.g. to corrupt it),
``auth_entry()`` (``{"auth": base64(user:password)}`` for an auth.json).

Helpers (plain functions, import them: ``from fixtures_registry import push_image``):
``unique_repo(prefix)``, ``build_image(layer_sizes, seed, media="oci"|"docker")`` (a tiny
in-memory image: random-file gzip layers, config with diff_ids; returns blobs, manifest bytes and
descriptors) and ``push_image(server, repo, tag, image)`` (pushes it with imagewise's own
``RegistrySink``), ``free_port()``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
USERNAME = "imagewise"
PASSWORD = "s3cret-Pa55word-never-shown"
SERVICE = "imagewise-test-registry"
ISSUER = "imagewise-test-token-issuer"


def unique_repo(prefix: str = "test") -> str:
    """A repository name no other test uses."""
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryServer:
    host: str
    storage_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth: str = "none"  # none | basic | token
    token_server: TokenServer | None = field(default=None, repr=False)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def token_requests(self) -> list[list[str]]:
        return self.token_server.requests if self.token_server else []

    def blob_data_path(self, digest: str) -> Path:
        algo, hexpart = str(digest).split(":", 1)
        return (
            self.storage_dir
            / "docker"
            / "registry"
            / "v2"
            / "blobs"
            / algo
            / hexpart[:2]
            / hexpart
            / "data"
        )

    def auth_entry(self) -> dict[str, str]:
        raw = f"{self.username}:{self.password}".encode()
        return {"auth": base64.b64encode(raw).decode()}

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


# -- the registry process -------------------------------------------------------------------------


def _config(
    root: Path,
    port: int,
    auth: dict[str, Any] | None,
    tls: tuple[Path, Path] | None = None,
    delete: bool = True,
    notify: dict[str, Any] | None = None,
) -> str:
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    if auth:
        cfg["auth"] = auth
    if notify:
        cfg["notifications"] = {"endpoints": [notify]}
    if tls:
        cfg["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    return json.dumps(cfg)  # YAML is a superset of JSON


def _start(
    root: Path,
    auth_config: dict[str, Any] | None = None,
    tls: tuple[Path, Path] | None = None,
    delete: bool = True,
    notify: dict[str, Any] | None = None,
    **extra: Any,
) -> RegistryServer:
    """Start ``docker-registry serve``; ``tls`` = (certificate PEM, key PEM) serves https."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "storage").mkdir(exist_ok=True)
    last_log = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind: try again
        port = free_port()
        config = root / "config.yml"
        config.write_text(_config(root, port, auth_config, tls, delete, notify))
        log_path = root / f"registry-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = RegistryServer(
            f"127.0.0.1:{port}",
            root / "storage",
            proc,
            log_path,
            **extra,
            scheme="https" if tls else "http",
        )
        if _wait_ready(server):
            return server
        last_log = server.log()
        _stop(server)
    raise RuntimeError(f"docker-registry did not start:\n{last_log}")


def _wait_ready(server: RegistryServer, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            r = httpx.get(f"{server.url}/v2/", timeout=1.0, verify=False)
            if r.status_code in (200, 401):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return False


def _stop(server: RegistryServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    if server.token_server is not None:
        server.token_server.stop()


# -- bearer token server --------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key: Any) -> str:
    """The key id docker/libtrust derives: base32 of SHA-256(SPKI DER)[:30], in groups of 4."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


class TokenServer:
    """Issues JWTs for the registry's ``auth.token`` config; stdlib HTTP on loopback."""

    def __init__(self, root: Path, username: str, password: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagewise test token signer")])
        now = _dt.datetime.now(_dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = root / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(self.key.public_key())
        self.username, self.password = username, password
        self.requests: list[list[str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def grant(self, scopes: list[str], user: str | None) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if user is None:  # anonymous: pull on public/ only
                wanted = [a for a in wanted if a == "pull"] if name.startswith("public/") else []
            if wanted:
                access.append({"type": kind, "name": name, "actions": wanted})
        return access

    def token(self, access: list[dict[str, Any]], subject: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        r, s = decode_dss_signature(
            self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = parse_qs(url.query)
                if url.path != "/token" or q.get("service", [""])[0] != SERVICE:
                    self.send_error(400)
                    return
                scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
                server.requests.append(scopes)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    u, _, p = base64.b64decode(header[6:]).decode().partition(":")
                    if (u, p) != (server.username, server.password):
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"details":"incorrect username or password"}')
                        return
                    user = u
                body = json.dumps(
                    {
                        "token": server.token(server.grant(scopes, user), user or "anonymous"),
                        "expires_in": 300,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = _start(tmp_path_factory.mktemp("registry"))
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("registry-basic")
    htpasswd = root / "htpasswd"
    out = subprocess.run(["htpasswd", "-Bbn", USERNAME, PASSWORD], capture_output=True, check=True)
    htpasswd.write_bytes(out.stdout)
    server = _start(
        root,
        {"htpasswd": {"realm": "imagewise-test", "path": str(htpasswd)}},
        username=USERNAME,
        password=PASSWORD,
        auth="basic",
    )
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("registry-token")
    tokens = TokenServer(root, USERNAME, PASSWORD)
    auth = {
        "token": {
            "realm": tokens.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(tokens.cert_path),
        }
    }
    try:
        server = _start(
            root, auth, username=USERNAME, password=PASSWORD, auth="token", token_server=tokens
        )
    except BaseException:
        tokens.stop()
        raise
    yield server
    _stop(server)


@pytest.fixture
def registry_login(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry_basic: RegistryServer,
    registry_token: RegistryServer,
) -> Iterator[Path]:
    """An isolated credential environment with an auth.json for the auth registries."""
    isolated = tmp_path / "creds"
    isolated.mkdir()
    auth_file = isolated / "auth.json"
    auth_file.write_text(
        json.dumps(
            {
                "auths": {
                    registry_basic.host: registry_basic.auth_entry(),
                    registry_token.host: registry_token.auth_entry(),
                }
            }
        )
    )
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    monkeypatch.setenv("DOCKER_CONFIG", str(isolated / "docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(isolated / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated / "config"))
    from imagewise.registry.client import RegistryClient

    RegistryClient.clear_shared()  # shared clients cache looked-up credentials
    yield auth_file
    RegistryClient.clear_shared()


# -- building tiny images -------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    """A tiny image made in memory: blobs by digest, the manifest bytes and descriptors."""

    manifest_raw: bytes
    manifest_digest: str
    config: Any  # Descriptor
    layers: tuple[Any, ...]  # Descriptors
    blobs: dict[str, bytes] = field(repr=False)


def build_image(
    layer_sizes: tuple[int, ...] = (2048, 4096), seed: int | None = None, media: str = "oci"
) -> BuiltImage:
    """An image with one random file per layer (gzip tars) and a config listing their diff_ids."""
    import gzip
    import io
    import random
    import tarfile

    from imagewise.oci import media as mt
    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor

    rnd = random.Random(seed)
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    layer_type = mt.OCI_LAYER_GZIP if media == "oci" else mt.DOCKER_LAYER_GZIP
    for i, size in enumerate(layer_sizes):
        tar_buf = io.BytesIO()
        with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = rnd.randbytes(size)
            info = tarfile.TarInfo(f"layer{i}/data.bin")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        tar_bytes = tar_buf.getvalue()
        gz = gzip.compress(tar_bytes, mtime=0)
        d = Digest.of(gz)
        blobs[str(d)] = gz
        layers.append(Descriptor(layer_type, d, len(gz)))
        diff_ids.append(str(Digest.of(tar_bytes)))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"seed": str(seed)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"ADD layer{i}"} for i in range(len(layers))],
        },
        sort_keys=True,
    ).encode()
    cd = Digest.of(config)
    blobs[str(cd)] = config
    config_desc = Descriptor(mt.OCI_CONFIG if media == "oci" else mt.DOCKER_CONFIG, cd, len(config))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST if media == "oci" else mt.DOCKER_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [x.to_json() for x in layers],
        },
        indent=3,
    ).encode()
    return BuiltImage(manifest, str(Digest.of(manifest)), config_desc, tuple(layers), blobs)


def push_image(
    server: RegistryServer, repo: str, tag: str = "v1", image: BuiltImage | None = None
) -> BuiltImage:
    """Push a tiny image (built if not given) with imagewise's own registry sink."""
    import io

    from imagewise.oci.model import parse_manifest
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import RegistrySink

    image = image or build_image()
    sink = RegistrySink(ImageReference.parse(f"{server.host}/{repo}:{tag}"))
    for desc in (image.config, *image.layers):
        if not sink.has_blob(desc):
            sink.put_blob(desc, io.BytesIO(image.blobs[str(desc.digest)]))
    sink.put_manifest(parse_manifest(image.manifest_raw), top=True)
    return image


def start_registry(
    root: Path, *, delete: bool = True, notify_url: str | None = None, secret: str = ""
) -> RegistryServer:
    """A registry of the test's own (for tests that stop it, garbage-collect it, need deletes
    off, or send notifications to ``notify_url`` with ``Authorization: Bearer SECRET``); stop
    it with :func:`stop_registry`."""
    notify = None
    if notify_url:
        notify = {
            "name": "imagewise",
            "url": notify_url,
            "headers": {"Authorization": [f"Bearer {secret}"]},
            "timeout": "2s",
            "threshold": 3,
            "backoff": "200ms",
        }
    return _start(root, delete=delete, notify=notify)


def stop_registry(server: RegistryServer) -> None:
    _stop(server)


def garbage_collect(server: RegistryServer) -> str:
    """Run the registry's own garbage collector on its storage (``--delete-untagged`` off)."""
    out = subprocess.run(
        [REGISTRY_BIN, "garbage-collect", str(server.storage_dir.parent / "config.yml")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def blob_bytes(server: RegistryServer) -> int:
    """The bytes of every blob the registry stores (its ``blobs/*/*/*/data`` files)."""
    root = server.storage_dir / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in root.glob("*/*/*/data")) if root.is_dir() else 0


__all__ = [
    "PASSWORD",
    "USERNAME",
    "BuiltImage",
    "RegistryServer",
    "TokenServer",
    "blob_bytes",
    "build_image",
    "garbage_collect",
    "start_registry",
    "stop_registry",
    "free_port",
    "push_image",
    "unique_repo",
]
