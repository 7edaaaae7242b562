"""``/metrics``: the service's state in the Prometheus exposition format (prometheus_client).

Per image (``repository``, ``tag``, ``digest`` of every tag the service has seen, so the label
values are bounded by the images it watches): size, layer count, efficiency, wasted and
reclaimable bytes, vulnerabilities by severity, secrets, policy pass; per job state: queue
depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, func, select

from imagewise.service.db import image_refs, results
from imagewise.service.queue import SqlJobQueue


class ServiceCollector:
    def __init__(self, engine: Engine, queue: SqlJobQueue) -> None:
        self.engine, self.queue = engine, queue

    def _job_families(self) -> Iterator[Any]:
        """Jobs that ended, by kind: how many finished and failed, and their running time."""
        from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

        ended = CounterMetricFamily(
            "imagewise_jobs_ended",
            "Jobs that ended, by kind and outcome.",
            labels=["kind", "state"],
        )
        took = SummaryMetricFamily(
            "imagewise_job_duration_seconds",
            "Running time of finished jobs' last attempts, by kind.",
            labels=["kind"],
        )
        done: dict[str, tuple[int, float]] = {}
        for kind, state, n, timed, seconds in _job_rows(self.engine):
            ended.add_metric([kind, state], n)
            if state == "done" and timed:
                count, total = done.get(kind, (0, 0.0))
                done[kind] = (count + timed, total + float(seconds or 0.0))
        for kind, (count, total) in sorted(done.items()):
            took.add_metric([kind], count_value=count, sum_value=total)
        yield ended
        yield took

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["repository", "tag", "digest"]
        fams = {
            "size": GaugeMetricFamily(
                "imagewise_image_size_bytes", "Uncompressed image size.", labels=labels
            ),
            "compressed": GaugeMetricFamily(
                "imagewise_image_compressed_bytes",
                "The image's layers as pulled (compressed).",
                labels=labels,
            ),
            "layers": GaugeMetricFamily("imagewise_image_layers", "Layer count.", labels=labels),
            "efficiency": GaugeMetricFamily(
                "imagewise_image_efficiency", "dive's efficiency score (0-1).", labels=labels
            ),
            "wasted": GaugeMetricFamily(
                "imagewise_image_wasted_bytes", "dive's wasted bytes.", labels=labels
            ),
            "reclaimable": GaugeMetricFamily(
                "imagewise_image_reclaimable_bytes",
                "Bytes removable without changing the final filesystem.",
                labels=labels,
            ),
            "secrets": GaugeMetricFamily(
                "imagewise_image_secrets", "Secrets found.", labels=labels
            ),
            "passed": GaugeMetricFamily(
                "imagewise_image_policy_pass", "1 when the image passes its policy.", labels=labels
            ),
        }
        vulns = GaugeMetricFamily(
            "imagewise_image_vulnerabilities",
            "Vulnerabilities by severity.",
            labels=[*labels, "severity"],
        )
        newest = (
            select(results.c.digest, func.max(results.c.id).label("id"))
            .group_by(results.c.digest)
            .subquery()
        )
        query = (
            select(image_refs.c.repository, image_refs.c.tag, results)
            .join(newest, newest.c.digest == image_refs.c.digest)
            .join(results, results.c.id == newest.c.id)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).mappings().all()
        for r in rows:
            lv = [r["repository"], r["tag"], r["digest"]]
            fams["size"].add_metric(lv, r["size_bytes"])
            if r["compressed_bytes"] is not None:
                fams["compressed"].add_metric(lv, r["compressed_bytes"])
            fams["layers"].add_metric(lv, r["layers"])
            fams["efficiency"].add_metric(lv, r["efficiency"])
            fams["wasted"].add_metric(lv, r["wasted_bytes"])
            fams["reclaimable"].add_metric(lv, r["reclaimable_bytes"])
            fams["secrets"].add_metric(lv, r["secrets"])
            fams["passed"].add_metric(lv, r["passed"])
            for sev, n in sorted((r["vulnerabilities"] or {}).items()):
                vulns.add_metric([*lv, sev], n)
        yield from fams.values()
        yield vulns
        from imagewise.service.scheduler import all_reports, latest_reports

        logical = GaugeMetricFamily(
            "imagewise_repository_logical_bytes",
            "A repository's images' bytes (space report).",
            labels=["repository"],
        )
        unique = GaugeMetricFamily(
            "imagewise_repository_unique_bytes",
            "A repository's blobs, each once (space report).",
            labels=["repository"],
        )
        for body in latest_reports(self.engine, "space").values():
            for r in body.get("repositories", []):
                logical.add_metric([r["repository"]], r["logical_bytes"])
                unique.add_metric([r["repository"]], r["unique_bytes"])
        yield logical
        yield unique
        backup = GaugeMetricFamily(
            "imagewise_backup_last_snapshot_timestamp_seconds",
            "Time of a backup job's newest snapshot.",
            labels=["job"],
        )
        for name, body in latest_reports(self.engine, "backup").items():
            backup.add_metric([name], body["last_snapshot"])
        yield backup
        drill_ok = GaugeMetricFamily(
            "imagewise_drill_last_success_timestamp_seconds",
            "Time of a drill's last success.",
            labels=["drill"],
        )
        drill_rto = GaugeMetricFamily(
            "imagewise_drill_rto_seconds",
            "Total time of a drill's last run (the RTO it shows).",
            labels=["drill"],
        )
        drill_state = GaugeMetricFamily(
            "imagewise_drill_ok", "1 when a drill's last run succeeded.", labels=["drill"]
        )
        for name, runs in all_reports(self.engine, "drill").items():
            last = runs[-1]
            drill_rto.add_metric([name], last["rto_seconds"])
            drill_state.add_metric([name], 1 if last["ok"] else 0)
            good = [r["at"] for r in runs if r["ok"]]
            if good:
                drill_ok.add_metric([name], max(good))
        yield drill_ok
        yield drill_rto
        yield drill_state
        yield from _build_families(all_reports(self.engine, "build"))
        yield from _measure_families(
            latest_reports(self.engine, "pull"), latest_reports(self.engine, "startup")
        )
        yield from self._job_families()
        yield from _upkeep_families(
            latest_reports(self.engine, "retention"),
            latest_reports(self.engine, "sync"),
            latest_reports(self.engine, "db-update"),
        )
        yield from _rematch_families(latest_reports(self.engine, "rematch"))
        depth = GaugeMetricFamily("imagewise_jobs", "Jobs by state.", labels=["state"])
        counts = self.queue.depth()
        for state in ("queued", "running", "done", "failed", "cancelled"):
            depth.add_metric([state], counts.get(state, 0))
        yield depth


def _job_rows(engine: Engine) -> list[Any]:
    from imagewise.service.db import jobs

    with engine.begin() as conn:
        return list(
            conn.execute(
                select(
                    jobs.c.kind,
                    jobs.c.state,
                    func.count().label("n"),
                    func.count(jobs.c.started).label("timed"),  # jobs older than 0003: none
                    func.sum(jobs.c.finished - jobs.c.started).label("seconds"),
                )
                .where(jobs.c.state.in_(("done", "failed")))
                .group_by(jobs.c.kind, jobs.c.state)
            ).all()
        )


def _upkeep_families(
    retention: dict[str, dict[str, Any]],
    syncs: dict[str, dict[str, Any]],
    updates: dict[str, dict[str, Any]],
) -> Iterator[Any]:
    """The newest retention, sync and database update job of each name."""
    from prometheus_client.core import GaugeMetricFamily

    freed = GaugeMetricFamily(
        "imagewise_retention_freed_bytes",
        "Bytes a retention job's last plan frees after the registry's garbage collection.",
        labels=["job"],
    )
    deleted = GaugeMetricFamily(
        "imagewise_retention_deleted", "Manifests a retention job last deleted.", labels=["job"]
    )
    for name, body in retention.items():
        freed.add_metric([name], body["freed_bytes"])
        deleted.add_metric([name], body["deleted"])
    copied = GaugeMetricFamily(
        "imagewise_sync_bytes_copied", "Bytes a sync job last copied.", labels=["job"]
    )
    sync_errors = GaugeMetricFamily(
        "imagewise_sync_errors", "Images a sync job last failed to copy.", labels=["job"]
    )
    for name, body in syncs.items():
        copied.add_metric([name], body["bytes_copied"])
        sync_errors.add_metric([name], len(body["errors"]))
    db = GaugeMetricFamily(
        "imagewise_db_update_timestamp_seconds",
        "When a vulnerability database update job last ran.",
        labels=["job"],
    )
    for name, body in updates.items():
        db.add_metric([name], body["at"])
    yield from (freed, deleted, copied, sync_errors, db)


def _rematch_families(rematches: dict[str, dict[str, Any]]) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    seconds = GaugeMetricFamily(
        "imagewise_rematch_seconds",
        "Time of the last re-match of every stored SBOM (no layer read).",
        labels=["job"],
    )
    changed = GaugeMetricFamily(
        "imagewise_rematch_changed_images",
        "Images whose advisories the last re-match changed.",
        labels=["job"],
    )
    for name, body in rematches.items():
        seconds.add_metric([name], body["seconds"])
        changed.add_metric([name], len(body["changed"]))
    yield from (seconds, changed)


def _measure_families(
    pulls: dict[str, dict[str, Any]], startups: dict[str, dict[str, Any]]
) -> Iterator[Any]:
    """The newest timed pull (拉取速度) and start-up (启动时间) of each measured image."""
    from prometheus_client.core import GaugeMetricFamily

    rate = GaugeMetricFamily(
        "imagewise_pull_bytes_per_second",
        "Compressed bytes per second of the image's last timed cold pull.",
        labels=["image"],
    )
    pull = GaugeMetricFamily(
        "imagewise_pull_seconds", "Wall time of the image's last timed cold pull.", labels=["image"]
    )
    for image, body in pulls.items():
        rate.add_metric([image], body["bytes_per_second"])
        pull.add_metric([image], body["seconds"])
    startup = GaugeMetricFamily(
        "imagewise_startup_seconds",
        "Median time from start to ready of the image's last start-up measurement.",
        labels=["image"],
    )
    for image, body in startups.items():
        startup.add_metric([image], body["seconds"])
    yield from (rate, pull, startup)


def _build_families(builds: dict[str, list[dict[str, Any]]]) -> Iterator[Any]:
    """The newest build of each image of each build job (构建时间), and its last success."""
    from prometheus_client.core import GaugeMetricFamily

    labels = ["build", "image"]
    seconds = GaugeMetricFamily(
        "imagewise_build_duration_seconds", "Wall time of an image's last build.", labels=labels
    )
    ok = GaugeMetricFamily(
        "imagewise_build_ok", "1 when an image's last build succeeded.", labels=labels
    )
    hits = GaugeMetricFamily(
        "imagewise_build_cache_hits", "Steps of the last build taken from a cache.", labels=labels
    )
    steps = GaugeMetricFamily(
        "imagewise_build_steps", "Steps of an image's last build.", labels=labels
    )
    context = GaugeMetricFamily(
        "imagewise_build_context_bytes", "Build context sent to the engine.", labels=labels
    )
    success = GaugeMetricFamily(
        "imagewise_build_last_success_timestamp_seconds",
        "Time of an image's last successful build.",
        labels=labels,
    )
    for key, runs in builds.items():
        build, _, image = key.rpartition("/")
        lv = [build, image]
        last = runs[-1]
        ok.add_metric(lv, 1 if last["status"] == "built" else 0)
        if "seconds" in last:  # built or failed (a skipped image has no build)
            seconds.add_metric(lv, last["seconds"])
            hits.add_metric(lv, last["cache_hits"])
            steps.add_metric(lv, len(last["steps"]))
            context.add_metric(lv, last["context_bytes"])
        good = [r["at"] for r in runs if r["status"] == "built"]
        if good:
            success.add_metric(lv, max(good))
    yield from (seconds, ok, hits, steps, context, success)


def exposition(engine: Engine, queue: SqlJobQueue) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(ServiceCollector(engine, queue))
    return generate_latest(registry)
