"""Images with chosen layers and push times for the storage tests, and request counting."""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from fixtures_registry import BuiltImage

from imagewise.oci import media as mt
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.registry.http import Request


def layer(seed: int, size: int = 3000) -> tuple[bytes, str]:
    """(gzip blob, diff_id) of a one-file layer; the same seed gives the same bytes."""
    data = random.Random(seed).randbytes(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"f{seed}.bin")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), str(Digest.of(raw))


def image(
    layer_seeds: list[int], created: str = "2024-01-01T00:00:00Z", label: str = ""
) -> BuiltImage:
    """An image of the given layers (by seed) built at ``created``."""
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for s in layer_seeds:
        gz, diff_id = layer(s)
        d = Digest.of(gz)
        blobs[str(d)] = gz
        layers.append(Descriptor(mt.OCI_LAYER_GZIP, d, len(gz)))
        diff_ids.append(diff_id)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": {"label": label}} if label else {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        sort_keys=True,
    ).encode()
    cd = Digest.of(config)
    blobs[str(cd)] = config
    config_desc = Descriptor(mt.OCI_CONFIG, cd, len(config))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [x.to_json() for x in layers],
        }
    ).encode()
    return BuiltImage(manifest, str(Digest.of(manifest)), config_desc, tuple(layers), blobs)


def closure_bytes(img: BuiltImage) -> int:
    """Manifest + config + layers: what du calls the image's logical size."""
    return len(img.manifest_raw) + img.config.size + sum(d.size for d in img.layers)


@contextmanager
def counting(client: object) -> Iterator[Counter[str]]:
    """Count the HTTP requests ``client`` (a RegistryClient) sends, by kind: catalog, tags,
    manifest, blob, other."""
    counts: Counter[str] = Counter()

    def hook(request: Request) -> None:
        path = request.path
        if path.endswith("/_catalog"):
            counts["catalog"] += 1
        elif path.endswith("/tags/list"):
            counts["tags"] += 1
        elif "/manifests/" in path:
            counts["manifest"] += 1
        elif "/blobs/" in path:
            counts["blob"] += 1
        else:
            counts["other"] += 1

    hooks = client.session.client.on_request  # type: ignore[attr-defined]
    hooks.append(hook)
    try:
        yield counts
    finally:
        hooks.remove(hook)


def index_bytes(images: list[BuiltImage], archs: list[str] | None = None) -> bytes:
    """An OCI image index of ``images``, each given the architecture of ``archs`` (none given:
    no platforms)."""
    entries = []
    for n, img in enumerate(images):
        entry: dict[str, object] = {
            "mediaType": mt.OCI_MANIFEST,
            "digest": img.manifest_digest,
            "size": len(img.manifest_raw),
        }
        if archs is not None:
            entry["platform"] = {"os": "linux", "architecture": archs[n]}
        entries.append(entry)
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    ).encode()
