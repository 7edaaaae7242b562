"""``imagewise sync`` against ``skopeo sync`` (20 images sharing a base, between two loopback
registries), a no-change re-sync, and ``imagewise du`` time per tag at 50, 100 and 200 tags.

Setup (not timed): a source CNCF distribution registry with 20 repositories ``app00..app19``,
each one image ``1.0``: two shared base layers (``--base-mb`` in all) and a small layer of its
own. Both tools read the same skopeo sync YAML (``images: {appNN: ["1.0"]}``, ``tls-verify:
false``) and write to ``DEST/mirror`` in a fresh destination registry each (so neither finds
blobs already there).

Timed, each tool as a fresh process, best of ``--repeat``:

* first sync, each tool into its own fresh destination; target: imagewise <= 0.5x skopeo;
* re-sync with nothing new, into the destination the first run filled; target: <= 0.1x of
  imagewise's first run;
* bytes imagewise uploaded (its JSON ``bytes_copied``) against the unique blob bytes of the 20
  images: every blob once;
* ``imagewise du`` of one repository with 50, 100 and 200 tags (distinct images), seconds per
  tag, to show it grows linearly.

    python benchmarks/sync.py [--base-mb 20] [--repeat 3]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 20


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
    out = proc
    return time.perf_counter() - t, out.stdout


def _push_images(host: str, base_mb: int) -> int:
    """20 images sharing a base; returns the unique blob bytes."""
    import io

    from fixtures_images import build_image, write_oci_layout

    from imagewise.copy import copy

    rng = random.Random(7)

    def tar(name: str, size: int) -> bytes:
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = rng.randbytes(size // 2) + bytes(size // 2)  # half compressible
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    base = [tar("base/a.bin", base_mb * 500_000), tar("base/b.bin", base_mb * 500_000)]
    unique: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(IMAGES):
            img = build_image([*base, tar(f"app/{i}.bin", 200_000)])
            for digest, blob in img.blobs.items():
                unique[digest] = len(blob)
            unique[img.digest] = len(img.manifest)
            src = write_oci_layout(img, Path(tmp) / f"l{i}", "1.0")
            copy(src, f"docker://{host}/app{i:02d}:1.0")
    return sum(v for k, v in unique.items())


def _du_repo(host: str, n: int) -> str:
    from fixtures_images import build_image, write_oci_layout

    from imagewise.copy import copy

    repo = f"du{n}"
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            img = build_image([f"tag {i}\n".encode()])
            copy(write_oci_layout(img, Path(tmp) / f"d{i}", "t"), f"docker://{host}/{repo}:t{i:04d}")
    return repo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-mb", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "benchmarks")]
    from copy_image import Registry, with_bytecode

    skopeo = shutil.which("skopeo")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    iw = [sys.executable, "-m", "imagewise"]
    with tempfile.TemporaryDirectory(prefix="iw-bench-sync-") as tmp:
        work = Path(tmp)
        with_bytecode(env, work)
        src = Registry(work / "src")
        regs = [src]
        try:
            unique = _push_images(src.host, args.base_mb)
            cfg = work / "sync.yaml"
            cfg.write_text(
                f"{src.host}:\n  tls-verify: false\n  images:\n"
                + "".join(f"    app{i:02d}: ['1.0']\n" for i in range(IMAGES))
            )
            first = {"imagewise": [], "skopeo": []}
            resync: list[float] = []
            uploaded = 0
            for trial in range(args.repeat):
                d1 = Registry(work / f"dst-iw-{trial}")
                regs.append(d1)
                t, out = _run([*iw, "sync", str(cfg), f"docker://{d1.host}/mirror", "--format", "json"], env)
                first["imagewise"].append(t)
                uploaded = json.loads(out)["bytes_copied"]
                t, out = _run([*iw, "sync", str(cfg), f"docker://{d1.host}/mirror", "--format", "json"], env)
                assert json.loads(out)["counts"] == {"up-to-date": IMAGES}
                resync.append(t)
                if skopeo:
                    d2 = Registry(work / f"dst-sk-{trial}")
                    regs.append(d2)
                    t, _ = _run([skopeo, "--insecure-policy", "sync", "--src", "yaml", "--dest", "docker",
                                 "--dest-tls-verify=false", str(cfg), f"{d2.host}/mirror"])
                    first["skopeo"].append(t)
            print(f"{IMAGES} images sharing a {args.base_mb} MB base; best of {args.repeat}")
            iw_first = min(first["imagewise"])
            print(f"first sync   imagewise {iw_first:.2f} s", end="")
            if first["skopeo"]:
                sk = min(first["skopeo"])
                print(f"   skopeo {sk:.2f} s   ratio {iw_first / sk:.2f}x (target <= 0.5x): "
                      f"{'PASS' if iw_first / sk <= 0.5 else 'FAIL'}")
            else:
                print("   (skopeo not installed)")
            r = min(resync)
            print(f"re-sync      imagewise {r:.2f} s   {r / iw_first:.3f}x of the first run "
                  f"(target <= 0.1x): {'PASS' if r / iw_first <= 0.1 else 'FAIL'}")
            print(f"uploaded     {uploaded} bytes; unique blob bytes {unique}: "
                  f"{'PASS' if uploaded <= unique else 'FAIL'}")
            for n in (50, 100, 200):
                repo = _du_repo(src.host, n)
                best = min(_run([*iw, "du", f"{src.host}/{repo}", "--format", "json"], env)[0]
                           for _ in range(args.repeat))
                print(f"du {n:>3} tags  {best:.3f} s   {best / n * 1000:.2f} ms per tag")
        finally:
            for reg in regs:
                reg.stop()


if __name__ == "__main__":
    main()
