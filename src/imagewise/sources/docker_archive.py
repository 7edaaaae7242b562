"""docker-archive (``docker save`` tarballs, ``docker-archive:FILE[:REF]``): read and write.

Reading understands both generations of the format:

* legacy ``docker save``: ``manifest.json`` naming ``<id>/layer.tar`` layers and ``<hex>.json``
  config (also kaniko's ``<hex>.tar.gz`` layers and ``sha256:<hex>`` config);
* Docker 25+ / buildah: the same ``manifest.json`` naming ``blobs/sha256/<hex>`` files, next to
  an OCI ``index.json``. When that index holds the image's real manifest (same config digest)
  its exact bytes are used, so the manifest digest is the one the registry knows.

Otherwise a Docker v2 manifest is synthesized (OCI when a layer is zstd): digests come from the
``blobs/sha256`` path, from the config's diff_id for an uncompressed layer, or from hashing the
compressed member in a streaming pass. Blobs are streamed from their offsets in the tar; every
read is digest-verified.

Writing produces the Docker 25+ layout, loadable by ``docker load``: ``blobs/sha256/*`` holding
config, layers (as they are, compressed or not) and the manifest, ``manifest.json``,
``index.json``, ``oci-layout`` and ``repositories``.
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any

from imagewise.archive.region import Region
from imagewise.errors import ImageFormatError, InvalidReference, NotAnImage
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    expect,
    load_json,
    optional,
    parse_manifest,
    string_list,
)
from imagewise.reference import ImageReference
from imagewise.sources.base import Source
from imagewise.sources.blobio import (
    DirView,
    TarIndex,
    VerifyingReader,
    hash_stream,
    open_archive,
    sniff_compression,
)
from imagewise.sources.oci_layout import (
    LAYOUT_DOC,
    LAYOUT_FILE,
    REF_NAME,
    BlobDirSink,
    OCIStoreSource,
)

_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]{64,128})$")
CONTAINERD_NAME = "io.containerd.image.name"


def _repo_tag_matches(tag: str, want: ImageReference) -> bool:
    try:
        ref = ImageReference.parse(tag)
    except InvalidReference:
        return False
    return (ref.registry, ref.repository, ref.tag or "latest") == (
        want.registry,
        want.repository,
        want.tag or "latest",
    )


class DockerArchiveSource(Source):
    def __init__(
        self, path: str, reference: ImageReference | None = None, index: int | None = None
    ) -> None:
        self.path = path
        self.name = f"docker-archive:{path}" + (f":{reference}" if reference else "")
        self._view = open_archive(path)
        self._blobs: dict[Digest, str] = {}
        self._hashed: set[Digest] = set()  # layer digests computed here, from the files themselves
        self._top: Manifest | Index | None = None
        self._oci: OCIStoreSource | None = None
        try:
            self._entry = self._select(reference, index)
        except BaseException:
            self._view.close()
            raise

    # ---------------------------------------------------------------- selection
    def _select(self, reference: ImageReference | None, index: int | None) -> dict[str, Any]:
        v = self._view
        if not v.has("manifest.json"):
            if v.has("index.json"):  # an OCI archive handed to docker-archive: read it as one
                self._oci = OCIStoreSource(
                    v, self.path, reference.tag if reference else None, index
                )
                return {}
            names = getattr(v, "names", [])
            if names and not getattr(v, "complete", True):
                raise ImageFormatError(
                    f"{self.path}: archive looks truncated: it stops after {len(names)} members "
                    "without tar's end-of-archive block, and manifest.json and index.json are "
                    "missing (was it cut short while copying?)"
                )
            what = "an empty tar archive" if not names else "a plain tar archive"
            raise NotAnImage(
                f"{self.path} is {what}, not an image: it has no manifest.json "
                "or index.json (was it made with tar rather than docker save?)"
            )
        doc = load_json(
            v.read("manifest.json", media.MAX_METADATA_BYTES), f"{self.path}: manifest.json", list
        )
        if not doc:
            raise ImageFormatError(f"{self.path}: manifest.json lists no images")
        for i, entry in enumerate(doc):
            where = f"{self.path}: manifest.json[{i}]"
            expect(entry, dict, where)
            optional(entry, "Config", str, where)
            string_list(entry.get("Layers"), f"{where}.Layers")
            string_list(entry.get("RepoTags"), f"{where}.RepoTags")
        if index is not None:
            if index >= len(doc):
                raise ImageFormatError(
                    f"{self.path}: no image @{index}; the archive has {len(doc)}"
                )
            return dict(doc[index])
        if reference is not None:
            for entry in doc:
                if any(_repo_tag_matches(t, reference) for t in entry.get("RepoTags") or ()):
                    return dict(entry)
            raise ImageFormatError(
                f"{self.path}: no image tagged {reference.familiar()}; "
                f"tags: {', '.join(self._all_tags(doc)) or 'none'}"
            )
        if len(doc) > 1:
            raise ImageFormatError(
                f"{self.path} holds {len(doc)} images; pick one with docker-archive:{self.path}:REF "
                f"or :@N (tags: {', '.join(self._all_tags(doc)) or 'none'})"
            )
        return dict(doc[0])

    @staticmethod
    def _all_tags(doc: list[dict[str, Any]]) -> list[str]:
        return [t for e in doc for t in (e.get("RepoTags") or ())]

    @property
    def repo_tags(self) -> tuple[str, ...]:
        return tuple(self._entry.get("RepoTags") or ())

    # ---------------------------------------------------------------- protocol
    def top(self) -> Manifest | Index:
        if self._oci is not None:
            return self._oci.top()
        if self._top is None:
            self._top = self._build_top()
        return self._top

    def fetch_manifest(self, desc: Descriptor) -> Manifest | Index:
        if self._oci is not None:
            return self._oci.fetch_manifest(desc)
        raw = self.read_blob(desc)
        return parse_manifest(raw, desc.media_type)

    def _blob_name(self, desc: Descriptor) -> str | None:
        """The archive member holding the blob, or ``None``."""
        if not self._blobs and self._top is None:
            self.top()
        name = self._blobs.get(desc.digest) or f"blobs/{desc.digest.algorithm}/{desc.digest.hex}"
        return name if self._view.has(name) else None

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        if self._oci is not None:
            return self._oci.open_blob(desc)
        name = self._blob_name(desc)
        if name is None:
            raise ImageFormatError(
                f"{self.path}: blob {desc.digest} is not in the archive" + self._cut()
            )
        # a digest computed from this very member at open time needs no second hash
        return VerifyingReader(
            self._view.open(name),
            desc.digest,
            desc.size,  # type: ignore[return-value]
            f"{self.path}: {name}",
            hashed=desc.digest in self._hashed,
        )

    def hashed_here(self, digest: Digest) -> bool:
        """Whether ``digest`` was computed from the archive member itself when this source was
        opened (a layer named by no digest, e.g. kaniko's ``*.tar.gz``): no need to hash again."""
        return digest in self._hashed

    def vouches_for(self, desc: Descriptor) -> bool:
        """Not for a layer named by hashing its own member (kaniko's ``<hex>.tar.gz``)."""
        return self._oci is not None or desc.digest not in self._hashed

    def blob_region(self, desc: Descriptor) -> Region | None:
        if self._oci is not None:
            return self._oci.blob_region(desc)
        name = self._blob_name(desc)
        return self._view.region(name) if name is not None else None

    def close(self) -> None:
        self._view.close()

    # ---------------------------------------------------------------- manifest
    def _member(self, key: str) -> str:
        name = self._entry.get(key)
        if not isinstance(name, str) or not name:
            raise ImageFormatError(f"{self.path}: manifest.json entry has no {key}")
        if not self._view.has(name):
            raise ImageFormatError(
                f"{self.path}: manifest.json names {name!r}, which is missing" + self._cut()
            )
        return name

    def _cut(self) -> str:
        """A hint for a missing member when the archive stops without its end-of-archive block."""
        if getattr(self._view, "complete", True):
            return ""
        return " (the archive looks truncated: it ends without tar's end-of-archive block)"

    def _build_top(self) -> Manifest | Index:
        cfg_name = self._member("Config")
        cfg_raw = self._view.read(cfg_name, media.MAX_METADATA_BYTES)
        config = ImageConfig.parse(cfg_raw)
        cfg_digest = Digest.of(cfg_raw)
        self._blobs[cfg_digest] = cfg_name
        layers = self._entry.get("Layers")
        if layers is None:
            raise ImageFormatError(f"{self.path}: manifest.json entry has no Layers list")
        real = self._stored_manifest(cfg_digest)
        if real is not None:
            return real
        descs: list[tuple[Digest, int, str]] = []
        for i, name in enumerate(layers):
            if not self._view.has(name):
                raise ImageFormatError(
                    f"{self.path}: layer {name!r} is missing from the archive" + self._cut()
                )
            comp = sniff_compression(self._view.head(name, 8))
            if comp not in ("", "gzip", "zstd"):
                raise ImageFormatError(
                    f"{self.path}: layer {name!r} is {comp}-compressed; "
                    "only gzip, zstd or uncompressed layers are supported"
                )
            descs.append((self._layer_digest(name, comp, config, i), self._view.size(name), comp))
            self._blobs[descs[-1][0]] = name
        oci = any(c == "zstd" for _, _, c in descs)
        layer_mt = (
            {"": media.OCI_LAYER, "gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD}
            if oci
            else {"": media.DOCKER_LAYER, "gzip": media.DOCKER_LAYER_GZIP}
        )
        doc = {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST if oci else media.DOCKER_MANIFEST,
            "config": {
                "mediaType": media.OCI_CONFIG if oci else media.DOCKER_CONFIG,
                "size": len(cfg_raw),
                "digest": str(cfg_digest),
            },
            "layers": [
                {"mediaType": layer_mt[c], "size": s, "digest": str(d)} for d, s, c in descs
            ],
        }
        raw = json.dumps(doc, indent=3).encode()
        top = parse_manifest(raw)
        assert isinstance(top, Manifest)
        return top

    def _layer_digest(self, name: str, comp: str, config: ImageConfig, i: int) -> Digest:
        m = _BLOB_PATH.match(name)
        if m:
            return Digest(m.group(1), m.group(2))
        if comp == "" and i < len(config.diff_ids):
            return config.diff_ids[i]  # an uncompressed layer's digest is its diff_id
        with self._view.open(name) as f:
            digest = hash_stream(f)[0]
        self._hashed.add(digest)
        return digest

    def _stored_manifest(self, cfg_digest: Digest) -> Manifest | None:
        """The archive's own OCI manifest for this config (Docker 25+), if it has one."""
        v = self._view
        if not v.has("index.json"):
            return None
        try:
            idx = parse_manifest(v.read("index.json", media.MAX_METADATA_BYTES), media.OCI_INDEX)
        except ImageFormatError:
            return None
        candidates = list(idx.manifests) if isinstance(idx, Index) else []
        for _depth in range(2):
            nested: list[Descriptor] = []
            for d in candidates:
                name = f"blobs/{d.digest.algorithm}/{d.digest.hex}"
                if d.size > media.MAX_METADATA_BYTES or not v.has(name):
                    continue
                raw = v.read(name, media.MAX_METADATA_BYTES)
                if Digest.of(raw, d.digest.algorithm) != d.digest:
                    continue
                try:
                    m = parse_manifest(raw, d.media_type)
                except ImageFormatError:
                    continue
                if isinstance(m, Index):
                    nested.extend(m.manifests)
                elif m.config.digest == cfg_digest and all(
                    v.has(f"blobs/{x.digest.algorithm}/{x.digest.hex}") for x in m.layers
                ):
                    return m
            candidates = nested
        return None


# -------------------------------------------------------------------- sink


class DockerArchiveSink(BlobDirSink):
    """Stages blobs in a temporary directory beside FILE; ``commit`` writes the archive."""

    accepts_index = False  # a docker-archive holds single-platform images

    def __init__(self, path: str, reference: ImageReference | None = None) -> None:
        from imagewise.sources.oci_archive import staging_dir

        self._tmp, self._staging_lock = staging_dir(path, "docker-archive")
        self.path = path
        self.reference = reference
        self.name = f"docker-archive:{path}" + (f":{reference}" if reference else "")
        os.makedirs(os.path.join(self._tmp, "blobs", "sha256"))
        self._top: Manifest | None = None

    def _blob_file(self, digest: Digest) -> str:
        return os.path.join(self._tmp, "blobs", digest.algorithm, digest.hex)

    def put_manifest(self, manifest: Manifest | Index, *, top: bool) -> None:
        import io

        if isinstance(manifest, Index):
            raise ImageFormatError(
                "a docker-archive holds a single-platform image; choose one with --platform"
            )
        desc = Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        if not self.has_blob(desc):
            self.put_blob(desc, io.BytesIO(manifest.raw))
        if top:
            self._top = manifest

    def commit(self) -> None:
        from imagewise.sources.oci_archive import pack_layout

        m = self._top
        if m is None:
            raise ImageFormatError(f"{self.name}: nothing to commit (no manifest written)")

        def path_of(d: Digest) -> str:
            return f"blobs/{d.algorithm}/{d.hex}"

        ref = self.reference
        repo_tags = [ref.familiar()] if ref else []
        manifest_json = [
            {
                "Config": path_of(m.config.digest),
                "RepoTags": repo_tags or None,
                "Layers": [path_of(x.digest) for x in m.layers],
            }
        ]
        annotations: dict[str, str] = {}
        if ref:
            annotations = {
                CONTAINERD_NAME: str(ref.with_tag(ref.tag or "latest")),
                REF_NAME: ref.tag or "latest",
            }
        index = {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [Descriptor(m.media_type, m.digest, len(m.raw), annotations).to_json()],
        }
        files: dict[str, bytes] = {
            "manifest.json": json.dumps(manifest_json, separators=(",", ":")).encode(),
            "index.json": json.dumps(index, separators=(",", ":")).encode(),
            LAYOUT_FILE: LAYOUT_DOC,
        }
        if ref and m.layers:
            files["repositories"] = json.dumps(
                {ref.familiar_name: {ref.tag or "latest": m.layers[-1].digest.hex}}
            ).encode()
        for name, data in files.items():
            with open(os.path.join(self._tmp, name), "wb") as f:
                f.write(data)
        pack_layout(self._tmp, self.path, first=tuple(files))

    def close(self) -> None:
        from imagewise.sources.oci_archive import release_staging

        release_staging(self._tmp, self._staging_lock)


__all__ = ["DirView", "DockerArchiveSink", "DockerArchiveSource", "TarIndex"]
