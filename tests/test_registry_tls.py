"""TLS against a real registry serving https with its own CA: the certificate is verified from
the system trust store (``SSL_CERT_FILE`` honoured), an untrusted one is refused, ``--insecure``
skips the check, and a plain-HTTP registry never loads the trust store at all."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_images import random_image, write_oci_layout
from fixtures_registry import RegistryServer, _start, _stop

from imagewise.copy import copy
from imagewise.errors import RegistryError
from imagewise.registry import session
from imagewise.registry.client import RegistryClient


def _pki(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagewise test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (root / "ca.pem").write_bytes(ca.public_bytes(pem))
    (root / "server.pem").write_bytes(cert.public_bytes(pem))
    (root / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return root / "ca.pem", root / "server.pem", root / "server.key"


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, Path]]:
    root = tmp_path_factory.mktemp("tls-registry")
    ca, cert, key = _pki(root)
    server = _start(root / "registry", tls=(cert, key))
    try:
        yield server, ca
    finally:
        _stop(server)


@pytest.fixture
def fresh_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process-wide trust context that has not read any store yet."""
    RegistryClient.clear_shared()
    monkeypatch.setattr(session, "_SSL_CONTEXT", None)
    yield
    RegistryClient.clear_shared()


@pytest.mark.usefixtures("fresh_trust")
def test_untrusted_certificate_is_refused(tls_registry: tuple[RegistryServer, Path]) -> None:
    server, _ca = tls_registry
    client = RegistryClient(server.host, f"https://{server.host}")
    try:
        with pytest.raises(RegistryError, match="(?i)certificate"):
            client.ping()
    finally:
        client.close()


@pytest.mark.usefixtures("fresh_trust")
def test_ca_from_ssl_cert_file_is_trusted(
    tls_registry: tuple[RegistryServer, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io

    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor

    server, ca = tls_registry
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    data = b"blob over TLS" * 1000
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    client = RegistryClient(server.host, f"https://{server.host}")
    try:
        client.ping()
        client.upload_blob("tls/image", desc, io.BytesIO(data))
        assert client.has_blob("tls/image", desc.digest)
        assert client.read_blob("tls/image", desc) == data
    finally:
        client.close()


@pytest.mark.usefixtures("fresh_trust")
def test_insecure_skips_verification(tls_registry: tuple[RegistryServer, Path]) -> None:
    server, _ca = tls_registry
    client = RegistryClient(server.host, f"https://{server.host}", insecure=True)
    try:
        client.ping()
    finally:
        client.close()
    assert session._SSL_CONTEXT is None  # nothing to verify: no trust store was even made


@pytest.mark.usefixtures("fresh_trust")
def test_plain_http_registry_never_reads_the_trust_store(
    registry: RegistryServer, tmp_path: Path
) -> None:
    img = random_image(seed=8)
    layout = tmp_path / "layout"
    write_oci_layout(img, layout)
    copy(f"oci:{layout}:latest", f"docker://{registry.host}/plain/image:1")
    copy(f"docker://{registry.host}/plain/image:1", f"oci:{tmp_path / 'back'}:1")
    assert session._SSL_CONTEXT is None  # no TLS connection: the trust store was never made


class _Tunnel:
    """An HTTP proxy on loopback that only tunnels (``CONNECT host:port``), as corporate
    proxies do for TLS; remembers what each tunnel was asked for."""

    def __init__(self) -> None:
        import socket
        import threading

        self.asked: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: object) -> None:
        import socket
        import threading

        assert isinstance(conn, socket.socket)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = conn.recv(1)
            if not byte:
                conn.close()
                return
            head += byte
        line = head.split(b"\r\n")[0].decode()
        method, authority, _ = line.split(" ")
        self.asked.append(line)
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        host, port = authority.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def stop(self) -> None:
        self.sock.close()


@pytest.mark.usefixtures("fresh_trust")
def test_https_through_a_connect_proxy_from_the_environment(
    tls_registry: tuple[RegistryServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor

    server, ca = tls_registry
    proxy = _Tunnel()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    data = b"blob through a tunnel" * 1000
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    client = RegistryClient(server.host, f"https://{server.host}")
    try:
        client.upload_blob("tunnel/image", desc, io.BytesIO(data))
        assert client.read_blob("tunnel/image", desc) == data  # certificate checked end to end
        assert proxy.asked and all(a == f"CONNECT {server.host} HTTP/1.1" for a in proxy.asked)
    finally:
        client.close()
        proxy.stop()
