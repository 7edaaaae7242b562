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
        arch = {
            "x86_64": "amd64",
            "amd64": "amd64",
            "aarch64": "arm64",
            "arm64": "arm64",
            "armv7l": "arm",
            "ppc64le": "ppc64le",
            "s390x": "s390x",
            "i686": "386",
            "riscv64": "riscv64",
        }.get(machine, machine)
        variant = "v7" if machine == "armv7l" else ""
        return cls("linux", arch, variant)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None, where: str = "platform") -> Platform | None:
        if not d:
            return None
        return cls(
            optional(d, "os", str, where) or "",
            optional(d, "architecture", str, where) or "",
            optional(d, "variant", str, where) or "",
        )

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

    def __init__(
        self,
        media_type: str,
        digest: Digest,
        size: int,
        annotations: dict[str, str] | None = None,
        platform: Platform | None = None,
        urls: tuple[str, ...] = (),
    ) -> None:
        self.media_type = media_type
        self.digest = digest
        self.size = size
        self.annotations: dict[str, str] = {} if annotations is None else annotations
        self.platform = platform
        self.urls = urls

    @classmethod
    def from_json(cls, d: Any, where: str = "descriptor") -> Descriptor:
        """A descriptor from its JSON object; every field's type is checked (``where`` names the
        descriptor in messages, e.g. ``manifest: layers[2]``)."""
        obj = expect(d, dict, where)
        digest = expect(obj.get("digest"), str, f"{where}.digest")
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ImageFormatError(f"{where}.size must be an integer, not {kind_of(size)}")
        if size < 0:
            raise ImageFormatError(f"{where}.size is negative ({size})")
        platform = obj.get("platform")
        return cls(
            media_type=optional(obj, "mediaType", str, where) or "",
            digest=_parse_digest(digest, f"{where}.digest"),
            size=size,
            annotations=string_map(obj.get("annotations"), f"{where}.annotations"),
            platform=None
            if platform is None
            else Platform.from_json(
                expect(platform, dict, f"{where}.platform"), f"{where}.platform"
            ),
            urls=tuple(string_list(obj.get("urls"), f"{where}.urls")),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
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

    def __init__(
        self,
        media_type: str,
        config: Descriptor,
        layers: tuple[Descriptor, ...],
        raw: bytes,
        annotations: dict[str, str] | None = None,
    ) -> None:
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
        images = [
            d for d in self.manifests if d.media_type in media.MANIFEST_TYPES or not d.media_type
        ]
        if len(images) == 1 and images[0].platform is None:
            return images[0]
        raise PlatformNotFound(str(wanted), self.platforms())


#: deepest nesting of arrays and objects a metadata document may have (real ones stay under 10)
MAX_JSON_DEPTH = 64
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects in ``raw`` nest deeper than ``limit`` (checked before
    parsing, so a document of 100,000 ``[`` is refused rather than overflowing the parser).
    Cheap for real documents: only one with more than ``limit`` openers is looked at closely."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # drop escaped backslashes and quotes, keep only brackets and quotes, drop strings without
    # brackets (or two adjacent ones merged: still string), then what lies between quotes:
    # the document's own brackets are left
    marks = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    marks = marks.replace(b'""', b"")
    brackets = b"".join(marks.split(b'"')[::2]).replace(b"{", b"[").replace(b"}", b"]")
    for level in range(limit):  # each round removes the innermost level
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            # unbalanced (the parser reports it) unless the unclosed openers nest too deep
            return level + brackets.count(b"[") > limit
        brackets = shorter
        if not brackets:
            return False
    return True


def load_json(raw: bytes, what: str, expected: type = dict) -> Any:
    """Parse a metadata document (manifest, index, config, ``manifest.json``, ``oci-layout``...)
    after bounding its size and nesting depth; malformed input raises ImageFormatError in words.
    ``expected`` is the type the top level must have (an object unless told otherwise)."""
    if len(raw) > media.MAX_METADATA_BYTES:
        raise TooLarge(f"{what} is {len(raw)} bytes; refusing documents over 4 MiB")
    if json_depth_exceeds(raw):
        raise ImageFormatError(
            f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} levels deep; refusing it"
        )
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError as e:
        raise ImageFormatError(f"{what} is not UTF-8 text (byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise ImageFormatError(
            f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    except (ValueError, RecursionError) as e:
        raise ImageFormatError(f"{what} is not valid JSON") from e
    return expect(doc, expected, what)


_KINDS: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def kind_of(value: Any) -> str:
    """What a JSON value is, in words: ``a string``, ``a number``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return _KINDS.get(type(value), type(value).__name__)


def expect(value: Any, typ: type, where: str) -> Any:
    """``value`` when it is a ``typ`` (JSON sense: no bool for int), else ImageFormatError
    naming ``where`` and the expected type."""
    if isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
        return value
    raise ImageFormatError(f"{where} must be {_KINDS.get(typ, typ.__name__)}, not {kind_of(value)}")


def optional(obj: dict[str, Any], key: str, typ: type, where: str) -> Any:
    """``obj[key]`` checked to be a ``typ``; ``None`` when absent or null."""
    value = obj.get(key)
    name = f"{where} {key}" if where.endswith(":") else f"{where}.{key}"
    return None if value is None else expect(value, typ, name)


def string_list(value: Any, where: str) -> list[str]:
    """A list of strings (``[]`` for null or absent)."""
    if value is None:
        return []
    for i, item in enumerate(expect(value, list, where)):
        if not isinstance(item, str):
            raise ImageFormatError(f"{where}[{i}] must be a string, not {kind_of(item)}")
    return value  # type: ignore[no-any-return]


def string_map(value: Any, where: str) -> dict[str, str]:
    """An object of strings (``{}`` for null or absent)."""
    if value is None:
        return {}
    for k, v in expect(value, dict, where).items():
        if not isinstance(v, str):
            raise ImageFormatError(f"{where}[{k!r}] must be a string, not {kind_of(v)}")
    return dict(value)


def _parse_digest(text: str, where: str) -> Digest:
    try:
        return Digest.parse(text)
    except ImageFormatError as e:
        raise ImageFormatError(f"{where}: {e}") from e


def parse_manifest(raw: bytes, media_type: str = "") -> Manifest | Index:
    """Parse manifest bytes; the media type comes from the document when it names one."""
    doc = load_json(raw, "manifest")
    mt = optional(doc, "mediaType", str, "manifest:") or media_type or ""
    if not mt:
        mt = media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST
    if mt in media.INDEX_TYPES or ("manifests" in doc and "layers" not in doc):
        entries = expect(doc.get("manifests"), list, "index: manifests")
        return Index(
            mt,
            tuple(Descriptor.from_json(d, f"index: manifests[{i}]") for i, d in enumerate(entries)),
            raw,
        )
    if doc.get("schemaVersion") == 1:
        raise ImageFormatError("Docker schema 1 manifests are not supported")
    if "config" not in doc:
        raise ImageFormatError("manifest has no config")
    layers = doc.get("layers")
    return Manifest(
        media_type=mt,
        config=Descriptor.from_json(doc["config"], "manifest: config"),
        layers=tuple(
            Descriptor.from_json(d, f"manifest: layers[{i}]")
            for i, d in enumerate(
                expect(layers, list, "manifest: layers") if layers is not None else ()
            )
        ),
        raw=raw,
        annotations=string_map(doc.get("annotations"), "manifest: annotations"),
    )


class HistoryEntry(Record):
    __slots__ = ("created_by", "created", "comment", "empty_layer")  # noqa: RUF023

    def __init__(
        self, created_by: str = "", created: str = "", comment: str = "", empty_layer: bool = False
    ) -> None:
        self.created_by = created_by
        self.created = created
        self.comment = comment
        self.empty_layer = empty_layer


class ImageConfig(Record):
    """The parts of an image config that analyzers read; ``raw`` keeps the whole document."""

    __slots__ = (  # noqa: RUF023 - in field order
        "raw",
        "doc",
        "os",
        "architecture",
        "variant",
        "diff_ids",
        "history",
        "user",
        "env",
        "entrypoint",
        "cmd",
        "labels",
        "exposed_ports",
        "volumes",
        "workdir",
        "healthcheck",
        "created",
    )
    _uncompared = ("doc", "labels", "healthcheck")
    _unshown = ("raw", "doc")

    def __init__(
        self,
        raw: bytes,
        doc: dict[str, Any],
        os: str = "",
        architecture: str = "",
        variant: str = "",
        diff_ids: tuple[Digest, ...] = (),
        history: tuple[HistoryEntry, ...] = (),
        user: str = "",
        env: tuple[str, ...] = (),
        entrypoint: tuple[str, ...] | None = None,
        cmd: tuple[str, ...] | None = None,
        labels: dict[str, str] | None = None,
        exposed_ports: tuple[str, ...] = (),
        volumes: tuple[str, ...] = (),
        workdir: str = "",
        healthcheck: dict[str, Any] | None = None,
        created: str = "",
    ) -> None:
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
        """Parse a config; a field of the wrong type is an ImageFormatError naming it."""
        doc = load_json(raw, "image config")
        w = "image config:"
        key = "config" if doc.get("config") else "container_config"
        c = optional(doc, key, dict, w) or {}
        cw = f"{w} {key}"
        rootfs = optional(doc, "rootfs", dict, w) or {}
        diff_ids = tuple(
            _parse_digest(d, f"{w} rootfs.diff_ids[{i}]")
            for i, d in enumerate(string_list(rootfs.get("diff_ids"), f"{w} rootfs.diff_ids"))
        )
        history = []
        for i, h in enumerate(optional(doc, "history", list, w) or ()):
            hw = f"{w} history[{i}]"
            expect(h, dict, hw)
            history.append(
                HistoryEntry(
                    created_by=optional(h, "created_by", str, hw) or "",
                    created=optional(h, "created", str, hw) or "",
                    comment=optional(h, "comment", str, hw) or "",
                    empty_layer=bool(optional(h, "empty_layer", bool, hw)),
                )
            )

        def seq(name: str) -> tuple[str, ...] | None:
            v = c.get(name)
            if v is None or isinstance(v, str):
                return None if v is None else (v,)
            return tuple(string_list(v, f"{cw}.{name}"))

        def keys(name: str) -> tuple[str, ...]:
            return tuple(sorted(optional(c, name, dict, cw) or ()))

        return cls(
            raw=raw,
            doc=doc,
            os=optional(doc, "os", str, w) or "",
            architecture=optional(doc, "architecture", str, w) or "",
            variant=optional(doc, "variant", str, w) or "",
            diff_ids=diff_ids,
            history=tuple(history),
            user=optional(c, "User", str, cw) or "",
            env=tuple(string_list(c.get("Env"), f"{cw}.Env")),
            entrypoint=seq("Entrypoint"),
            cmd=seq("Cmd"),
            labels=string_map(c.get("Labels"), f"{cw}.Labels"),
            exposed_ports=keys("ExposedPorts"),
            volumes=keys("Volumes"),
            workdir=optional(c, "WorkingDir", str, cw) or "",
            healthcheck=optional(c, "Healthcheck", dict, cw),
            created=optional(doc, "created", str, w) or "",
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
