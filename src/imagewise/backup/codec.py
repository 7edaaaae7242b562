"""How a store keeps bytes: as they are, or framed (compressed and/or encrypted).

A framed object is ``IWB1`` + one flags byte (1: zstd-compressed, 2: encrypted) + the payload.
Compression applies to small blobs that are not compressed already (manifests, configs, config
files; layers are gzip or zstd and stay as they are). Encryption is AES-256-GCM in the STREAM
construction: the payload is cut in 1 MiB chunks, each sealed with a nonce of a random 7-byte
prefix (written after the flags), a 4-byte chunk counter and a last-chunk byte, so a reordered,
dropped or truncated chunk fails authentication. The key is 32 bytes read from a key file
(64 hex characters; ``imagewise backup keygen FILE`` writes one).

Blob names stay the digests of the plaintext (a reader learns which digests a store holds, as
from a registry, but none of their bytes).
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from imagewise.errors import ImagewiseError, UsageError

MAGIC = b"IWB1"
COMPRESSED, ENCRYPTED = 1, 2
CHUNK = 1 << 20
TAG = 16
SMALL = 4 << 20  # blobs up to this size are candidates for compression
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # gzip, zstd


class DecryptError(ImagewiseError):
    exit_code = 2


def read_key(path: str | Path) -> bytes:
    p = Path(path)
    try:
        text = p.read_text("ascii").strip()
    except FileNotFoundError:
        raise UsageError(
            f"key file not found: {p} (make one with `imagewise backup keygen {p}`)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read key file {p}: {e}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"key file {p}: expected 64 hex characters") from None
    if len(key) != 32:
        raise UsageError(
            f"key file {p}: expected 64 hex characters (32 bytes), got {len(key)} bytes"
        )
    return key


def write_key(path: str | Path) -> None:
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


class Codec:
    """Frames blobs for a store: ``key`` (encrypt) and ``compress``; neither: bytes as they are."""

    def __init__(self, key: bytes | None = None, compress: bool = False) -> None:
        self.key, self.compress = key, compress

    @property
    def framed(self) -> bool:
        return self.key is not None or self.compress

    # -- writing -----------------------------------------------------------------------------------
    def encode(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The stored bytes of the plaintext ``chunks``."""
        if not self.framed:
            yield from chunks
            return
        head = bytearray()
        rest = iter(chunks)
        for chunk in rest:
            head += chunk
            if len(head) > SMALL:
                break
        flags = 0
        payload: Iterator[bytes]
        if (
            self.compress
            and len(head) <= SMALL
            and not bytes(head[:4]).startswith(_COMPRESSED_MAGICS)
        ):
            import zstandard

            payload = iter([zstandard.ZstdCompressor(level=9).compress(bytes(head))])
            flags |= COMPRESSED
        else:
            payload = _chain(bytes(head), rest)
        if self.key is not None:
            flags |= ENCRYPTED
            prefix = secrets.token_bytes(7)
            yield MAGIC + bytes([flags]) + prefix
            yield from _seal(self.key, prefix, _rechunk(payload, CHUNK))
        else:
            yield MAGIC + bytes([flags])
            yield from payload

    # -- reading -----------------------------------------------------------------------------------
    def decode(self, f: IO[bytes], name: str) -> IO[bytes]:
        """A reader of the plaintext of a stored object ``f``."""
        if not self.framed:
            return f
        head = f.read(5)
        if len(head) < 5 or head[:4] != MAGIC:
            f.close()
            raise DecryptError(f"{name}: not a framed object of this store")
        flags = head[4]
        if flags & ENCRYPTED:
            if self.key is None:
                f.close()
                raise UsageError(f"{name}: the store is encrypted; give --key-file")
            prefix = f.read(7)
            stream: IO[bytes] = cast(
                IO[bytes], io.BufferedReader(_Opened(f, self.key, prefix, name), CHUNK)
            )
        else:
            stream = f
        if flags & COMPRESSED:
            import zstandard

            with stream:
                data = stream.read()
            try:
                return io.BytesIO(
                    zstandard.ZstdDecompressor().decompress(data, max_output_size=SMALL + 1)
                )
            except zstandard.ZstdError as e:
                raise DecryptError(f"{name}: damaged compressed object ({e})") from None
        return stream


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _rechunk(chunks: Iterator[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """(chunk of ``size`` bytes, is it the last one)."""
    buf = bytearray()
    pending: bytes | None = None
    for c in chunks:
        buf += c
        while len(buf) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buf[:size])
            del buf[:size]
    if buf:
        if pending is not None:
            yield pending, False
        pending = bytes(buf)
    yield (pending or b""), True


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def aesgcm(key: bytes) -> Any:
    """AES-GCM from ``cryptography`` (the backup extra)."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise UsageError(
            "encrypted stores need cryptography: pip install 'imagewise[backup]'"
        ) from None
    return AESGCM(key)


def _seal(key: bytes, prefix: bytes, chunks: Iterator[tuple[bytes, bool]]) -> Iterator[bytes]:
    aead = aesgcm(key)
    for i, (chunk, last) in enumerate(chunks):
        yield aead.encrypt(_nonce(prefix, i, last), chunk, None)


class _Opened(io.RawIOBase):
    """Decrypts the STREAM chunks of ``f`` as they are read."""

    def __init__(self, f: IO[bytes], key: bytes, prefix: bytes, name: str) -> None:
        self.f, self.aead, self.prefix, self.name = f, aesgcm(key), prefix, name
        self.counter = 0
        self.buf = b""
        self.done = False
        self.next = f.read(CHUNK + TAG)

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        from cryptography.exceptions import InvalidTag

        sealed = self.next
        self.next = self.f.read(CHUNK + TAG)
        last = not self.next
        try:
            self.buf += self.aead.decrypt(_nonce(self.prefix, self.counter, last), sealed, None)
        except InvalidTag:
            raise DecryptError(
                f"{self.name}: does not decrypt (a wrong key, or the object is damaged or cut)"
            ) from None
        self.counter += 1
        self.done = last

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while not self.buf and not self.done:
            self._fill()
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def close(self) -> None:
        self.f.close()
        super().close()
