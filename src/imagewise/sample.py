"""The bundled sample image, built offline from ``examples/sample/``.

``examples/sample/sample.json`` lists one step per history entry of ``examples/sample/Dockerfile``:
a step either adds files (from the build ``context/`` or from ``layers/``, which holds what the
RUN steps would have produced) or only changes the config (an empty layer). Layers are tars with
fixed metadata (mtime = the image's ``created``, root owner, sorted entries) and gzip without a
timestamp, so the same files always give the same digests.

The image is deliberately flawed, so that every analysis has something to report: it runs as
root, has ``ENV DB_PASSWORD``, a setuid helper, an SSH private key added in one layer and
deleted in a later one, apt lists and caches left behind, a dpkg database, old PyYAML/Jinja2
dist-info, and a settings file overwritten by a later layer (wasted bytes).
"""

from __future__ import annotations

import calendar
import gzip
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagewise.errors import ConfigError
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor, parse_manifest


@dataclass(frozen=True, slots=True)
class SampleResult:
    reference: str  # ``oci:DIR:TAG``
    digest: str
    layers: int
    size: int


def default_source() -> Path:
    """``examples/sample`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "examples" / "sample"


def _entries(step: dict[str, Any], root: Path) -> list[tuple[str, tarfile.TarInfo, bytes]]:
    kind, _, rel = str(step["from"]).partition(":")
    base = root / ("context" if kind == "context" else "layers") / rel
    if kind not in ("context", "layers") or not base.exists():
        raise ConfigError(f"sample step {step['created_by']!r}: no such source {step['from']!r}")
    to = str(step.get("to", "/")).strip("/")
    files: dict[str, Path] = {}
    if base.is_file():
        files[to] = base
    else:
        for p in sorted(base.rglob("*")):
            if p.is_file():
                files["/".join(x for x in (to, p.relative_to(base).as_posix()) if x)] = p
    modes = {k: int(v, 8) for k, v in (step.get("modes") or {}).items()}
    dir_modes = {k: int(v, 8) for k, v in (step.get("dirs") or {}).items()}
    out: dict[str, tuple[tarfile.TarInfo, bytes]] = {}

    def add_dirs(path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in out:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, dir_modes.get(d, 0o755)
                out[d] = (ti, b"")

    for d in dir_modes:
        add_dirs(d + "/x")
    for name, p in files.items():
        add_dirs(name)
        data = p.read_bytes()
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode = len(data), modes.get(name, 0o644)
        out[name] = (ti, data)
    for name, target in (step.get("symlinks") or {}).items():
        add_dirs(name)
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
        out[name] = (ti, b"")
    for name in step.get("delete") or ():
        head, _, tail = name.rpartition("/")
        wh = f"{head}/.wh.{tail}" if head else f".wh.{tail}"
        add_dirs(wh)
        out[wh] = (tarfile.TarInfo(wh), b"")
    return [(name, ti, data) for name, (ti, data) in sorted(out.items())]


def _layer_tar(entries: list[tuple[str, tarfile.TarInfo, bytes]], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for _, ti, data in entries:
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mtime, 0, 0, "root", "root"
            tf.addfile(ti, io.BytesIO(data) if ti.isfile() else None)
    return buf.getvalue()


def build_sample(
    dest: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    tag: str | None = None,
) -> SampleResult:
    """Write the sample image as an OCI layout at ``dest``; returns its reference and digest."""
    from imagewise.sources.oci_layout import OCILayoutSink

    root = Path(source) if source else default_source()
    spec_file = root / "sample.json"
    if not spec_file.is_file():
        raise ConfigError(
            f"{spec_file}: not found; the sample image is built from a source checkout "
            "(pass the examples/sample directory explicitly)"
        )
    try:
        spec = json.loads(spec_file.read_text())
    except ValueError as e:
        raise ConfigError(f"{spec_file}: invalid JSON: {e}") from e
    created = str(spec["created"])
    mtime = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    tag = tag or str(spec.get("tag") or "latest")
    blobs: list[tuple[Descriptor, bytes]] = []
    diff_ids: list[str] = []
    history: list[dict[str, Any]] = []
    for step in spec["steps"]:
        entry: dict[str, Any] = {"created": created, "created_by": step["created_by"]}
        if "buildkit" in step["created_by"] or not step["created_by"].startswith(
            "/bin/sh -c #(nop)"
        ):
            entry["comment"] = "buildkit.dockerfile.v0"
        if "from" not in step:
            entry["empty_layer"] = True
        else:
            tar = _layer_tar(_entries(step, root), mtime)
            gz = gzip.compress(tar, compresslevel=9, mtime=0)
            blobs.append((Descriptor(media.OCI_LAYER_GZIP, Digest.of(gz), len(gz)), gz))
            diff_ids.append(str(Digest.of(tar)))
        history.append(entry)
    config = {
        "architecture": spec["architecture"],
        "os": spec["os"],
        "created": created,
        "config": spec["config"],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_raw = json.dumps(config, indent=2, sort_keys=True).encode()
    config_desc = Descriptor(media.OCI_CONFIG, Digest.of(config_raw), len(config_raw))
    manifest_raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [d.to_json() for d, _ in blobs],
            "annotations": {
                "org.opencontainers.image.created": created,
                "org.opencontainers.image.title": "imagewise sample image",
            },
        },
        indent=2,
    ).encode()
    manifest = parse_manifest(manifest_raw)
    sink = OCILayoutSink(os.fspath(dest), tag=tag)
    with sink:
        for desc, data in [(config_desc, config_raw), *blobs]:
            if not sink.has_blob(desc):
                sink.put_blob(desc, io.BytesIO(data))
        sink.put_manifest(manifest, top=True)
        sink.commit()
    return SampleResult(
        f"oci:{os.fspath(dest)}:{tag}",
        str(manifest.digest),
        len(blobs),
        sum(d.size for d, _ in blobs) + len(config_raw),
    )
