"""Immutable models of manifests, indexes, descriptors and image configs.

Manifests keep their raw bytes: a digest is always computed over the bytes as received, so a
copy can reproduce them exactly.
"""

from __future__ import annotations

import json
import os
from typing import Any

from imagewise.errors import ImageFormatError, TooLarge
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.record import Record


class Platform(Record):
    __slots__ = ("os", "architecture", "variant")  # noqa: RUF023

    def __init__(self, os: str, architecture: str, variant: str = "") -> None:
        self.os = os
        self.architecture = architecture
        self.variant = variant

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageFormatError(f"malformed platform {text!r}; expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> Platform:
        machine = os.uname().machine.lower()  # what platform.machine() reads, without its import
        arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
                "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "i686": "386",
                "riscv64": "riscv64"}.get(machine, machine)
        variant = "v7" if machine == "armv7l" else ""
        return cls("linux", arch, variant)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Platform | None:
        if not d:
            return None
        return cls(str(d.get("os", "")), str(d.get("architecture", "")), str(d.get("variant", "") or ""))

    def matches(self, other: Platform) -> bool:
        """True when ``other`` (an index entry) satisfies this wanted platform."""
        if self.os != other.os or self.architecture != other.architecture:
            return False
        if not self.variant:
            return True
        # arm64 images commonly omit v8
        return self.variant == other.variant or (not other.variant and self.variant == "v8")

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


class Descriptor(Record):
    __slots__ = ("media_type", "digest", "size", "annotations", "platform", "urls")  # noqa: RUF023
    _uncompared = ("annotations",)

    def __init__(self, media_type: str, digest: Digest, size: int,
                 annotations: dict[str, str] | None = None, platform: Platform | None = None,
                 urls: tuple[str, ...] = ()) -> None:
        self.media_type = media_type
        self.digest = digest
        self.size = size
        self.annotations: dict[str, str] = {} if annotations is None else annotations
        self.platform = platform
        self.urls = urls

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        try:
            return cls(
                media_type=str(d.get("mediaType", "")),
                digest=Digest.parse(d["digest"]),
                size=int(d["size"]),
                annotations=dict(d.get("annotations") or {}),
                platform=Platform.from_json(d.get("platform")),
                urls=tuple(d.get("urls") or ()),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ImageFormatError(f"malformed descriptor: {e}") from e

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            p: dict[str, str] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                p["variant"] = self.platform.variant
            out["platform"] = p
        if self.urls:
            out["urls"] = list(self.urls)
        return out


class Manifest(Record):
    """A single-platform image manifest (OCI or Docker v2 schema 2)."""

    __slots__ = ("media_type", "config", "layers", "raw", "annotations")  # noqa: RUF023
    _uncompared = ("annotations",)
    _unshown = ("raw",)

    def __init__(self, media_type: str, config: Descriptor, layers: tuple[Descriptor, ...],
                 raw: bytes, annotations: dict[str, str] | None = None) -> None:
        self.media_type = media_type
        self.config = config
        self.layers = layers
        self.raw = raw
        self.annotations: dict[str, str] = {} if annotations is None else annotations

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)


class Index(Record):
    """An OCI image index or Docker manifest list."""

    __slots__ = ("media_type", "manifests", "raw")  # noqa: RUF023
    _unshown = ("raw",)

    def __init__(self, media_type: str, manifests: tuple[Descriptor, ...], raw: bytes) -> None:
        self.media_type = media_type
        self.manifests = manifests
        self.raw = raw

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    def platforms(self) -> list[str]:
        return [str(d.platform) for d in self.manifests if d.platform]

    def select(self, wanted: Platform) -> Descriptor:
        from imagewise.errors import PlatformNotFound

        for d in self.manifests:
            if d.platform and wanted.matches(d.platform):
                return d
        # an index without platform info (e.g. an OCI layout with one image) picks the only image
        images = [d for d in self.manifests if d.media_type in media.MANIFEST_TYPES or not d.media_type]
        if len(images) == 1 and images[0].platform is None:
            return images[0]
        raise PlatformNotFound(str(wanted), self.platforms())


def load_json(raw: bytes, what: str) -> dict[str, Any]:
    if len(raw) > media.MAX_METADATA_BYTES:
        raise TooLarge(f"{what} is {len(raw)} bytes; refusing documents over 4 MiB")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageFormatError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return doc


def parse_manifest(raw: bytes, media_type: str = "") -> Manifest | Index:
    """Parse manifest bytes; the media type comes from the document when it names one."""
    doc = load_json(raw, "manifest")
    mt = str(doc.get("mediaType") or media_type or "")
    if not mt:
        mt = media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST
    try:
        if mt in media.INDEX_TYPES or ("manifests" in doc and "layers" not in doc):
            return Index(mt, tuple(Descriptor.from_json(d) for d in doc["manifests"]), raw)
        if doc.get("schemaVersion") == 1:
            raise ImageFormatError("Docker schema 1 manifests are not supported")
        return Manifest(
            media_type=mt,
            config=Descriptor.from_json(doc["config"]),
            layers=tuple(Descriptor.from_json(d) for d in doc.get("layers") or ()),
            raw=raw,
            annotations=dict(doc.get("annotations") or {}),
        )
    except (KeyError, TypeError) as e:
        raise ImageFormatError(f"manifest is missing {e}") from e


class HistoryEntry(Record):
    __slots__ = ("created_by", "created", "comment", "empty_layer")  # noqa: RUF023

    def __init__(self, created_by: str = "", created: str = "", comment: str = "",
                 empty_layer: bool = False) -> None:
        self.created_by = created_by
        self.created = created
        self.comment = comment
        self.empty_layer = empty_layer


class ImageConfig(Record):
    """The parts of an image config that analyzers read; ``raw`` keeps the whole document."""

    __slots__ = (  # noqa: RUF023 - in field order
        "raw", "doc", "os", "architecture", "variant", "diff_ids", "history", "user", "env",
        "entrypoint", "cmd", "labels", "exposed_ports", "volumes", "workdir", "healthcheck",
        "created",
    )
    _uncompared = ("doc", "labels", "healthcheck")
    _unshown = ("raw", "doc")

    def __init__(self, raw: bytes, doc: dict[str, Any], os: str = "", architecture: str = "",
                 variant: str = "", diff_ids: tuple[Digest, ...] = (),
                 history: tuple[HistoryEntry, ...] = (), user: str = "", env: tuple[str, ...] = (),
                 entrypoint: tuple[str, ...] | None = None, cmd: tuple[str, ...] | None = None,
                 labels: dict[str, str] | None = None, exposed_ports: tuple[str, ...] = (),
                 volumes: tuple[str, ...] = (), workdir: str = "",
                 healthcheck: dict[str, Any] | None = None, created: str = "") -> None:
        self.raw = raw
        self.doc = doc
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.diff_ids = diff_ids
        self.history = history
        self.user = user
        self.env = env
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.labels: dict[str, str] = {} if labels is None else labels
        self.exposed_ports = exposed_ports
        self.volumes = volumes
        self.workdir = workdir
        self.healthcheck = healthcheck
        self.created = created

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        doc = load_json(raw, "image config")
        c = doc.get("config") or doc.get("container_config") or {}
        if not isinstance(c, dict):
            c = {}
        try:
            rootfs = doc.get("rootfs") or {}
            diff_ids = tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or ())
            history = tuple(
                HistoryEntry(
                    created_by=str(h.get("created_by", "")),
                    created=str(h.get("created", "")),
                    comment=str(h.get("comment", "")),
                    empty_layer=bool(h.get("empty_layer", False)),
                )
                for h in doc.get("history") or ()
            )
        except (AttributeError, TypeError) as e:
            raise ImageFormatError(f"malformed image config: {e}") from e

        def seq(v: Any) -> tuple[str, ...] | None:
            if v is None:
                return None
            return tuple(str(x) for x in v) if isinstance(v, list) else (str(v),)

        return cls(
            raw=raw,
            doc=doc,
            os=str(doc.get("os", "")),
            architecture=str(doc.get("architecture", "")),
            variant=str(doc.get("variant", "") or ""),
            diff_ids=diff_ids,
            history=history,
            user=str(c.get("User") or ""),
            env=tuple(str(e) for e in c.get("Env") or ()),
            entrypoint=seq(c.get("Entrypoint")),
            cmd=seq(c.get("Cmd")),
            labels={str(k): str(v) for k, v in (c.get("Labels") or {}).items()},
            exposed_ports=tuple(sorted((c.get("ExposedPorts") or {}).keys())),
            volumes=tuple(sorted((c.get("Volumes") or {}).keys())),
            workdir=str(c.get("WorkingDir") or ""),
            healthcheck=c.get("Healthcheck"),
            created=str(doc.get("created", "")),
        )

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)

    def layer_history(self) -> list[HistoryEntry | None]:
        """History entries aligned with layers (empty_layer entries skipped)."""
        out: list[HistoryEntry | None] = [h for h in self.history if not h.empty_layer]
        while len(out) < len(self.diff_ids):
            out.append(None)
        return out[: len(self.diff_ids)]
