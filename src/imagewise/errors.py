"""One error tree for every seam. Only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class ImagewiseError(Exception):
    """Base of every error imagewise raises on purpose. ``str()`` is a one-line user message."""

    exit_code = 2


class UsageError(ImagewiseError):
    """Bad flags or arguments."""


class InvalidReference(ImagewiseError):
    """An image reference or transport string that does not parse."""


class ImageFormatError(ImagewiseError):
    """Bytes that are not a valid image (archive, layout, manifest, config)."""


class NotAnImage(ImageFormatError):
    """An input that is readable but is not an image at all (e.g. a plain filesystem tar)."""


class PlatformNotFound(ImageFormatError):
    """An index or manifest list has no entry for the requested platform."""

    def __init__(self, wanted: str, available: list[str]) -> None:
        self.wanted = wanted
        self.available = available
        super().__init__(
            f"no image for platform {wanted}; available: {', '.join(available) or 'none'}"
        )


class DigestMismatch(ImageFormatError):
    """Content whose digest is not the one it was asked for. Never retried into success."""

    def __init__(self, expected: str, actual: str, where: str = "") -> None:
        self.expected = expected
        self.actual = actual
        where = f" ({where})" if where else ""
        super().__init__(f"digest mismatch{where}: expected {expected}, got {actual}")


class TooLarge(ImageFormatError):
    """A manifest, config or other metadata document over the size limit."""


class LayerReadError(ImageFormatError):
    """A layer that cannot be decompressed or walked: names the layer digest and the offset."""

    def __init__(self, message: str, digest: str = "", offset: int | None = None) -> None:
        self.digest = digest
        self.offset = offset
        parts = [message]
        if digest:
            parts.append(f"layer {digest}")
        if offset is not None:
            parts.append(f"offset {offset}")
        super().__init__(
            ": ".join(parts[:1]) + (" (" + ", ".join(parts[1:]) + ")" if parts[1:] else "")
        )


class UnsafePath(ImageFormatError):
    """A tar entry that would escape the destination directory."""


class RegistryError(ImagewiseError):
    """An error talking to a registry. Carries the HTTP status and registry error code, never credentials."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class AuthError(RegistryError):
    """Authentication or authorization failed."""


class NotFound(RegistryError):
    """Repository, tag, manifest or blob not found."""


class DockerfileSyntaxError(ImagewiseError):
    """A Dockerfile that does not parse: carries file and line."""

    def __init__(self, message: str, file: str = "Dockerfile", line: int = 0) -> None:
        self.file = file
        self.line = line
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


class ConfigError(ImagewiseError):
    """A configuration, policy or ignore file that is invalid."""


class VulnDBError(ImagewiseError):
    """The vulnerability database is missing, corrupt or cannot be imported."""
