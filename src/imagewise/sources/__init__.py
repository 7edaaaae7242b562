"""Sources and sinks for every transport, chosen from a transport string.

``open_source("oci:./layout:v1")`` returns a :class:`~imagewise.sources.base.Source`;
``open_sink("docker://localhost:5000/app:v1")`` a :class:`~imagewise.sources.base.Sink`.
Implementations are imported lazily so that importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagewise.reference import TransportRef, parse_transport

if TYPE_CHECKING:
    from imagewise.registry.transfer import Transfer
    from imagewise.sources.base import Sink, Source

__all__ = ["detect_local", "looks_like_path", "open_sink", "open_source", "sink_for", "source_for"]


def open_source(
    text: str | TransportRef, *, insecure: bool = False, transfer: Transfer | None = None
) -> Source:
    """Open the image named by a transport string (or a parsed TransportRef) for reading.

    A bare argument naming an existing file or directory is read as a local image
    (``detect_local``), so ``imagewise inspect img.tar`` works without a transport prefix.
    ``transfer`` (stall time, deadline, retry reporter) applies to a registry.
    """
    ref = (detect_local(text) or parse_transport(text)) if isinstance(text, str) else text
    return source_for(ref, insecure=insecure, transfer=transfer)


_ARCHIVE_ENDINGS = (".tar", ".tar.gz", ".tgz")


def looks_like_path(text: str) -> bool:
    """True for an argument a user means as a file: it starts like a path (``/``, ``./``,
    ``../``, ``~``), ends like an archive (``.tar``, ``.tar.gz``, ``.tgz``), or has a path
    separator and is no valid image reference."""
    import os

    from imagewise.errors import InvalidReference
    from imagewise.reference import ImageReference

    if (
        text in (".", "..")
        or text.startswith(("/", "./", "../", "~"))
        or text.endswith(_ARCHIVE_ENDINGS)
    ):
        return True
    if os.sep in text or (os.altsep and os.altsep in text):
        try:
            ImageReference.parse(text)
        except InvalidReference:
            return True
    return False


def detect_local(text: str) -> TransportRef | None:
    """A TransportRef for ``text`` when it has no transport prefix and names a local image.

    * an existing directory is an OCI layout (``oci:``), an existing file an archive
      (``docker-archive:``, which also reads OCI archives);
    * ``PATH:TAG`` where PATH exists: the same with a tag (``backup/app:1.3``; a directory's
      tag has no ``/``, so ``localhost:5000/app`` stays a registry name) or a reference
      (``app.tar:x/y:2``); the path ends at the first ``:``, as with the transports;
    * anything else that looks like a path (``looks_like_path``) raises FileNotFoundError rather
      than being tried as a registry name.

    ``None`` otherwise: a registry reference.
    """
    import os

    if text.startswith(("docker://", "oci:", "oci-archive:", "docker-archive:")):
        return None
    local = _existing(text, text)
    if local is not None:
        return local
    path, sep, tag = text.partition(":")
    if sep and path and tag and (os.path.isfile(path) or ("/" not in tag and os.path.isdir(path))):
        return _existing(path, text)
    if sep and path and looks_like_path(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if looks_like_path(text):
        raise FileNotFoundError(2, "No such file or directory", text)
    return None


def _existing(path: str, text: str) -> TransportRef | None:
    """``text`` (``path`` or ``path:tag``) as a local image when ``path`` exists."""
    import os

    if os.path.isdir(path):
        return parse_transport(f"oci:{text}")
    if os.path.isfile(path):
        return parse_transport(f"docker-archive:{text}")
    return None


def open_sink(
    text: str | TransportRef, *, insecure: bool = False, transfer: Transfer | None = None
) -> Sink:
    """Open the destination named by a transport string for writing. A bare argument naming
    an existing directory (``PATH[:TAG]``) is an OCI layout; another bare argument that looks
    like a path is refused with the transports to choose from (which format is meant?)."""
    if isinstance(text, str):
        ref = _bare_destination(text) or parse_transport(text)
    else:
        ref = text
    return sink_for(ref, insecure=insecure, transfer=transfer)


def _bare_destination(text: str) -> TransportRef | None:
    import os

    if text.startswith(("docker://", "oci:", "oci-archive:", "docker-archive:")):
        return None
    path, sep, tag = text.partition(":")
    if os.path.isdir(text) or (sep and path and tag and "/" not in tag and os.path.isdir(path)):
        return parse_transport(f"oci:{text}")
    if looks_like_path(text) or (sep and looks_like_path(path)):
        from imagewise.errors import InvalidReference

        raise InvalidReference(
            f"{text!r} looks like a path: name the destination format, e.g. oci:{text} (a layout "
            f"directory), oci-archive:{text} or docker-archive:{text} (an archive file)"
        )
    return None


def source_for(
    ref: TransportRef, *, insecure: bool = False, transfer: Transfer | None = None
) -> Source:
    if ref.transport == "docker":
        from imagewise.sources.registry import RegistrySource

        assert ref.reference is not None
        src: Source = RegistrySource(ref.reference, insecure=insecure, transfer=transfer)
    elif ref.transport == "oci":
        from imagewise.sources.oci_layout import OCILayoutSource

        src = OCILayoutSource(ref.path, tag=ref.tag, index=ref.index)
    elif ref.transport == "oci-archive":
        from imagewise.sources.oci_archive import OCIArchiveSource

        src = OCIArchiveSource(ref.path, tag=ref.tag, index=ref.index)
    elif ref.transport == "docker-archive":
        from imagewise.sources.docker_archive import DockerArchiveSource

        src = DockerArchiveSource(ref.path, reference=ref.reference, index=ref.index)
    else:  # pragma: no cover - parse_transport only yields the four above
        raise ValueError(ref.transport)
    if not src.name:
        src.name = str(ref)
    return src


def sink_for(
    ref: TransportRef, *, insecure: bool = False, transfer: Transfer | None = None
) -> Sink:
    from imagewise.errors import InvalidReference

    if ref.index is not None:
        raise InvalidReference(f"{ref}: an image index (:@N) cannot be a destination")
    if ref.transport == "docker":
        from imagewise.sources.registry import RegistrySink

        assert ref.reference is not None
        sink: Sink = RegistrySink(ref.reference, insecure=insecure, transfer=transfer)
    elif ref.transport == "oci":
        from imagewise.sources.oci_layout import OCILayoutSink

        sink = OCILayoutSink(ref.path, tag=ref.tag)
    elif ref.transport == "oci-archive":
        from imagewise.sources.oci_archive import OCIArchiveSink

        sink = OCIArchiveSink(ref.path, tag=ref.tag)
    elif ref.transport == "docker-archive":
        from imagewise.sources.docker_archive import DockerArchiveSink

        sink = DockerArchiveSink(ref.path, reference=ref.reference)
    else:  # pragma: no cover
        raise ValueError(ref.transport)
    if not sink.name:
        sink.name = str(ref)
    return sink
