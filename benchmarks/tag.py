"""``imagewise tag`` (4 tags, one run) against skopeo doing the same: one ``skopeo copy`` per new
tag within the repository (what crane-style retagging costs without crane), side by side.

A 6-layer image (~12 MB) is pushed to a fresh CNCF distribution registry on loopback; each trial
tags it ``1.4.2``, ``1.4``, ``1`` and ``staging`` (imagewise: ``--semver 1.4.2 --env staging``;
skopeo: four copies ``docker://R/app:build -> docker://R/app:<tag>``), with new tag names per
trial so both always create tags. Both write only manifests: skopeo finds every blob present.
Prints median wall and CPU seconds and the ratio imagewise / skopeo (target: at most 0.5x).

    python benchmarks/tag.py [--trials 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copy_image import ENV, ROOT, Registry, build_image, timed, with_bytecode  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    from fixtures_images import write_oci_layout

    from imagewise.copy import copy

    with tempfile.TemporaryDirectory(prefix="iw-bench-tag-") as tmp:
        work = Path(tmp)
        with_bytecode(ENV, work)
        img, size = build_image(12, 6)
        layout = write_oci_layout(img, work / "layout", "build")
        reg = Registry(work / "registry")
        try:
            base = f"{reg.host}/app"
            copy(layout, f"docker://{base}:build")
            imagewise = [sys.executable, "-m", "imagewise"]
            skopeo = ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
                      "--dest-tls-verify=false", "--quiet"]
            walls: dict[str, list[float]] = {"skopeo": [], "imagewise": []}
            cpus: dict[str, list[float]] = {"skopeo": [], "imagewise": []}
            for trial in range(args.trials):
                major = 10 + trial  # new tag names per trial: every tag is created
                tags = [f"{major}.4.2", f"{major}.4", f"{major}", f"staging{trial}"]
                wall = cpu = 0.0
                for tag in tags:
                    w, c = timed([*skopeo, f"docker://{base}:build", f"docker://{base}:s{tag}"])
                    wall, cpu = wall + w, cpu + c
                walls["skopeo"].append(wall)
                cpus["skopeo"].append(cpu)
                w, c = timed([*imagewise, "tag", f"{base}:build", "--semver", f"{major}.4.2",
                              "--env", f"staging{trial}"])
                walls["imagewise"].append(w)
                cpus["imagewise"].append(c)
            print(f"image: 6 layers, {size / 1e6:.1f} MB compressed; 4 tags; "
                  f"{args.trials} trials (medians)")
            print(f"{'tool':<11}{'wall s':>8}{'cpu s':>8}")
            for tool in ("skopeo", "imagewise"):
                print(f"{tool:<11}{statistics.median(walls[tool]):>8.3f}"
                      f"{statistics.median(cpus[tool]):>8.3f}")
            ratio = statistics.median(walls["imagewise"]) / statistics.median(walls["skopeo"])
            verdict = "PASS" if ratio <= 0.5 else "FAIL"
            print(f"imagewise / skopeo wall time: {ratio:.2f}x (target <= 0.5x): {verdict}")
        finally:
            reg.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
