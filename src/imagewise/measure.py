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


class _Runs:
    """Timed runs of one measurement of ``image``; the median is the figure."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.runs: list[float] = []

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "runs": [round(r, 4) for r in self.runs],
            "seconds": round(self.seconds, 4),
        }


class PullMeasure(_Runs):
    def __init__(self, image: str) -> None:
        super().__init__(image)
        self.layers: list[dict[str, Any]] = []
        self.bytes = 0

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
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


class StartupMeasure(_Runs):
    def __init__(self, image: str, ready_by: str, command: list[str]) -> None:
        super().__init__(image)
        self.ready_by = ready_by  # how readiness was seen
        self.command = command

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "ready_by": self.ready_by, "command": self.command}


#: the line the HEALTHCHECK wrapper prints once the check passes
READY_MARK = "imagewise-startup-ready-3f9c"


def _healthcheck(config: Any) -> str | None:
    """The image's HEALTHCHECK as a shell command (``CMD`` or ``CMD-SHELL``), or None."""
    import shlex

    test = (config.healthcheck or {}).get("Test") if config is not None else None
    if not isinstance(test, list) or not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL" and len(test) > 1:
        # one string as Docker writes it; buildah's --healthcheck splits it into words
        return " ".join(str(a) for a in test[1:])
    if test[0] == "CMD" and len(test) > 1:
        return shlex.join(str(a) for a in test[1:])
    return None


def _with_healthcheck(argv: list[str], check: str) -> list[str]:
    """One process that starts ``argv`` and prints ``READY_MARK`` once ``check`` passes, as
    the runtime's health checker would see it (the check runs beside the process, in the same
    container; a second ``buildah run`` into a running container is not reliable)."""
    script = (
        f'"$@" & until ( {check} ) >/dev/null 2>&1; do sleep 0.05; done; echo {READY_MARK}; wait'
    )
    return ["/bin/sh", "-c", script, "sh", *argv]


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def measure_startup(
    image: str,
    *,
    command: list[str] | None = None,
    log: str | None = None,
    port: int | None = None,
    runs: int = 3,
    timeout: float = 60.0,
    insecure: bool = False,
) -> StartupMeasure:
    """Start the image's entrypoint (or ``command``) ``runs`` times, each in a fresh container,
    and time it until it is ready: a line of its output matches ``log``, ``port`` accepts
    connections, or else the image's HEALTHCHECK passes (checked beside the process in the same
    container, by ``/bin/sh``, which images with a shell-form check have). Median reported."""
    import os
    import re
    import signal
    import threading

    from imagewise.errors import ImagewiseError
    from imagewise.runtime import BuildahRuntime, quiet
    from imagewise.sources import open_source

    if runs < 1:
        raise UsageError("--runs must be at least 1")
    try:
        pattern = re.compile(log) if log else None
    except re.error as e:
        raise UsageError(f"--log {log!r} is not a regular expression: {e}") from None
    with open_source(image, insecure=insecure) as src:
        config = src.image().config
    argv = command or [*(config.entrypoint or []), *(config.cmd or [])]
    if not argv:
        raise UsageError(f"{image}: no ENTRYPOINT or CMD to start; give a command")
    health = None if (pattern or port) else _healthcheck(config)
    if pattern is None and port is None and health is None:
        raise UsageError(f"{image} has no HEALTHCHECK: say when it is ready with --log or --port")
    ready_by = f"log /{log}/" if log else (f"port {port}" if port else "HEALTHCHECK")
    result = StartupMeasure(image, ready_by, argv)
    started_argv = argv
    if health is not None:
        started_argv = _with_healthcheck(argv, health)
        pattern = re.compile(f"^{READY_MARK}$")
    runtime = BuildahRuntime(insecure=insecure)
    for _ in range(runs):
        with runtime.container(image) as ctr:
            seen = threading.Event()
            output: list[str] = []
            started = time.perf_counter()
            proc = runtime.popen(ctr, started_argv)

            def read(
                proc: Any = proc, seen: threading.Event = seen, out: list[str] = output
            ) -> None:
                for line in proc.stdout:
                    if quiet(line) != line.rstrip("\n"):
                        continue  # buildah's own words about the exit, not the image's output
                    if line.rstrip("\n") != READY_MARK:
                        out.append(line)
                    if pattern is not None and pattern.search(line):
                        seen.set()

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            took: float | None = None
            try:
                while time.perf_counter() - started < timeout:
                    if seen.is_set() or (port is not None and _port_open(port)):
                        took = time.perf_counter() - started
                        break
                    if proc.poll() is not None and not seen.is_set():
                        reader.join(1)
                        if seen.is_set():
                            continue
                        tail = " | ".join("".join(output).splitlines()[-3:])
                        raise ImagewiseError(
                            f"{image}: exited with {proc.returncode} before it was ready "
                            f"({ready_by}){': ' + tail if tail else ''}"
                        )
                    time.sleep(0.02)
            finally:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait()
                reader.join(5)
            if took is None:
                raise ImagewiseError(f"{image}: not ready ({ready_by}) within {timeout:g}s")
            result.runs.append(took)
    return result


def startup_table(result: StartupMeasure) -> str:
    runs = ", ".join(f"{r:.3f}s" for r in result.runs)
    return (
        f"{result.image}: ready ({result.ready_by}) in {result.seconds:.3f}s "
        f"(median of {len(result.runs)}: {runs})\n"
    )
