"""A synthetic fleet checked by the service's workers: the cost grows with unique layers.

``--images`` images (default 2,000) on a local ``docker-registry``, built from ``--bases``
base layers (default 40; each holds Python packages with known advisories, so the SBOMs have
something to match) and one random app layer each. For 1, 2 and 4 worker processes
(``imagewise worker``, each on a fresh service database, so nothing is shared between runs),
every image's check is queued and timed until the last is done. Printed per run:

* layers analysed (layers actually read: ``layer`` jobs that analysed one, plus layers a check
  read itself, from the jobs' outcomes) against the unique layers and the layers referenced:
  analysed must equal unique;
* throughput (images/s) and the speed-up over one worker;
* the cost per unique layer and the projected time for 100,000 images of the same shape.

Then the vulnerability database is imported (the PyPA advisories of the corpus) and every
stored SBOM re-matched with the registry stopped: no layer can be read; its time is printed.
The model behind the projection is in docs/scaling.md.

Checks are split by content (``split_layers: true``: one ``layer`` job per unique layer, then
each image's check joins them); ``--no-split`` runs whole checks sharing only the results
(two workers meeting a new base at once may then both read it).

    python benchmarks/fleet.py [--images 2000] [--bases 40] [--workers 1,2,4] [--no-split]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import io
import random
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests"), str(ROOT / "src")]

#: old versions with advisories in the corpus (PyPA)
PACKAGES = {"requests": "2.19.0", "urllib3": "1.24.1", "Jinja2": "2.10", "PyYAML": "5.3.1"}


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def base_layer(i: int, rng: random.Random) -> bytes:
    files = {f"usr/lib/base{i}/lib{j}.so": rng.randbytes(rng.randint(2_000, 60_000)) for j in range(40)}
    site = "usr/lib/python3.11/site-packages"
    for name, version in PACKAGES.items():
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        files[f"{site}/{name}-{version}.dist-info/METADATA"] = meta
    return _tar(files)


def app_layer(n: int, rng: random.Random) -> bytes:
    return _tar({f"app/{n}/f{j}.py": rng.randbytes(rng.randint(200, 8_000)) for j in range(12)})


def build_fleet(registry: object, images: int, bases: int) -> list[tuple[str, str]]:
    """Push the fleet; (repository, digest) of each image."""
    from fixtures_images import build_image

    from imagewise.oci.model import parse_manifest
    from imagewise.reference import ImageReference
    from imagewise.sources.registry import RegistrySink

    rng = random.Random(7)
    base_tars = [base_layer(i, rng) for i in range(bases)]
    out = []
    for n in range(images):
        img = build_image([base_tars[n % bases], app_layer(n, rng)], compression="gzip")
        repo = f"fleet/app{n % 50}"
        sink = RegistrySink(ImageReference.parse(f"{registry.host}/{repo}:v{n}"))  # type: ignore[attr-defined]
        manifest = parse_manifest(img.manifest)
        for desc in (manifest.config, *manifest.layers):  # type: ignore[union-attr]
            if not sink.has_blob(desc):
                sink.put_blob(desc, io.BytesIO(img.blobs[str(desc.digest)]))
        sink.put_manifest(manifest, top=True)
        out.append((repo, str(manifest.digest)))
    return out


def run(
    work: Path, registry: object, fleet: list[tuple[str, str]], workers: int, split: bool
) -> dict[str, float]:
    import re

    from sqlalchemy import select

    from imagewise.service.db import jobs
    from imagewise.service.run import Service

    db = f"sqlite:///{work / f'fleet-{workers}.sqlite'}"
    config = work / "imagewise.yaml"
    config.write_text(f"split_layers: {'true' if split else 'false'}\n")
    svc = Service(
        db_url=db,
        secret="bench",
        port=0,
        worker_processes=workers,
        workers=1,
        config={"split_layers": split},
        config_file=str(config),
    )
    host = registry.host  # type: ignore[attr-defined]
    svc.start()
    time.sleep(3.0)  # the worker processes up (their start-up is not the fleet's cost)
    started = time.perf_counter()
    for n, (repo, digest) in enumerate(fleet):
        payload = {"registry": host, "repository": repo, "tag": f"v{n}", "digest": digest, "insecure": True}
        svc.queue.submit("check", f"check:{digest}", payload)
    try:
        while True:
            depth = svc.queue.depth()
            if depth.get("queued", 0) + depth.get("running", 0) == 0:
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        with svc.engine.begin() as conn:
            ended = conn.execute(select(jobs.c.kind, jobs.c.outcome).where(jobs.c.state == "done")).all()
        analysed = sum(1 for kind, outcome in ended if kind == "layer" and outcome == "analysed")
        for kind, outcome in ended:
            read = re.search(r"(\d+) analysed$", outcome or "") if kind == "check" else None
            analysed += int(read.group(1)) if read else 0
        failed = depth.get("failed", 0)
    finally:
        svc.close()
    return {"seconds": seconds, "analysed": float(analysed), "failed": float(failed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--bases", type=int, default=40)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--no-split", dest="split", action="store_false", help="whole checks, no layer jobs")
    args = ap.parse_args()
    from copy_image import Registry

    with tempfile.TemporaryDirectory(prefix="iw-bench-fleet-") as tmp:
        work = Path(tmp)
        os.environ["IMAGEWISE_DB"] = str(work / "osv.sqlite")  # no advisories during the checks
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")
        registry = Registry(work / "registry")
        try:
            t = time.perf_counter()
            fleet = build_fleet(registry, args.images, args.bases)
            print(f"fleet: {args.images} images from {args.bases} bases pushed in {time.perf_counter() - t:.1f} s; "
                  f"checks {'split into layer jobs' if args.split else 'whole (--no-split)'}")
            unique = args.bases + args.images
            referenced = 2 * args.images
            base_rate = None
            last_db = ""
            for w in [int(x) for x in args.workers.split(",")]:
                r = run(work, registry, fleet, w, args.split)
                rate = args.images / r["seconds"]
                base_rate = base_rate or rate
                per_layer = r["seconds"] * w / unique  # worker-seconds per unique layer
                projected = per_layer * (100_000 + args.bases) / w
                print(
                    f"{w} worker(s): {r['seconds']:.1f} s, {rate:.1f} images/s "
                    f"(x{rate / base_rate:.2f}); layers analysed {int(r['analysed'])} / unique "
                    f"{unique} / referenced {referenced} "
                    f"({'OK' if int(r['analysed']) == unique else 'MISMATCH'}); failed {int(r['failed'])}; "
                    f"{per_layer * 1000:.1f} worker-ms per unique layer; 100,000 images: "
                    f"{projected / 60:.1f} min"
                )
                last_db = f"sqlite:///{work / f'fleet-{w}.sqlite'}"
        finally:
            registry.stop()  # from here on nothing can be read from the registry
        from cli_runner import CliRunner
        from conftest import corpus

        from imagewise.cli.main import cli
        from imagewise.service.db import connect
        from imagewise.service.rematch import rematch

        CliRunner().invoke(cli, ["db", "import", "--db", os.environ["IMAGEWISE_DB"], str(corpus("osv", "pypa-advisory-database"))])
        engine = connect(last_db)
        t = time.perf_counter()
        done = rematch(engine, Path(os.environ["IMAGEWISE_DB"]))
        print(
            f"re-match after a DB update, registry stopped: {done['images']} SBOMs in "
            f"{time.perf_counter() - t:.2f} s, {len(done['changed'])} images with new advisories"
        )


if __name__ == "__main__":
    main()
