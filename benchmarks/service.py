"""``imagewise serve`` under a burst of pushes: a real registry notifies the service of 200
pushes (``--pushes``) of distinct small images; the service checks each digest once.

Prints: images checked per minute with the default workers, time from push to result
(median, p95), whether every push was checked exactly once (none lost, none twice), and the
service process's peak RSS.

    python benchmarks/service.py [--pushes 200] [--workers 2]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    import httpx
    from fixtures_registry import push_image, start_registry, stop_registry
    from sqlalchemy import func, select
    from storage_support import image

    from imagewise.service.db import jobs, results
    from imagewise.service.run import Service
    from imagewise.service.tokens import create_token

    with tempfile.TemporaryDirectory(prefix="iw-bench-serve-") as tmp:
        work = Path(tmp)
        policy = work / "policy.yaml"
        policy.write_text("extends: none\n")
        svc = Service(db_url=f"sqlite:///{work / 's.sqlite'}", secret="bench", port=0, workers=args.workers, policy_file=str(policy))
        svc.start()
        reg = start_registry(work / "reg", notify_url=f"{svc.url}/notifications", secret="bench")
        token = create_token(svc.engine, "bench", "read")
        api = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        try:
            images = [image([20000 + i]) for i in range(args.pushes)]
            pushed: dict[str, float] = {}
            start = time.perf_counter()
            for i, img in enumerate(images):
                push_image(reg, f"burst{i % 20}", f"t{i}", img)
                pushed[img.manifest_digest] = time.perf_counter()
            done: dict[str, float] = {}
            deadline = time.perf_counter() + 600
            while len(done) < len(pushed) and time.perf_counter() < deadline:
                for row in api.get("/api/v1/images").json():
                    if row["status"] != "pending" and row["digest"] in pushed and row["digest"] not in done:
                        done[row["digest"]] = time.perf_counter()
                time.sleep(0.2)
            total = time.perf_counter() - start
            with svc.engine.begin() as conn:
                checks = dict(conn.execute(select(results.c.digest, func.count()).group_by(results.c.digest)).all())
                failed = conn.execute(select(func.count()).where(jobs.c.state == "failed")).scalar_one()
            latencies = sorted(done[d] - pushed[d] for d in done)
            lost = len(pushed) - len(done)
            twice = sum(1 for n in checks.values() if n > 1)
            p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("nan")
            print(f"{args.pushes} pushes, {args.workers} workers: {len(done)} checked in {total:.1f} s "
                  f"= {len(done) / total * 60:.0f} images/minute")
            print(f"push -> result: median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s")
            print(f"lost {lost}, checked twice {twice}, failed jobs {failed}: "
                  f"{'PASS' if lost == 0 and twice == 0 else 'FAIL'}")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"service process peak RSS {rss:.0f} MB (service and pushing client share the process)")
        finally:
            stop_registry(reg)
            svc.close()


if __name__ == "__main__":
    main()
