"""``imagewise copy`` against ``skopeo copy`` on the same ~200 MB image, side by side.

Usage: python benchmarks/copy_image.py [--size-mb 200] [--layers 6] [--repeat 3] [--jobs 6]

Setup (not timed): builds (once, cached in ``benchmarks/.work/``) an OCI image of ``--layers`` gzip layers totalling about ``--size-mb``
(file-like content: text, partly-random binaries, already-compressed data), starts a source
CNCF distribution registry on loopback and pushes the image there.

Timed, each tool as a fresh process (start-up included, as a user sees it), best of
``--repeat``, every trial into a fresh destination so nothing is skipped or mounted:

* registry -> registry: to a second registry on loopback, started fresh per trial (skopeo
  remembers blob locations in its blob-info cache, a fresh registry keeps that from helping);
* registry -> OCI layout: into a new directory (a loop of its own after one untimed copy by
  each tool, the order rotating every trial; see ``to_layout``).

Both tools copy the image as is (OCI manifest, no conversion); the destination digests are
checked equal to the source digest. Each trial also times curl sending every blob file at
once into a fresh registry (``ingest_floor``: the registry's work with almost no client's, a
curl process and a POST a blob on top), and curl fetching every blob at once from the source
(``pull_floor``). Each registry -> registry copy also counts the CPU seconds both registries
spend on it (``proc_cpu``): their sum over the machine's cores bounds every copy from below, a
client that took no CPU at all included. Dirty
pages are flushed (``sync``) before each layout copy, so no tool pays for the last one's
writes. A third run calls the library (``imagewise.copy.copy``) in
this already-warm process, to separate transfer speed from interpreter start-up. Prints wall times and the ratio imagewise / skopeo
(target <= 1.0), plus each tool's own CPU seconds (user + sys), which stay meaningful when the
machine is busy with other work and wall times get noisy.

imagewise runs with its bytecode cached (as after ``pip install``); the cache lives in the
benchmark's temporary directory, so an environment with ``PYTHONDONTWRITEBYTECODE`` does not
charge every run the compilation of the package.
"""

from __future__ import annotations

import os
import sys

# this file is named like the stdlib module ``copy``: keep its directory off the import path
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import io
import json
import random
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    def __init__(self, root: Path) -> None:
        import httpx

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        cfg = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": str(root / "storage")},
                           "delete": {"enabled": True}},
               "http": {"addr": f"127.0.0.1:{self.port}", "secret": uuid.uuid4().hex}}
        (root / "config.yml").write_text(json.dumps(cfg))
        self.log = open(root / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v2/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("registry did not start")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


_TEXT: bytes = b""


def _content(rng: random.Random, size: int) -> bytes:
    global _TEXT
    if not _TEXT:  # 4 MB of source-like text to cut text files from
        vocab = ("def", "return", "import", "class", "self", "value", "config", "\n", "    ", "=",
                 "(", ")", "name", "path", "os", "data", "for", "in", "if", "not", "None", "0")
        _TEXT = " ".join(rng.choice(vocab) for _ in range(1_000_000)).encode()
    kind = rng.random()
    if kind < 0.45:  # text: source and config files
        start = rng.randrange(0, max(1, len(_TEXT) - size))
        return (_TEXT[start:start + size] * (size // len(_TEXT) + 1))[:size]
    if kind < 0.8:  # binaries: structured with random runs
        out = bytearray()
        while len(out) < size:
            out += rng.randbytes(rng.randint(16, 256)) + bytes(rng.randint(16, 512))
        return bytes(out[:size])
    return rng.randbytes(size)  # compressed data (jpg, zip, .gz)


def build_image(size_mb: int, layers: int, seed: int = 42) -> tuple[object, int]:
    from fixtures_images import build_image as build

    rng = random.Random(seed)
    per_layer = size_mb * 1_000_000 // layers
    tars = []
    for i in range(layers):
        buf = io.BytesIO()
        n = 0
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            j = 0
            while n < per_layer * 2.3:  # gzip shrinks this mix to about 43%
                data = _content(rng, min(int(rng.lognormvariate(9, 1.5)) + 1, 4_000_000))
                ti = tarfile.TarInfo(f"layer{i}/dir{j % 37}/file{j}.bin")
                ti.size, ti.mtime = len(data), 1_700_000_000
                tf.addfile(ti, io.BytesIO(data))
                n += len(data)
                j += 1
        tars.append(buf.getvalue())
    img = build(tars, compression="gzip")
    return img, sum(len(b) for d, b in img.blobs.items() if d != img.config_digest)


ENV: dict[str, str] = dict(os.environ)


def with_bytecode(env: dict[str, str], work: Path) -> dict[str, str]:
    """``env`` changed so imagewise runs with its bytecode cached, as after ``pip install``: this
    sandbox sets PYTHONDONTWRITEBYTECODE, which would charge every timed run the compilation of
    each module edited since its cache was last written. The cache goes under ``work``. The
    package is compiled here, before any timing."""
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    src = ROOT / "src" / "imagewise"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, env=env,
                   capture_output=True)
    return env


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys) of one run of ``cmd``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=ENV)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def in_process(src: str, dst: str, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``imagewise.copy.copy`` called in this (warm) process."""
    from imagewise.copy import copy

    t, c = time.perf_counter(), time.process_time()
    copy(src, dst, jobs=jobs)
    return time.perf_counter() - t, time.process_time() - c


def ingest_floor(layout: Path, host: str) -> float:
    """Wall seconds the destination registry takes to accept every blob of the image, sent by
    curl (monolithic PUTs of the blob files, all at once, each after a POST starting its
    upload): the registry's own work with little client's (a curl process a blob)."""
    import concurrent.futures

    import httpx

    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)

    def put(path: Path) -> None:
        loc = httpx.post(f"http://{host}/v2/bench/floor/blobs/uploads/").headers["Location"]
        url = loc if loc.startswith("http") else f"http://{host}{loc}"
        url += ("&" if "?" in url else "?") + f"digest=sha256:{path.name}"
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H",
                        "Content-Type: application/octet-stream", "--data-binary", f"@{path}", url],
                       check=True)

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(blobs)) as pool:
        list(pool.map(put, blobs))
    return time.perf_counter() - t


def pull_floor(layout: Path, host: str) -> float:
    """Wall seconds the source registry takes to serve every blob of the image to curl (all at
    once, written nowhere): the least any registry -> layout copy can take here."""
    import concurrent.futures

    manifest = json.loads((layout / "blobs" / "sha256" / oci_digest(layout)[7:]).read_bytes())
    blobs = [d["digest"] for d in [manifest["config"], *manifest["layers"]]]

    def get(digest: str) -> None:
        subprocess.run(["curl", "-sf", "-o", "/dev/null",
                        f"http://{host}/v2/bench/image/blobs/{digest}"], check=True)

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(blobs)) as pool:
        list(pool.map(get, blobs))
    return time.perf_counter() - t


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + sys) process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def oci_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=6)
    args = ap.parse_args()
    from fixtures_images import write_oci_layout

    script = Path(sys.executable).with_name("imagewise")  # the console script users run
    imagewise = [str(script)] if script.exists() else [sys.executable, "-m", "imagewise"]
    skopeo = ["skopeo", "--insecure-policy"]
    work = Path(tempfile.mkdtemp(prefix="imagewise-bench-copy-"))
    with_bytecode(ENV, work)
    src_reg = None
    try:
        t = time.perf_counter()
        layout = ROOT / "benchmarks" / ".work" / f"copy-{args.size_mb}mb-{args.layers}"
        if not (layout / "index.json").exists():
            img, _ = build_image(args.size_mb, args.layers)
            write_oci_layout(img, layout, "1")  # type: ignore[arg-type]
        digest = oci_digest(layout)
        size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        src_reg = Registry(work / "src-registry")
        src = f"docker://{src_reg.host}/bench/image:1"
        subprocess.run([*imagewise, "copy", f"oci:{layout}:1", src], check=True, capture_output=True,
                       env=ENV)  # also warms the bytecode cache
        print(f"image: {args.layers} layers, {size / 1e6:.1f} MB, {digest[:19]}; "
              f"setup {time.perf_counter() - t:.1f}s")

        results: dict[str, dict[str, tuple[float, float]]] = {
            "registry -> registry": {}, "registry -> oci layout": {}}

        def record(case: str, tool: str, run: tuple[float, float]) -> None:
            best = results[case].get(tool)
            if best is None or run[0] < best[0]:
                results[case][tool] = run

        floors: list[float] = []
        pulls: list[float] = []
        registry_cpu: list[tuple[float, float]] = []  # (destination, source) CPU-s of each copy
        for trial in range(args.repeat):
            dst_reg = Registry(work / f"dst-floor-{trial}")
            try:
                floors.append(ingest_floor(layout, dst_reg.host))
            finally:
                dst_reg.stop()
            for tool in ("skopeo", "imagewise", "library"):
                dst_reg = Registry(work / f"dst-{tool}-{trial}")
                try:
                    dst = f"docker://{dst_reg.host}/bench/copy:1"
                    if tool == "skopeo":
                        cmd = [*skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                               "--all", "--preserve-digests", src, dst]
                    else:
                        cmd = [*imagewise, "copy", "--jobs", str(args.jobs), src, dst]
                    before = proc_cpu(dst_reg.proc.pid), proc_cpu(src_reg.proc.pid)
                    run = in_process(src, dst, args.jobs) if tool == "library" else timed(cmd)
                    time.sleep(0.2)  # the registry's last writes of the manifest and tag
                    used = (proc_cpu(dst_reg.proc.pid) - before[0],
                            proc_cpu(src_reg.proc.pid) - before[1])
                    registry_cpu.append(used)
                    got = subprocess.run(["skopeo", "inspect", "--tls-verify=false", dst],
                                         capture_output=True, text=True, check=True).stdout
                    assert json.loads(got)["Digest"] == digest, f"{tool}: digest changed"
                finally:
                    dst_reg.stop()
                record("registry -> registry", tool, run)

        def to_layout(tool: str, out: Path) -> tuple[float, float]:
            if tool == "skopeo":
                cmd = [*skopeo, "copy", "--src-tls-verify=false", "--all", "--preserve-digests",
                       src, f"oci:{out}:1"]
            else:
                cmd = [*imagewise, "copy", "--jobs", str(args.jobs), src, f"oci:{out}:1"]
            os.sync()  # the last run's writes are flushed, not charged to this one
            run = in_process(src, f"oci:{out}:1", args.jobs) if tool == "library" else timed(cmd)
            assert oci_digest(out) == digest, f"{tool}: oci digest changed"
            shutil.rmtree(out)
            return run

        # registry -> layout in a loop of its own, after one untimed copy by each tool: the first
        # big write after the registries' (whichever tool makes it) pays about a second of the
        # kernel's time here, which would decide the race; the order rotates every trial
        tools = ["skopeo", "imagewise", "library"]
        for tool in tools:
            to_layout(tool, work / f"oci-warm-{tool}")
        for trial in range(args.repeat):
            for tool in tools[trial % 3:] + tools[: trial % 3]:
                record("registry -> oci layout", tool, to_layout(tool, work / f"oci-{tool}-{trial}"))
            os.sync()
            pulls.append(pull_floor(layout, src_reg.host))

        print(f"\n{'case':<24}{'skopeo':>8}{'imagewise':>11}{'ratio':>8}   {'cpu: skopeo':>12}"
              f"{'imagewise':>10}   (best wall of {args.repeat}, seconds)")
        for case, r in results.items():
            (sw, sc), (iw, ic) = r["skopeo"], r["imagewise"]
            verdict = "ok" if iw / sw <= 1.0 else "SLOWER"
            print(f"{case:<24}{sw:>8.2f}{iw:>11.2f}{iw / sw:>7.2f}x   {sc:>12.2f}{ic:>10.2f}   {verdict}")
        floor = min(floors)
        print(f"\ncurl sends the image's blobs into a fresh registry in {floor:.2f}s (parallel "
              f"PUTs, a curl process each) = "
              f"{floor / results['registry -> registry']['skopeo'][0]:.2f}x skopeo")
        dst_cpu, src_cpu = min(registry_cpu, key=sum)
        cores = os.cpu_count() or 1
        bound = (dst_cpu + src_cpu) / cores
        print(f"the registries themselves spend {dst_cpu + src_cpu:.2f} CPU-s on one copy "
              f"(destination {dst_cpu:.2f}, source {src_cpu:.2f}; least of every copy): on "
              f"{cores} cores no registry -> registry copy here, even by a client that takes no "
              f"CPU, beats {bound:.2f}s = {bound / results['registry -> registry']['skopeo'][0]:.2f}x "
              f"skopeo")
        pull = min(pulls)
        print(f"the source registry alone serves them in {pull:.2f}s (curl, parallel GETs to "
              f"/dev/null): no registry -> layout copy here beats "
              f"{pull / results['registry -> oci layout']['skopeo'][0]:.2f}x skopeo")
        print("\nthe same copies as one library call in a warm process (no interpreter start-up):")
        for case, r in results.items():
            lw, lc = r["library"]
            print(f"{case:<24}{'':>8}{lw:>11.2f}{lw / r['skopeo'][0]:>7.2f}x   {'':>12}{lc:>10.2f}")
    finally:
        if src_reg is not None:
            src_reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
