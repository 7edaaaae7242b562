"""Docker v2 manifests and manifest lists rewritten with OCI media types.

OCI image layouts are read by tag only when ``index.json`` points at OCI media types (skopeo's
``oci:`` transport skips other entries; umoci refuses them), so a sink that writes a layout
converts what it is given. Blobs keep their bytes (a Docker config is an OCI config, a Docker
layer an OCI layer); only the manifest documents change, and with them their digests: the
caller reports the change. OCI documents come back unchanged (same object, same digest).
"""

from __future__ import annotations

import json
from typing import Any

from imagewise.oci import media
from imagewise.oci.model import Index, Manifest, parse_manifest

#: the OCI media type of each Docker one
OCI_EQUIVALENT = {
    media.DOCKER_MANIFEST: media.OCI_MANIFEST,
    media.DOCKER_MANIFEST_LIST: media.OCI_INDEX,
    media.DOCKER_CONFIG: media.OCI_CONFIG,
    media.DOCKER_LAYER: media.OCI_LAYER,
    media.DOCKER_LAYER_GZIP: media.OCI_LAYER_GZIP,
    media.DOCKER_FOREIGN_LAYER: media.OCI_LAYER_NONDIST_GZIP,
}


def _retype(d: dict[str, Any]) -> None:
    mt = d.get("mediaType")
    if isinstance(mt, str) and mt in OCI_EQUIVALENT:
        d["mediaType"] = OCI_EQUIVALENT[mt]


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


def manifest_to_oci(m: Manifest) -> Manifest:
    """``m`` with OCI media types when it is a Docker v2 manifest; otherwise ``m`` itself."""
    if m.media_type != media.DOCKER_MANIFEST:
        return m
    doc = json.loads(m.raw)
    doc["mediaType"] = media.OCI_MANIFEST
    _retype(doc["config"])
    for layer in doc.get("layers") or ():
        _retype(layer)
    out = parse_manifest(_encode(doc))
    assert isinstance(out, Manifest)
    return out


def index_to_oci(idx: Index, converted: dict[str, Manifest | Index]) -> Index:
    """``idx`` as an OCI index whose entries point at the ``converted`` documents (keyed by the
    digest they replace); ``idx`` itself when it is OCI and no entry changed."""
    doc = json.loads(idx.raw)
    changed = idx.media_type == media.DOCKER_MANIFEST_LIST
    if changed:
        doc["mediaType"] = media.OCI_INDEX
    for d in doc.get("manifests") or ():
        new = converted.get(d.get("digest"))
        if new is not None:
            d["mediaType"], d["digest"], d["size"] = new.media_type, str(new.digest), len(new.raw)
            changed = True
    if not changed:
        return idx
    out = parse_manifest(_encode(doc), media.OCI_INDEX)
    assert isinstance(out, Index)
    return out
