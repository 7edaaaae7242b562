"""``imagewise measure pull REF``: the time a cold pull of an image takes, layer by layer.

Every blob (config and layers) is fetched from the registry and each layer decompressed to the
end, as a runtime pulling the image would; nothing is cached or written. Reported per layer
(compressed and uncompressed bytes, seconds, MB/s) and in total; ``runs`` repeats the pull and
reports the median. The service uses the same call for its pull-speed metric.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from imagewise.errors import UsageError


class PullMeasure:
    def __init__(self, image: str) -> None:
        self.image = image
        self.layers: list[dict[str, Any]] = []
        self.runs: list[float] = []
        self.bytes = 0

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "runs": [round(r, 4) for r in self.runs],
            "seconds": round(self.seconds, 4),
            "bytes": self.bytes,
            "bytes_per_second": round(self.bytes / self.seconds) if self.seconds else None,
            "layers": self.layers,
        }


def measure_pull(image: str, *, runs: int = 3, insecure: bool = False) -> PullMeasure:
    from imagewise.archive.decompress import open_decompressed
    from imagewise.reference import parse_transport
    from imagewise.sources import open_source

    transport = parse_transport(image)
    if not transport.is_registry:
        raise UsageError(
            f"{image}: measure pull needs a registry image (docker://REGISTRY/REPO:TAG)"
        )
    if runs < 1:
        raise UsageError("--runs must be at least 1")
    result = PullMeasure(image)
    for run in range(runs):
        per_layer = []
        started = time.perf_counter()
        with open_source(image, insecure=insecure) as src:
            img = src.image()
            with src.open_blob(img.manifest.config) as f:
                while f.read(1 << 20):
                    pass
            for layer in img.layers:
                t0 = time.perf_counter()
                plain = 0
                with open_decompressed(
                    src.open_blob(layer.descriptor), layer.media_type, str(layer.digest)
                ) as f:
                    while chunk := f.read(1 << 20):
                        plain += len(chunk)
                took = time.perf_counter() - t0
                per_layer.append(
                    {
                        "digest": str(layer.digest),
                        "compressed_bytes": layer.descriptor.size,
                        "uncompressed_bytes": plain,
                        "seconds": round(took, 4),
                        "mb_per_second": round(layer.descriptor.size / took / 1e6, 1)
                        if took
                        else None,
                    }
                )
            total = img.manifest.config.size + sum(x.descriptor.size for x in img.layers)
        result.runs.append(time.perf_counter() - started)
        if run == 0:
            result.layers, result.bytes = per_layer, total
    return result


def pull_table(result: PullMeasure) -> str:
    from imagewise.units import format_size

    lines = [
        f"  {x['digest'][:19]}  {format_size(x['compressed_bytes']):>10} -> {format_size(x['uncompressed_bytes']):>10}  {x['seconds']:.3f}s"
        for x in result.layers
    ]
    rate = result.bytes / result.seconds if result.seconds else 0
    lines.append(
        f"{result.image}: {format_size(result.bytes)} pulled and decompressed in {result.seconds:.3f}s "
        f"(median of {len(result.runs)}), {format_size(int(rate))}/s"
    )
    return "\n".join(lines) + "\n"
