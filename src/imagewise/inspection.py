"""The ``imagewise/inspect/v1`` document of an image (digest, platform, config, layers) and its
table: what ``imagewise inspect`` prints, for any caller of the library."""

from __future__ import annotations

import json
from typing import Any

from imagewise.units import format_size


def inspect_image(
    text: str, *, platform: str | None = None, insecure: bool = False, show_secrets: bool = False
) -> dict[str, Any]:
    """The body of the ``imagewise/inspect/v1`` document for an image reference (the envelope
    is ``encoders.INSPECT``'s); values a secret detector
    matches (in env, labels, history, layer commands) are masked unless ``show_secrets``."""
    from imagewise.oci.model import Platform
    from imagewise.secrets.mask import redact, redact_labels
    from imagewise.sources import open_source

    def shown(t: str) -> str:
        return t if show_secrets else redact(t)

    wanted = Platform.parse(platform) if platform else None
    with open_source(text, insecure=insecure) as src:
        img = src.image(wanted)
        cfg = img.config
        history = cfg.layer_history()
        return {
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
                    "created_by": shown(_created_by(history, i)),
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
                "env": [shown(e) for e in cfg.env],
                "entrypoint": list(cfg.entrypoint) if cfg.entrypoint is not None else None,
                "cmd": list(cfg.cmd) if cfg.cmd is not None else None,
                "working_dir": cfg.workdir,
                "exposed_ports": list(cfg.exposed_ports),
                "volumes": list(cfg.volumes),
                "labels": dict(cfg.labels) if show_secrets else redact_labels(cfg.labels),
                "history": [
                    {
                        "created": h.created or None,
                        "created_by": shown(h.created_by),
                        "empty_layer": h.empty_layer,
                        "comment": shown(h.comment) or None,
                    }
                    for h in cfg.history
                ],
            },
        }


def _created_by(history: list[Any], i: int) -> str:
    entry = history[i] if i < len(history) else None
    return str(entry.created_by) if entry is not None else ""


def inspect_table(doc: dict[str, Any]) -> str:
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from imagewise.textsafe import safe

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    cfg = doc["config"]
    rows = [
        ("digest", doc["digest"]),
        ("media type", doc["media_type"]),
        ("platform", doc["platform"]),
        ("size", format_size(doc["size"])),
        ("created", cfg["created"] or "-"),
        ("user", cfg["user"] or "(root)"),
        ("entrypoint", json.dumps(cfg["entrypoint"]) if cfg["entrypoint"] else "-"),
        ("cmd", json.dumps(cfg["cmd"]) if cfg["cmd"] else "-"),
    ]
    if doc["index_digest"]:
        rows.insert(1, ("index", doc["index_digest"]))
    with console.capture() as head:
        console.print(Text(safe(doc["reference"]), style="bold"))
        for k, v in rows:
            console.print(Text(f"  {k:<11} {safe(str(v))}"), soft_wrap=True)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col, kw in (
        ("#", {"justify": "right"}),
        ("size", {"justify": "right"}),
        ("digest", {}),
        ("created by", {"overflow": "ellipsis", "no_wrap": True}),
    ):
        table.add_column(col, **kw)
    for i, layer in enumerate(doc["layers"]):
        table.add_row(
            str(i),
            format_size(layer["size"]),
            layer["digest"][7:19],
            Text(safe(layer["created_by"] or "")),
        )
    with console.capture() as captured:
        console.print(table)
    return head.get() + "".join(line.rstrip() + "\n" for line in captured.get().splitlines())
