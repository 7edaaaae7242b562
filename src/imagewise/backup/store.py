"""The backup store: content-addressed blobs and small JSON snapshot records, on a backend.

Objects (``backends``: a local directory, the default, or ``s3://BUCKET[/PREFIX]``)::

    imagewise-store.json      {"version": 1, "id": ..., "compression": ..., "encryption": ...}
    blobs/sha256/ab/<hex>     every blob once (manifests byte-exact, configs, layers, files)
    snapshots/<id>.json       one record per snapshot
    lock                      held by the one writer (pid, host, time)

Crash safety: an object becomes visible only when complete (the backend's guarantee), and a
blob only after its bytes were hashed and found to be its name; so a writer killed at any
moment leaves nothing half-written under a real name. A present blob is a correct blob unless
the storage changed it (``backup verify --read-data`` finds that). Bytes are kept as they are,
or framed (compressed, encrypted: ``codec``).

One writer at a time: ``lock`` is created exclusively; a lock whose process is gone (same host)
or older than ``STALE_AFTER`` seconds (another host) is stale and taken over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from imagewise.backup.backends import LocalBackend, RegistryBackend, S3Backend, backend_for
from imagewise.backup.codec import Codec
from imagewise.errors import ImagewiseError, UsageError

STALE_AFTER = 6 * 3600
_CHUNK = 1 << 20
MARKER = "imagewise-store.json"


class StoreError(ImagewiseError):
    exit_code = 2


class StoreLocked(StoreError):
    """Another writer holds the store."""


class Store:
    """A backup store (see the module docstring) at ``location``: a directory or s3://..."""

    def __init__(
        self,
        location: str | Path,
        *,
        create: bool = False,
        key: bytes | None = None,
        compress: bool = False,
    ) -> None:
        """Open the store (``create``: make it when missing, encrypted with ``key`` and
        compressing small blobs with ``compress``; an existing store keeps its own settings,
        and needs ``key`` when it is encrypted)."""
        self.backend: LocalBackend | S3Backend | RegistryBackend = backend_for(location)
        if isinstance(self.backend, RegistryBackend) and (key is not None or compress):
            raise UsageError(
                f"{location}: a registry store keeps blobs as they are (the registry names them "
                "by their bytes): no --key-file or --compress"
            )
        if not self.backend.exists():
            if not create:
                raise UsageError(
                    f"{self.backend.name}: not an imagewise backup store (no {MARKER})"
                )
            self.backend.prepare()
            store_id = secrets.token_hex(8)
            info: dict[str, Any] = {
                "version": 1,
                "id": store_id,
                "compression": "zstd" if compress else None,
                "encryption": _key_check(key, store_id) if key is not None else None,
            }
            self.backend.write(MARKER, iter([json.dumps(info).encode()]))
        try:
            with self.backend.open(MARKER) as f:
                info = json.loads(f.read())
        except (KeyError, OSError, ValueError) as e:
            raise StoreError(f"{self.backend.name}: {MARKER} unreadable ({e})") from None
        if info.get("version") != 1:
            raise StoreError(f"{self.name}: store version {info.get('version')!r}, expected 1")
        self.id = str(info.get("id", ""))
        encryption = info.get("encryption")
        if encryption and key is None:
            raise UsageError(f"{self.name}: the store is encrypted; give --key-file")
        if key is not None and not encryption:
            raise UsageError(f"{self.name}: the store is not encrypted; leave out --key-file")
        if key is not None and encryption != _key_check(key, self.id, encryption):
            raise UsageError(f"{self.name}: wrong key (the store was encrypted with another one)")
        self.codec = Codec(key if encryption else None, info.get("compression") == "zstd")

    @property
    def name(self) -> str:
        return self.backend.name

    # -- blobs -----------------------------------------------------------------------------------
    @staticmethod
    def blob_key(digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        if (
            algo != "sha256"
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise StoreError(f"not a sha256 digest: {digest!r}")
        return f"blobs/{algo}/{hexpart[:2]}/{hexpart}"

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        stored = self.backend.size(self.blob_key(digest))
        if stored is None:
            return False
        return size is None or self.codec.framed or stored == size

    def put_blob(self, digest: str, stream: IO[bytes], size: int | None = None) -> int:
        """Store the bytes of ``stream`` as ``digest`` (checked before it becomes visible);
        returns the bytes read (0 when the store had the blob already)."""
        key = self.blob_key(digest)
        if self.has_blob(digest, size):
            return 0
        h = hashlib.sha256()
        n = 0

        def plain() -> Iterator[bytes]:
            nonlocal n
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                n += len(chunk)
                yield chunk

        def check() -> None:
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise StoreError(f"blob {digest}: the bytes read hash to {got}")
            if size is not None and n != size:
                raise StoreError(f"blob {digest}: {n} bytes read, {size} expected")

        self.backend.write(key, self.codec.encode(plain()), check)
        return n

    def put_bytes(self, data: bytes) -> str:
        import io

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.put_blob(digest, io.BytesIO(data), len(data))
        return digest

    def open_blob(self, digest: str) -> IO[bytes]:
        try:
            f = self.backend.open(self.blob_key(digest))
        except KeyError:
            raise StoreError(f"blob {digest} is missing from the store {self.name}") from None
        return self.codec.decode(f, f"blob {digest}")

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def blobs(self) -> Iterator[tuple[str, int]]:
        """(digest, stored size) of every blob."""
        for key, size in self.backend.list("blobs/sha256/"):
            yield "sha256:" + key.rsplit("/", 1)[-1], size

    def blob_age(self, digest: str) -> float:
        return time.time() - self.backend.mtime(self.blob_key(digest))

    def remove_blob(self, digest: str) -> None:
        self.backend.delete(self.blob_key(digest))

    # -- snapshots -------------------------------------------------------------------------------
    def write_snapshot(self, record: dict[str, Any]) -> None:
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        self.backend.write(f"snapshots/{record['id']}.json", self.codec.encode(iter([data])))

    def snapshots(self) -> list[dict[str, Any]]:
        out = []
        for key, _size in self.backend.list("snapshots/"):
            if not key.endswith(".json"):
                continue
            try:
                with self.codec.decode(self.backend.open(key), f"snapshot {key}") as g:
                    out.append(json.loads(g.read()))
            except (KeyError, OSError, ValueError) as e:
                raise StoreError(f"snapshot record {key} is unreadable: {e}") from None
        return sorted(out, key=lambda r: (r.get("time", ""), r.get("id", "")))

    def snapshot(self, ref: str) -> dict[str, Any]:
        """A snapshot by id, unique id prefix, or ``latest``."""
        snaps = self.snapshots()
        if not snaps:
            raise UsageError(f"{self.name}: no snapshots yet")
        if ref == "latest":
            return snaps[-1]
        found = [s for s in snaps if str(s.get("id", "")).startswith(ref)]
        if len(found) != 1:
            raise UsageError(
                f"snapshot {ref!r}: " + ("no such snapshot" if not found else "ambiguous id prefix")
            )
        return found[0]

    def remove_snapshot(self, snapshot_id: str) -> None:
        self.backend.delete(f"snapshots/{snapshot_id}.json")

    # -- writer lock -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()})
        for _attempt in range(2):
            if self.backend.create_exclusive("lock", me.encode()):
                break
            holder = self._holder()
            if self._stale(holder):
                self.backend.delete("lock")
                continue
            who = (
                f"pid {holder.get('pid')} on {holder.get('host')}"
                if holder
                else "an unknown writer"
            )
            raise StoreLocked(
                f"{self.name} is locked by {who} (another backup is running; a lock left by a "
                "dead process on this host is taken over by itself)"
            )
        else:  # pragma: no cover - lost the race to another writer twice
            raise StoreLocked(f"{self.name} is locked")
        try:
            self.backend.sweep()
            yield
        finally:
            self.backend.delete("lock")

    def _holder(self) -> dict[str, Any]:
        try:
            with self.backend.open("lock") as f:
                info = json.loads(f.read())
            return info if isinstance(info, dict) else {}
        except (KeyError, OSError, ValueError):
            return {}

    @staticmethod
    def _stale(info: dict[str, Any]) -> bool:
        if not info:
            return True  # a lock cut short by a crash
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError):
                return False
            return False
        return time.time() - float(info.get("time", 0)) > STALE_AFTER


class LocalStore(Store):
    """A store in a local directory (``root``; ``blob_path`` names a blob's file)."""

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = False,
        key: bytes | None = None,
        compress: bool = False,
    ) -> None:
        if str(path).startswith("s3://"):
            raise UsageError(f"{path}: a local store is a directory")
        super().__init__(path, create=create, key=key, compress=compress)
        self.root = Path(path)

    def blob_path(self, digest: str) -> Path:
        return self.root / self.blob_key(digest)


def open_store(
    location: str | Path,
    *,
    create: bool = False,
    key: bytes | None = None,
    compress: bool = False,
) -> Store:
    """The store at ``location``: ``s3://BUCKET[/PREFIX]``, ``docker://REGISTRY/REPOSITORY`` or
    a directory."""
    if str(location).startswith(("s3://", "docker://")):
        return Store(location, create=create, key=key, compress=compress)
    return LocalStore(location, create=create, key=key, compress=compress)


def _key_check(key: bytes, store_id: str, known: dict[str, str] | None = None) -> dict[str, str]:
    """A value that proves a key is the store's: the store id sealed under the key (with the
    nonce of ``known`` when checking)."""
    from imagewise.backup.codec import aesgcm

    aead = aesgcm(key)
    from cryptography.exceptions import InvalidTag

    if known is not None:
        try:
            nonce = bytes.fromhex(known["nonce"])
            aead.decrypt(nonce, bytes.fromhex(known["check"]), b"imagewise-store")
        except (InvalidTag, KeyError, ValueError):
            return {}
        return known
    nonce = secrets.token_bytes(12)
    return {
        "cipher": "AES-256-GCM-STREAM",
        "nonce": nonce.hex(),
        "check": aead.encrypt(nonce, store_id.encode(), b"imagewise-store").hex(),
    }
