"""The content digest value type."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from imagewise.errors import DigestMismatch, ImageFormatError
from imagewise.fileio import Reader, readinto
from imagewise.record import Record

if TYPE_CHECKING:
    import hashlib

_HEX_LEN = {"sha256": 64, "sha512": 128}
_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


class Digest(Record):
    """``algorithm:hex``; validates itself on construction."""

    __slots__ = ("algorithm", "hex")

    def __init__(self, algorithm: str, hex: str) -> None:
        want = _HEX_LEN.get(algorithm)
        if want is None:
            raise ImageFormatError(f"unsupported digest algorithm {algorithm!r}")
        if len(hex) != want or any(c not in "0123456789abcdef" for c in hex):
            raise ImageFormatError(f"malformed {algorithm} digest {hex!r}")
        self.algorithm = algorithm
        self.hex = hex

    @classmethod
    def parse(cls, text: str) -> Digest:
        m = _RE.match(text.strip()) if isinstance(text, str) else None
        if not m:
            raise ImageFormatError(f"malformed digest {text!r}")
        return cls(m.group(1), m.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, new_hash(algorithm, data, small=len(data) <= SMALL).hexdigest())

    def hasher(self) -> hashlib._Hash:
        import hashlib

        return hashlib.new(self.algorithm)

    def verify(self, data: bytes, where: str = "") -> None:
        actual = Digest.of(data, self.algorithm)
        if actual != self:
            raise DigestMismatch(str(self), str(actual), where)

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class DigestingReader(Reader):
    """Wraps a binary stream, hashing what is read; ``check()`` at EOF raises on mismatch."""

    def __init__(self, raw, expected: Digest | None, where: str = "", small: bool = False) -> None:  # type: ignore[no-untyped-def]
        self._raw = raw
        self._expected = expected
        # ``small``: a document, not a blob (see ``new_hash``)
        self._h = new_hash(expected.algorithm if expected else "sha256", small=small)
        self._where = where
        self.count = 0

    def read(self, n: int | None = -1) -> bytes:
        data: bytes = self._raw.read(n)
        if data:
            self._h.update(data)
            self.count += len(data)
        return data

    def readinto(self, b: Any) -> int:
        """Bytes read into ``b`` (at most its length; 0 at EOF), hashed in place."""
        view = memoryview(b).cast("B")
        n = readinto(self._raw, view)
        if n:
            self._h.update(view[:n])
            self.count += n
        return n

    def digest(self) -> Digest:
        return Digest(self._h.name, self._h.hexdigest())

    def check(self) -> Digest:
        got = self.digest()
        if self._expected is not None and got != self._expected:
            raise DigestMismatch(str(self._expected), str(got), self._where)
        return got

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close:
            close()


#: documents up to this size (manifests, configs) are hashed without ``hashlib`` (``new_hash``)
SMALL = 1 << 20


def new_hash(algorithm: str, data: bytes = b"", small: bool = False) -> Any:
    """A new hash object (``update``, ``hexdigest``, ``name``). With ``small``, for a document
    rather than a blob: CPython's own SHA-2 when ``hashlib`` is not loaded yet. Importing
    ``hashlib`` maps OpenSSL's libcrypto, 3.8 MB of a process's resident memory (a tenth of
    ``analyze``'s peak on a 66,000-file image, which hashes only its config); OpenSSL is the
    faster hash of large blobs, so those always go through ``hashlib``."""
    if small and "hashlib" not in sys.modules:
        builtin = _builtin(algorithm)
        if builtin is not None:
            return builtin(data)
    import hashlib

    return hashlib.new(algorithm, data)


def _builtin(algorithm: str) -> Any:
    """CPython's own SHA-2 constructor for ``algorithm`` (``None`` where there is none)."""
    import importlib

    for module, name in (("_sha2", algorithm), ("_" + algorithm, algorithm)):  # 3.12+, 3.11
        try:
            return getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
    return None
