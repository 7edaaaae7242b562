"""``imagewise inspect`` and ``imagewise copy``: translation only, the work is in the library."""

from __future__ import annotations

import json
from typing import Any

from imagewise.cli.args import argument, command, echo, int_range, option
from imagewise.cli.common import handle_errors, insecure_option, platform_option
from imagewise.units import format_size


def inspect_image(text: str, *, platform: str | None = None, insecure: bool = False) -> dict[str, Any]:
    """The ``imagewise/inspect/v1`` document for an image reference."""
    from imagewise.oci.model import Platform
    from imagewise.sources import open_source

    wanted = Platform.parse(platform) if platform else None
    with open_source(text, insecure=insecure) as src:
        img = src.image(wanted)
        cfg = img.config
        history = cfg.layer_history()
        return {
            "schema": "imagewise/inspect/v1",
            "reference": src.name or text,
            "digest": str(img.digest),
            "media_type": img.manifest.media_type,
            "index_digest": str(img.index.digest) if img.index is not None else None,
            "platform": str(cfg.platform),
            "size": sum(x.size for x in img.layers) + img.manifest.config.size,
            "layers": [
                {
                    "digest": str(layer.digest),
                    "diff_id": str(layer.diff_id) if layer.diff_id else None,
                    "size": layer.size,
                    "media_type": layer.media_type,
                    "created_by": _created_by(history, i),
                }
                for i, layer in enumerate(img.layers)
            ],
            "config": {
                "digest": str(img.manifest.config.digest),
                "media_type": img.manifest.config.media_type,
                "created": cfg.created or None,
                "os": cfg.os,
                "architecture": cfg.architecture,
                "variant": cfg.variant or None,
                "user": cfg.user,
                "env": list(cfg.env),
                "entrypoint": list(cfg.entrypoint) if cfg.entrypoint is not None else None,
                "cmd": list(cfg.cmd) if cfg.cmd is not None else None,
                "working_dir": cfg.workdir,
                "exposed_ports": list(cfg.exposed_ports),
                "volumes": list(cfg.volumes),
                "labels": dict(cfg.labels),
                "history": [
                    {"created": h.created or None, "created_by": h.created_by,
                     "empty_layer": h.empty_layer, "comment": h.comment or None}
                    for h in cfg.history
                ],
            },
        }


def _created_by(history: list[Any], i: int) -> str:
    entry = history[i] if i < len(history) else None
    return str(entry.created_by) if entry is not None else ""



def _render_table(doc: dict[str, Any]) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from imagewise.textsafe import safe

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    cfg = doc["config"]
    console.print(Text(safe(doc["reference"]), style="bold"))
    rows = [("digest", doc["digest"]), ("media type", doc["media_type"]),
            ("platform", doc["platform"]), ("size", format_size(doc["size"])),
            ("created", cfg["created"] or "-"), ("user", cfg["user"] or "(root)"),
            ("entrypoint", json.dumps(cfg["entrypoint"]) if cfg["entrypoint"] else "-"),
            ("cmd", json.dumps(cfg["cmd"]) if cfg["cmd"] else "-")]
    if doc["index_digest"]:
        rows.insert(1, ("index", doc["index_digest"]))
    for k, v in rows:
        console.print(Text(f"  {k:<11} {safe(str(v))}"), soft_wrap=True)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col, kw in (("#", {"justify": "right"}), ("size", {"justify": "right"}), ("digest", {}),
                    ("created by", {"overflow": "ellipsis", "no_wrap": True})):
        table.add_column(col, **kw)
    for i, layer in enumerate(doc["layers"]):
        table.add_row(str(i), format_size(layer["size"]), layer["digest"][7:19],
                      Text(safe(layer["created_by"] or "")))
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


@command("inspect")
@argument("image")
@option("--format", "fmt", choices=["table", "json"], default="table",
         show_default=True, help="Output format.")
@platform_option
@insecure_option
@handle_errors
def inspect_cmd(image: str, fmt: str, platform: str | None, insecure: bool) -> None:
    """Show an image's digest, platform, config and layers.

    IMAGE is a reference with an optional transport: docker://, oci:, oci-archive:,
    docker-archive: (a bare path to a local archive or layout also works).
    """
    doc = inspect_image(image, platform=platform, insecure=insecure)
    if fmt == "json":
        echo(json.dumps(doc, indent=2))
    else:
        _render_table(doc)


@command("copy")
@argument("src")
@argument("dst")
@platform_option
@option("--jobs", "-j", type=int_range(1, 64), default=6, show_default=True,
         help="Blobs transferred in parallel.")
@option("--format", "fmt", choices=["text", "json"], default="text",
         show_default=True, help="Summary format.")
@insecure_option
@handle_errors
def copy_cmd(src: str, dst: str, platform: str | None, jobs: int, fmt: str, insecure: bool) -> None:
    """Copy an image from SRC to DST, preserving the manifest digest.

    An index (multi-platform image) is copied whole, every platform, unless --platform picks one.
    Blobs the destination has are skipped; on one registry they are mounted across repositories.

      imagewise copy docker-archive:app.tar docker://localhost:5000/app:1.0
      imagewise copy docker://localhost:5000/app:1.0 oci:./backup:1.0
    """
    from typing import cast

    from imagewise.cli.common import RichReporter
    from imagewise.copy import copy
    from imagewise.progress import Reporter

    with RichReporter() as reporter:
        result = copy(src, dst, platform=platform, insecure=insecure, jobs=jobs,
                      reporter=cast(Reporter, reporter))
    if fmt == "json":
        echo(json.dumps({"schema": "imagewise/copy/v1", **result.to_json()}, indent=2))
    else:
        echo(
            f"{result.destination} {result.digest}: {result.blobs_copied} blobs copied "
            f"({format_size(result.bytes_copied)}), {result.blobs_skipped} already present, "
            f"{result.blobs_mounted} mounted, {result.manifests} manifest(s)"
        )
