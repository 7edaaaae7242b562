"""``imagewise backup`` / ``restore`` against ``skopeo sync`` to and from a directory, side by
side in one run, on 20 repositories sharing a base (the images of ``benchmarks/sync.py``).

Timed, each tool as a fresh process, best of ``--repeat``:

* full backup: ``imagewise backup run REGISTRY --to STORE --kind full`` vs ``skopeo sync --src
  yaml --dest dir`` of the same repositories; bytes on disk of each (ours stores a shared blob
  once, a skopeo dir stores it per image);
* no-change incremental: ``imagewise backup run`` again (target: at most 2% of the full backup's
  time, 0 blob bytes added);
* restore: ``imagewise restore latest --to REGISTRY`` vs ``skopeo sync --src dir --dest docker``
  back into a fresh registry each (target: at most 1.0x skopeo's time).

    python benchmarks/backup.py [--base-mb 100] [--repeat 2]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t, proc.stdout


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-mb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "benchmarks")]
    import importlib.util

    from copy_image import Registry, with_bytecode

    spec = importlib.util.spec_from_file_location("bench_sync", ROOT / "benchmarks" / "sync.py")
    assert spec and spec.loader
    bench_sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_sync)
    skopeo = shutil.which("skopeo")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    iw = [sys.executable, "-m", "imagewise"]
    with tempfile.TemporaryDirectory(prefix="iw-bench-backup-") as tmp:
        work = Path(tmp)
        with_bytecode(env, work)
        src = Registry(work / "src")
        regs = [src]
        try:
            bench_sync._push_images(src.host, args.base_mb)
            cfg = work / "sync.yaml"
            cfg.write_text(
                f"{src.host}:\n  tls-verify: false\n  images:\n"
                + "".join(f"    app{i:02d}: ['1.0']\n" for i in range(20))
            )
            full, inc, restore, sk_dir, sk_back = [], [], [], [], []
            disk_ours = disk_sk = added = 0
            for trial in range(args.repeat):
                store = work / f"store{trial}"
                t, _ = _run([*iw, "backup", "run", src.host, "--to", str(store), "--kind", "full"], env)
                full.append(t)
                disk_ours = _disk(store / "blobs")
                t, out = _run([*iw, "backup", "run", src.host, "--to", str(store), "--format", "json"], env)
                inc.append(t)
                added = json.loads(out)["totals"]["added_bytes"]
                dst = Registry(work / f"back-iw-{trial}")
                regs.append(dst)
                t, _ = _run([*iw, "restore", "latest", "--store", str(store), "--to", dst.host], env)
                restore.append(t)
                if skopeo:
                    d = work / f"skdir{trial}"
                    t, _ = _run([skopeo, "--insecure-policy", "sync", "--src", "yaml", "--dest", "dir", str(cfg), str(d)])
                    sk_dir.append(t)
                    disk_sk = _disk(d)
                    back = Registry(work / f"back-sk-{trial}")
                    regs.append(back)
                    t, _ = _run([skopeo, "--insecure-policy", "sync", "--src", "dir", "--dest", "docker",
                                 "--dest-tls-verify=false", str(d), f"{back.host}/mirror"])
                    sk_back.append(t)
            print(f"20 repositories sharing a {args.base_mb} MB base; best of {args.repeat}")
            f = min(full)
            line = f"full backup    imagewise {f:.2f} s, {disk_ours / 1e6:.1f} MB on disk"
            if sk_dir:
                line += f"   skopeo sync to dir {min(sk_dir):.2f} s, {disk_sk / 1e6:.1f} MB on disk"
                line += f"   ratio {f / min(sk_dir):.2f}x"
            print(line)
            i = min(inc)
            print(f"incremental    imagewise {i:.2f} s = {i / f * 100:.1f}% of the full backup "
                  f"(target <= 2%): {'PASS' if i / f <= 0.02 else 'FAIL'}; {added} blob bytes added "
                  f"(target 0): {'PASS' if added == 0 else 'FAIL'}")
            r = min(restore)
            line = f"restore        imagewise {r:.2f} s"
            if sk_back:
                ratio = r / min(sk_back)
                line += f"   skopeo sync back {min(sk_back):.2f} s   ratio {ratio:.2f}x (target <= 1.0x): "
                line += "PASS" if ratio <= 1.0 else "FAIL"
            print(line)
        finally:
            for reg in regs:
                reg.stop()


if __name__ == "__main__":
    main()
