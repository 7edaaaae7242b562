"""Where a backup store keeps its objects: a local directory or S3-compatible object storage.

A backend stores named objects (``imagewise-store.json``, ``blobs/sha256/ab/<hex>``,
``snapshots/<id>.json``, ``lock``) and makes each visible only when it is complete:

* :class:`LocalBackend` writes a temporary file in the same directory, fsyncs it, renames it
  into place and fsyncs the directory;
* :class:`S3Backend` spools the object to a temporary file and uploads it with one PUT (or a
  multipart upload for big ones): S3 shows an object only once its upload completed. It uses
  ``boto3`` (``pip install imagewise[s3]``); the endpoint comes from ``AWS_ENDPOINT_URL`` (any
  S3-compatible server: MinIO, Ceph, moto) and the credentials from the usual AWS variables
  and files. The writer lock is a conditional PUT (``If-None-Match: *``).

``write`` takes a ``check`` called after the last byte and before the object becomes visible:
a blob whose bytes do not hash to its name is never stored.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from imagewise.errors import ImagewiseError, UsageError


class BackendError(ImagewiseError):
    exit_code = 2


class LocalBackend:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def exists(self) -> bool:
        return (self.root / "imagewise-store.json").is_file()

    def prepare(self) -> None:
        if self.root.exists() and any(self.root.iterdir()):
            raise UsageError(f"{self.root}: exists, is not empty and is not a backup store")
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "snapshots").mkdir(exist_ok=True)

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except OSError:
            return None

    def mtime(self, key: str) -> float:
        return self.path(key).stat().st_mtime

    def write(
        self, key: str, chunks: Iterator[bytes], check: Callable[[], None] = lambda: None
    ) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name[:24]}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as f:
                for data in chunks:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
            check()
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def open(self, key: str) -> IO[bytes]:
        try:
            return open(self.path(key), "rb")  # noqa: SIM115 - returned open
        except FileNotFoundError:
            raise KeyError(key) from None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith(".tmp-"):
                yield p.relative_to(self.root).as_posix(), p.stat().st_size

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
        fsync_dir(self.path(key).parent)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        try:
            fd = os.open(self.path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def sweep(self) -> None:
        """Remove the temporary files a killed writer left (only ever called under the lock)."""
        for tmp in self.root.glob("**/.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()


class S3Backend:
    """``s3://BUCKET[/PREFIX]`` through boto3 (see the module docstring)."""

    MULTIPART = 64 << 20

    def __init__(self, url: str) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise UsageError(
                f"{url}: an S3 store needs boto3 (pip install 'imagewise[s3]')"
            ) from None
        rest = url.removeprefix("s3://")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise UsageError(f"{url}: expected s3://BUCKET[/PREFIX]")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.name = url
        self.client: Any = boto3.client(
            "s3", config=Config(retries={"max_attempts": 5, "mode": "standard"})
        )
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(
            multipart_threshold=self.MULTIPART, multipart_chunksize=self.MULTIPART
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(what) from None
            raise BackendError(f"{self.name}: {what}: {code or e}") from None
        except BotoCoreError as e:
            raise BackendError(f"{self.name}: {what}: {e}") from None

    def exists(self) -> bool:
        return self.size("imagewise-store.json") is not None

    def prepare(self) -> None:
        try:
            self._call("bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        except KeyError:
            raise UsageError(f"{self.name}: no such bucket {self.bucket}") from None
        if next(self.list(""), None) is not None:
            raise UsageError(f"{self.name}: not empty and not a backup store")

    def size(self, key: str) -> int | None:
        try:
            head = self._call(
                key, lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            )
        except KeyError:
            return None
        return int(head["ContentLength"])

    def mtime(self, key: str) -> float:
        head = self._call(
            key, lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        )
        return float(head["LastModified"].timestamp())

    def write(
        self, key: str, chunks: Iterator[bytes], check: Callable[[], None] = lambda: None
    ) -> None:
        with tempfile.TemporaryFile() as spool:
            for data in chunks:
                spool.write(data)
            check()
            spool.seek(0)
            self._call(
                key,
                lambda: self.client.upload_fileobj(
                    spool, self.bucket, self._key(key), Config=self.transfer
                ),
            )

    def open(self, key: str) -> IO[bytes]:
        got = self._call(
            key, lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        )
        return got["Body"]  # type: ignore[no-any-return]

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._call(
            "list", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)))
        ):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix) :], int(obj["Size"])

    def delete(self, key: str) -> None:
        self._call(key, lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                return False
            raise BackendError(f"{self.name}: lock: {e}") from None
        return True

    def sweep(self) -> None:
        pass  # an unfinished upload is never visible; nothing to remove


class RegistryBackend:
    """A store in one repository of an OCI registry: ``docker://REGISTRY/REPOSITORY``.

    Blobs are the registry's own blobs (pushed once, digest-checked by the registry); each
    snapshot record is an OCI artifact (artifactType ``application/vnd.imagewise.snapshot.v1
    +json``: the record as its config, every blob the snapshot needs as its layers, tagged
    ``snapshot-<id>``), so the registry's garbage collector keeps exactly what the snapshots
    need: forgetting a snapshot and running the registry's GC is the prune. Blobs are kept as
    they are (no encryption or compression: the registry names blobs by their bytes). The
    writer lock is a tag (``imagewise-lock``), set after checking it is absent: registries have
    no conditional PUT, so two writers starting in the same instant could both take it.
    """

    STORE_TYPE = "application/vnd.imagewise.store.v1+json"
    SNAPSHOT_TYPE = "application/vnd.imagewise.snapshot.v1+json"
    LOCK_TYPE = "application/vnd.imagewise.lock.v1+json"

    def __init__(self, url: str, insecure: bool = False) -> None:
        from imagewise.registry.client import RegistryClient

        text = url.removeprefix("docker://").rstrip("/")
        host, _, repo = text.partition("/")
        if not repo or ":" in repo or "@" in repo:
            raise UsageError(f"{url}: expected docker://REGISTRY/REPOSITORY (no tag)")
        self.name = f"docker://{host}/{repo}"
        self.repo = repo
        self.client = RegistryClient.get(host, insecure=insecure)

    # objects named by key -> where they live
    def _tag(self, key: str) -> str | None:
        if key == "imagewise-store.json":
            return "imagewise-store"
        if key == "lock":
            return "imagewise-lock"
        if key.startswith("snapshots/") and key.endswith(".json"):
            return "snapshot-" + key[len("snapshots/") : -len(".json")]
        return None

    @staticmethod
    def _digest(key: str) -> Any:
        from imagewise.oci.digest import Digest

        return Digest.parse("sha256:" + key.rsplit("/", 1)[-1])

    def exists(self) -> bool:
        return self.size("imagewise-store.json") is not None

    def prepare(self) -> None:
        from imagewise.errors import NotFound

        try:
            tags = self.client.list_tags(self.repo)
        except NotFound:
            tags = []
        if tags:
            raise UsageError(f"{self.name}: the repository has tags and is not a backup store")

    def size(self, key: str) -> int | None:
        from imagewise.errors import NotFound

        tag = self._tag(key)
        if tag is None:
            return self.client.blob_size(self.repo, self._digest(key))
        try:
            return int(self.client.head_manifest(self.repo, tag).size)
        except NotFound:
            return None

    def mtime(self, key: str) -> float:
        return 0.0  # the registry keeps no time; its GC decides what goes

    def _upload(self, data_or_file: Any, digest: Any, size: int, media_type: str) -> Any:
        from imagewise.oci.model import Descriptor

        desc = Descriptor(media_type, digest, size)
        if not self.client.has_blob(self.repo, digest):
            self.client.upload_blob(self.repo, desc, data_or_file)
        return desc

    def write(
        self, key: str, chunks: Iterator[bytes], check: Callable[[], None] = lambda: None
    ) -> None:
        import hashlib
        import io
        import json

        from imagewise.oci.digest import Digest

        tag = self._tag(key)
        if tag is None:  # a blob: its bytes under their own digest
            with tempfile.TemporaryFile() as spool:
                n = 0
                for data in chunks:
                    spool.write(data)
                    n += len(data)
                check()
                spool.seek(0)
                self._upload(spool, self._digest(key), n, "application/octet-stream")
            return
        data = b"".join(chunks)
        check()
        kind = (
            self.SNAPSHOT_TYPE
            if tag.startswith("snapshot-")
            else (self.LOCK_TYPE if tag == "imagewise-lock" else self.STORE_TYPE)
        )
        config = self._upload(
            io.BytesIO(data), Digest("sha256", hashlib.sha256(data).hexdigest()), len(data), kind
        )
        layers: list[dict[str, Any]] = []
        if kind == self.SNAPSHOT_TYPE:
            layers = [
                {"mediaType": "application/octet-stream", "digest": d, "size": size}
                for d, size in sorted(_needed_blobs(json.loads(data), self).items())
            ]
        if not layers:
            empty = self._upload(
                io.BytesIO(b"{}"),
                Digest("sha256", hashlib.sha256(b"{}").hexdigest()),
                2,
                "application/vnd.oci.empty.v1+json",
            )
            layers = [{"mediaType": empty.media_type, "digest": str(empty.digest), "size": 2}]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": kind,
            "config": {"mediaType": kind, "digest": str(config.digest), "size": len(data)},
            "layers": layers,
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        self.client.put_manifest(self.repo, tag, raw, "application/vnd.oci.image.manifest.v1+json")

    def open(self, key: str) -> IO[bytes]:
        import json

        from imagewise.errors import NotFound
        from imagewise.oci.model import Descriptor

        tag = self._tag(key)
        try:
            if tag is None:
                digest = self._digest(key)
                size = self.client.blob_size(self.repo, digest)
                if size is None:
                    raise KeyError(key)
                return cast(
                    IO[bytes],
                    self.client.open_blob(
                        self.repo, Descriptor("application/octet-stream", digest, size)
                    ),
                )
            doc = json.loads(self.client.get_manifest(self.repo, tag).raw)
            config = Descriptor.from_json(doc["config"])
            return cast(IO[bytes], self.client.open_blob(self.repo, config))
        except NotFound:
            raise KeyError(key) from None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        import json

        from imagewise.errors import NotFound

        try:
            tags = self.client.list_tags(self.repo)
        except NotFound:
            return
        snapshots = sorted(t for t in tags if t.startswith("snapshot-"))
        if prefix.startswith("snapshots"):
            for t in snapshots:
                yield f"snapshots/{t[len('snapshot-') :]}.json", 0
            return
        if prefix.startswith("blobs"):
            seen: dict[str, int] = {}
            for t in snapshots:
                doc = json.loads(self.client.get_manifest(self.repo, t).raw)
                for layer in doc.get("layers", []):
                    if layer.get("mediaType") == "application/octet-stream":
                        seen[layer["digest"]] = int(layer["size"])
            for d, size in sorted(seen.items()):
                hexpart = d.split(":", 1)[1]
                yield f"blobs/sha256/{hexpart[:2]}/{hexpart}", size

    def delete(self, key: str) -> None:
        from imagewise.errors import NotFound

        tag = self._tag(key)
        try:
            if tag is None:
                self.client.delete_blob(self.repo, self._digest(key))
            else:
                digest = self.client.head_manifest(self.repo, tag).digest
                self.client.delete_manifest(self.repo, str(digest))
        except NotFound:
            pass

    def create_exclusive(self, key: str, data: bytes) -> bool:
        if self.size(key) is not None:
            return False
        self.write(key, iter([data]))
        return True

    def sweep(self) -> None:
        pass


def _needed_blobs(record: dict[str, Any], backend: RegistryBackend) -> dict[str, int]:
    """Every blob a snapshot record names, with its size (asked from the registry when the
    record does not say)."""
    out: dict[str, int] = {}
    for digest, info in record.get("manifests", {}).items():
        out[digest] = int(info.get("size", 0))
        for b, size in zip(info.get("blobs", []), info.get("blob_sizes", []), strict=False):
            out[b] = int(size)
    for f in record.get("config_files", {}).values():
        out[f["digest"]] = int(f["size"])
    for tree in record.get("data", []):
        for f in tree["files"].values():
            for c in f.get("chunks", []):
                out.setdefault(c, -1)
    for d, size in list(out.items()):
        if size <= 0:
            from imagewise.oci.digest import Digest

            out[d] = backend.client.blob_size(backend.repo, Digest.parse(d)) or 0
    return out


def backend_for(
    location: str | Path, insecure: bool = False
) -> LocalBackend | S3Backend | RegistryBackend:
    text = str(location)
    if text.startswith("s3://"):
        return S3Backend(text)
    if text.startswith("docker://"):
        return RegistryBackend(text, insecure)
    return LocalBackend(Path(text))


def fsync_dir(path: Path) -> None:
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
