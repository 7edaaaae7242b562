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

__all__ = ["detect_local", "open_sink", "open_source", "sink_for", "source_for"]


def open_source(text: str | TransportRef, *, insecure: bool = False,
                transfer: Transfer | None = None) -> Source:
    """Open the image named by a transport string (or a parsed TransportRef) for reading.

    A bare argument that is an existing local archive or layout (``./img.tar``, ``out/layout``)
    is read as one, so ``imagewise inspect img.tar`` works without a transport prefix.
    ``transfer`` (stall time, deadline, retry reporter) applies to a registry.
    """
    ref = (detect_local(text) or parse_transport(text)) if isinstance(text, str) else text
    return source_for(ref, insecure=insecure, transfer=transfer)


def detect_local(text: str) -> TransportRef | None:
    """A TransportRef for ``text`` when it has no transport prefix and names a local image:
    a directory with ``index.json`` (oci) or a file that looks like a path (docker-archive,
    which also reads OCI archives)."""
    import os

    if text.startswith(("docker://", "oci:", "oci-archive:", "docker-archive:")):
        return None
    if os.path.isdir(text) and os.path.isfile(os.path.join(text, "index.json")):
        return TransportRef("oci", path=text)
    looks_like_path = os.sep in text or text.endswith((".tar", ".tar.gz", ".tgz"))
    if os.path.isfile(text) and looks_like_path:
        return TransportRef("docker-archive", path=text)
    return None


def open_sink(text: str | TransportRef, *, insecure: bool = False,
              transfer: Transfer | None = None) -> Sink:
    """Open the destination named by a transport string for writing."""
    ref = parse_transport(text) if isinstance(text, str) else text
    return sink_for(ref, insecure=insecure, transfer=transfer)


def source_for(ref: TransportRef, *, insecure: bool = False,
               transfer: Transfer | None = None) -> Source:
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


def sink_for(ref: TransportRef, *, insecure: bool = False,
             transfer: Transfer | None = None) -> Sink:
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
