"""The backup store: a content-addressed directory of blobs and small JSON snapshot records.

Layout (``STORE`` is a directory, created by the first backup)::

    STORE/imagewise-store.json      {"version": 1, "id": ...}
    STORE/blobs/sha256/ab/<hex>     every blob once (manifests byte-exact, configs, layers, files)
    STORE/snapshots/<id>.json       one record per snapshot
    STORE/lock                      held by the one writer (pid, host, time)

Crash safety: a blob or record is written under a temporary name in the same directory,
flushed to disk (fsync), renamed into place, and the directory fsynced: it is visible only when
complete, so a writer killed at any moment leaves nothing half-written under a real name (only
``.tmp-*`` files, removed by the next writer). A blob is named by the digest of its bytes and
written only after those bytes were hashed, so a present blob is a correct blob unless the disk
changed it (``backup verify --read-data`` finds that).

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

from imagewise.backup.codec import Codec
from imagewise.errors import ImagewiseError, UsageError

STALE_AFTER = 6 * 3600
_CHUNK = 1 << 20


class StoreError(ImagewiseError):
    exit_code = 2


class StoreLocked(StoreError):
    """Another writer holds the store."""


class LocalStore:
    """A backup store in a local directory (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = False,
        key: bytes | None = None,
        compress: bool = False,
    ) -> None:
        """Open the store at ``path`` (``create``: make it when missing, encrypted with ``key``
        and compressing small blobs with ``compress``; an existing store keeps its own
        settings, and needs ``key`` when it is encrypted)."""
        self.root = Path(path)
        marker = self.root / "imagewise-store.json"
        if not marker.is_file():
            if not create:
                raise UsageError(
                    f"{self.root}: not an imagewise backup store (no imagewise-store.json)"
                )
            if self.root.exists() and any(self.root.iterdir()):
                raise UsageError(f"{self.root}: exists, is not empty and is not a backup store")
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            (self.root / "snapshots").mkdir(exist_ok=True)
            store_id = secrets.token_hex(8)
            info: dict[str, Any] = {
                "version": 1,
                "id": store_id,
                "compression": "zstd" if compress else None,
            }
            info["encryption"] = _key_check(key, store_id) if key is not None else None
            self._write_atomic(marker, json.dumps(info).encode())
        try:
            info = json.loads(marker.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise StoreError(f"{marker}: unreadable ({e})") from None
        if info.get("version") != 1:
            raise StoreError(f"{self.root}: store version {info.get('version')!r}, expected 1")
        self.id = str(info.get("id", ""))
        encryption = info.get("encryption")
        if encryption and key is None:
            raise UsageError(f"{self.root}: the store is encrypted; give --key-file")
        if key is not None and not encryption:
            raise UsageError(f"{self.root}: the store is not encrypted; leave out --key-file")
        if key is not None and encryption != _key_check(key, self.id, encryption):
            raise UsageError(f"{self.root}: wrong key (the store was encrypted with another one)")
        self.codec = Codec(key if encryption else None, info.get("compression") == "zstd")

    @property
    def name(self) -> str:
        return str(self.root)

    # -- blobs -----------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if (
            algo != "sha256"
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise StoreError(f"not a sha256 digest: {digest!r}")
        return self.root / "blobs" / algo / hexpart[:2] / hexpart

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(digest).stat()
        except OSError:
            return False
        return size is None or self.codec.framed or st.st_size == size

    def put_blob(self, digest: str, stream: IO[bytes], size: int | None = None) -> int:
        """Store the bytes of ``stream`` as ``digest`` (checked while written); returns the
        bytes written (0 when the store had the blob already)."""
        final = self.blob_path(digest)
        if self.has_blob(digest, size):
            return 0
        final.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        n = 0
        tmp = final.parent / f".tmp-{final.name[:12]}-{secrets.token_hex(4)}"

        def plain() -> Iterator[bytes]:
            nonlocal n
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                n += len(chunk)
                yield chunk

        try:
            with open(tmp, "wb") as f:
                for data in self.codec.encode(plain()):
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise StoreError(f"blob {digest}: the bytes read hash to {got}")
            if size is not None and n != size:
                raise StoreError(f"blob {digest}: {n} bytes read, {size} expected")
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return n

    def put_bytes(self, data: bytes) -> str:
        import io

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.put_blob(digest, io.BytesIO(data), len(data))
        return digest

    def open_blob(self, digest: str) -> IO[bytes]:
        try:
            f = open(self.blob_path(digest), "rb")  # noqa: SIM115 - returned open
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store {self.root}") from None
        return self.codec.decode(f, f"blob {digest}")

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def blobs(self) -> Iterator[tuple[str, int]]:
        root = self.root / "blobs" / "sha256"
        for sub in sorted(root.iterdir()) if root.is_dir() else ():
            for f in sorted(sub.iterdir()):
                if not f.name.startswith(".tmp-"):
                    yield f"sha256:{f.name}", f.stat().st_size

    # -- snapshots -------------------------------------------------------------------------------
    def write_snapshot(self, record: dict[str, Any]) -> None:
        path = self.root / "snapshots" / f"{record['id']}.json"
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        self._write_atomic(path, b"".join(self.codec.encode(iter([data]))))

    def snapshots(self) -> list[dict[str, Any]]:
        out = []
        for f in sorted((self.root / "snapshots").glob("*.json")):
            try:
                with self.codec.decode(open(f, "rb"), f"snapshot {f.name}") as g:  # noqa: SIM115
                    out.append(json.loads(g.read()))
            except (OSError, ValueError) as e:
                raise StoreError(f"snapshot record {f.name} is unreadable: {e}") from None
        return sorted(out, key=lambda r: (r.get("time", ""), r.get("id", "")))

    def snapshot(self, ref: str) -> dict[str, Any]:
        """A snapshot by id, unique id prefix, or ``latest``."""
        snaps = self.snapshots()
        if not snaps:
            raise UsageError(f"{self.root}: no snapshots yet")
        if ref == "latest":
            return snaps[-1]
        found = [s for s in snaps if str(s.get("id", "")).startswith(ref)]
        if len(found) != 1:
            raise UsageError(
                f"snapshot {ref!r}: " + ("no such snapshot" if not found else "ambiguous id prefix")
            )
        return found[0]

    # -- writer lock -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        path = self.root / "lock"
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        for _attempt in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale(path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                holder = self._holder(path)
                raise StoreLocked(
                    f"{self.root} is locked by {holder} (another backup is running; a lock left "
                    "by a dead process on this host is taken over by itself)"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            break
        else:  # pragma: no cover - lost the race to another writer twice
            raise StoreLocked(f"{self.root} is locked")
        try:
            self._sweep_tmp()
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _holder(self, path: Path) -> str:
        try:
            info = json.loads(path.read_text("utf-8"))
            return f"pid {info.get('pid')} on {info.get('host')}"
        except (OSError, ValueError):
            return "an unknown writer"

    def _stale(self, path: Path) -> bool:
        try:
            info = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return True  # a lock file cut short by a crash
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError):
                return False
            return False
        return time.time() - float(info.get("time", 0)) > STALE_AFTER

    def _sweep_tmp(self) -> None:
        for tmp in self.root.glob("blobs/sha256/*/.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        for tmp in self.root.glob("snapshots/.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.parent / f".tmp-{path.name}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _key_check(key: bytes, store_id: str, known: dict[str, str] | None = None) -> dict[str, str]:
    """A value that proves a key is the store's: the store id sealed under the key (with the
    nonce of ``known`` when checking)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(key)
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
