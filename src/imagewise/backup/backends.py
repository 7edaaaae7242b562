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
from typing import IO, Any

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


def backend_for(location: str | Path) -> LocalBackend | S3Backend:
    text = str(location)
    if text.startswith("s3://"):
        return S3Backend(text)
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
