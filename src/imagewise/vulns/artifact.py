"""``imagewise db push`` / ``db pull``: the database as an OCI artifact in a registry.

A team mirrors the OSV data once (``db update`` then ``db push``) into a registry of its own;
every CI job then pulls it from there (``db pull``), which needs no access to the OSV bucket.

The artifact is an OCI image manifest (OCI 1.1 artifact guidance) with ``artifactType``
:data:`ARTIFACT_TYPE`, the empty config (``application/vnd.oci.empty.v1+json``, ``{}``) and one
layer: a consistent snapshot of the SQLite file (taken with SQLite's backup API, so a running
import does not tear it), zstd-compressed, media type :data:`LAYER_TYPE`. Annotations say how
many records it holds and how new they are. ``db pull`` verifies the blob's digest, checks the
file is a vulnerability database of this schema, and swaps it in as one transaction (readers
see the old database or the new one).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from imagewise.errors import VulnDBError
from imagewise.progress import NULL, Reporter
from imagewise.record import Record

ARTIFACT_TYPE = "application/vnd.imagewise.osv-db.v1"
LAYER_TYPE = "application/vnd.imagewise.osv-db.v1.sqlite+zstd"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
_ANN = "io.imagewise.osv-db."
#: a pulled database may expand at most this many times its compressed size (and at least to
#: 256 MiB): an honest SQLite file compresses 3 to 6 times
_MAX_RATIO = 50


class Transfer(Record):
    """What a push or pull did: the reference, the manifest digest, records and bytes moved."""

    __slots__ = ("reference", "digest", "records", "newest", "size", "unchanged")  # noqa: RUF023

    def __init__(
        self,
        reference: str,
        digest: str,
        records: int,
        newest: str,
        size: int,
        unchanged: bool = False,
    ) -> None:
        self.reference = reference
        self.digest = digest
        self.records = records
        self.newest = newest
        self.size = size
        self.unchanged = unchanged


def _ref(target: str) -> Any:
    from imagewise.reference import ImageReference

    text = target.removeprefix("docker://")
    if text.startswith(("oci:", "oci-archive:", "docker-archive:")):
        raise VulnDBError(f"{target}: the database goes to a registry: docker://REGISTRY/REPO:TAG")
    ref = ImageReference.parse(text)
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")
    return ref


def _client(ref: Any, insecure: bool) -> Any:
    from imagewise.sources.registry import client_for

    return client_for(ref, insecure)


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            size += len(chunk)
    return f"sha256:{h.hexdigest()}", size


def push(
    db_path: Path, target: str, *, insecure: bool = False, reporter: Reporter = NULL
) -> Transfer:
    """Push a snapshot of ``db_path`` to ``docker://REGISTRY/REPO:TAG``."""
    import zstandard

    from imagewise.oci import media
    from imagewise.oci.digest import Digest
    from imagewise.oci.model import Descriptor
    from imagewise.vulns.store import SCHEMA_VERSION, VulnDB

    ref = _ref(target)
    if ref.tag is None:
        raise VulnDBError(f"{target}: push needs a tag (docker://REGISTRY/REPO:TAG)")
    tmp = Path(tempfile.mkdtemp(prefix="imagewise-db-push-"))
    try:
        snap = tmp / "osv.sqlite"
        with VulnDB(Path(db_path)) as db:
            status = db.status()
            if status.records == 0:
                raise VulnDBError(f"{db_path}: the database is empty; nothing to push")
            dst = sqlite3.connect(snap, isolation_level=None)
            try:
                assert db.conn is not None
                db.conn.backup(dst)  # a consistent snapshot, even while an import runs
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
        packed = tmp / "osv.sqlite.zst"
        with snap.open("rb") as src, packed.open("wb") as out:
            zstandard.ZstdCompressor(level=10, threads=-1).copy_stream(src, out)
        digest, size = _sha256_file(packed)
        layer = Descriptor(
            LAYER_TYPE,
            Digest.parse(digest),
            size,
            {"org.opencontainers.image.title": "osv.sqlite.zst"},
        )
        config = Descriptor(EMPTY_TYPE, Digest.of(EMPTY), len(EMPTY))
        client = _client(ref, insecure)
        repo = ref.repository
        if not client.has_blob(repo, config.digest):
            import io

            client.upload_blob(repo, config, io.BytesIO(EMPTY))
        if not client.has_blob(repo, layer.digest):
            key = f"push {ref}"
            reporter.start(key, f"pushing {ref}", size)
            with packed.open("rb") as f:
                client.upload_blob(repo, layer, _Counting(f, reporter, key))
            reporter.done(key)
        manifest = {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {**config.to_json(), "data": "e30="},
            "layers": [layer.to_json()],
            "annotations": {
                "org.opencontainers.image.created": datetime.now(UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                _ANN + "schema": SCHEMA_VERSION,
                _ANN + "records": str(status.records),
                _ANN + "newest-modified": status.newest_modified,
                _ANN + "ecosystems": ",".join(status.per_ecosystem),
            },
        }
        raw = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        pushed = client.put_manifest(repo, ref.tag, raw, media.OCI_MANIFEST)
        return Transfer(
            f"docker://{ref}", str(pushed), status.records, status.newest_modified, size
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Counting:
    """A file read for upload that reports progress (seekable, so retries can rewind)."""

    def __init__(self, f: IO[bytes], reporter: Reporter, key: str) -> None:
        self.f, self.reporter, self.key = f, reporter, key

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.reporter.advance(self.key, len(data))
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def tell(self) -> int:
        return self.f.tell()

    def seekable(self) -> bool:
        return True


def _layer(raw: bytes, media_type: str, what: str) -> Any:
    from imagewise.oci import media
    from imagewise.oci.model import Descriptor

    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise VulnDBError(f"{what}: the manifest is not JSON") from e
    kind = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
    if media_type not in (media.OCI_MANIFEST, "") or kind != ARTIFACT_TYPE:
        raise VulnDBError(
            f"{what} is not an imagewise vulnerability database (artifact type "
            f"{kind or media_type or 'none'}, expected {ARTIFACT_TYPE})"
        )
    layers = [
        Descriptor.from_json(d)
        for d in doc.get("layers") or ()
        if isinstance(d, dict) and d.get("mediaType") == LAYER_TYPE
    ]
    if len(layers) != 1:
        raise VulnDBError(f"{what}: expected one {LAYER_TYPE} layer, found {len(layers)}")
    return layers[0]


def pull(
    target: str, db_path: Path, *, insecure: bool = False, reporter: Reporter = NULL
) -> Transfer:
    """Pull the database at ``docker://REGISTRY/REPO:TAG`` into ``db_path`` (swapped in whole).
    Nothing is downloaded when ``db_path`` already holds that very artifact."""
    from imagewise.oci import media
    from imagewise.vulns.store import VulnDB

    ref = _ref(target)
    client = _client(ref, insecure)
    what = f"docker://{ref}"
    fetched = client.get_manifest(
        ref.repository, ref.identifier, accept=f"{media.OCI_MANIFEST}, {media.OCI_INDEX}"
    )
    layer = _layer(fetched.raw, fetched.media_type, what)
    manifest_digest = str(fetched.digest)
    db_path = Path(db_path)
    if db_path.is_file():
        try:
            with VulnDB(db_path) as db:
                assert db.conn is not None
                row = db.conn.execute("SELECT value FROM meta WHERE key='pulled'").fetchone()
                if row and row[0] == manifest_digest:
                    st = db.status()
                    return Transfer(
                        what, manifest_digest, st.records, st.newest_modified, 0, unchanged=True
                    )
        except VulnDBError:
            pass  # a damaged local copy: replace it
    parent = db_path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VulnDBError(f"{parent}: cannot create the directory: {e.strerror or e}") from e
    tmp = Path(tempfile.mkdtemp(prefix=".osv-pull-", dir=parent))
    try:
        snap = tmp / "osv.sqlite"
        _download(client, ref.repository, layer, snap, what, reporter)
        try:
            with VulnDB(snap) as check:
                assert check.conn is not None
                ok = check.conn.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise VulnDBError(f"{what}: the database in the artifact is damaged ({ok})")
                status = check.status()
        except VulnDBError as e:
            raise VulnDBError(f"{what}: the artifact does not hold a usable database: {e}") from e
        conn = sqlite3.connect(snap, isolation_level=None)
        try:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('pulled', ?)", (manifest_digest,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('pulled_from', ?)", (what,))
        finally:
            conn.close()
        _swap_in(snap, db_path)
        return Transfer(what, manifest_digest, status.records, status.newest_modified, layer.size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(
    client: Any, repo: str, layer: Any, dest: Path, what: str, reporter: Reporter
) -> None:
    """The layer blob to a file (its digest and size verified at the end of the stream), then
    decompressed to ``dest`` with a cap on the expansion."""
    import zstandard

    from imagewise.units import format_size

    packed = dest.with_suffix(".zst")
    key = f"pull {what}"
    reporter.start(key, f"pulling {what}", layer.size)
    try:
        with client.open_blob(repo, layer) as blob, packed.open("wb") as out:
            while chunk := blob.read(1024 * 1024):
                out.write(chunk)
                reporter.advance(key, len(chunk))
    except OSError as e:
        raise VulnDBError(f"cannot write {packed}: {e.strerror or e}") from e
    finally:
        reporter.done(key)
    limit = max(_MAX_RATIO * layer.size, 256 * 1024 * 1024)
    written = 0
    try:
        with packed.open("rb") as src, dest.open("wb") as out:
            reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
            while chunk := reader.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise VulnDBError(
                        f"{what}: the database expands past {format_size(limit)} "
                        f"({_MAX_RATIO} times its compressed size); refusing it"
                    )
                out.write(chunk)
    except zstandard.ZstdError as e:
        raise VulnDBError(f"{what}: the artifact's layer is not zstd-compressed data ({e})") from e
    except OSError as e:
        raise VulnDBError(f"cannot write {dest}: {e.strerror or e}") from e
    finally:
        packed.unlink(missing_ok=True)


def _swap_in(snap: Path, db_path: Path) -> None:
    """Replace ``db_path`` by ``snap``: a rename when there is no database yet, else SQLite's
    backup API in one write transaction (waiting for another writer), so readers holding the
    old database keep a consistent view and new readers see the new one."""
    import os

    from imagewise.vulns.store import VulnDB

    if not db_path.exists():
        for suffix in ("-wal", "-shm"):  # leftovers of a deleted database must not meet the new one
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        os.replace(snap, db_path)
        with VulnDB(db_path, create=True):
            pass  # WAL mode from now on
        return
    src = sqlite3.connect(f"{snap.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with VulnDB(db_path, create=True) as db:
            assert db.conn is not None
            try:
                src.backup(db.conn)
            except sqlite3.Error as e:
                from imagewise.vulns.store import _sqlite_message

                raise VulnDBError(_sqlite_message(db_path, e, True)) from e
    finally:
        src.close()
