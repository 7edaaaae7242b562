"""Wiring the embedded service: database, queue, workers, HTTP server."""

from __future__ import annotations

import threading
from typing import Any


class Service:
    """The service in this process: ``start()`` serves on ``host:port`` in a thread (``port``
    0: a free one, see ``url``), ``close()`` stops it."""

    def __init__(
        self,
        *,
        db_url: str | None = None,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 2,
        policy_file: str | None = None,
        insecure: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        """``config``: the service config's contents (``alerts:``; see docs/guide.md)."""
        from imagewise.policy.model import load_policy
        from imagewise.service.app import create_app
        from imagewise.service.db import connect
        from imagewise.service.jobs import run_check_job
        from imagewise.service.queue import SqlJobQueue
        from imagewise.service.worker import Workers

        self.engine = connect(db_url)
        self.queue = SqlJobQueue(self.engine)
        from imagewise.service.alerts import AlertConfig, evaluate_job
        from imagewise.service.builds import run_build

        policy = load_policy(policy_file)
        alerts = AlertConfig((config or {}).get("alerts"), "config alerts")
        from imagewise.service.scheduler import (
            Scheduler,
            parse_schedules,
            run_backup_due,
            run_drill,
            run_space_report,
        )

        self.workers = Workers(
            self.queue,
            {
                "check": lambda p: run_check_job(self.engine, p, policy, alerts),
                "backup-due": lambda p: run_backup_due(self.engine, p, alerts),
                "space-report": lambda p: run_space_report(self.engine, p, alerts),
                "drill": lambda p: run_drill(self.engine, p, alerts),
                "build": lambda p: run_build(self.engine, p, alerts),
            },
            count=workers,
            on_end=lambda job, error: evaluate_job(
                self.engine, alerts, job.kind, _job_name(job), error
            ),
        )
        self.scheduler = Scheduler(
            self.engine,
            self.queue,
            parse_schedules((config or {}).get("schedules")),
            alerts=alerts,
        )
        self.app = create_app(self.engine, self.queue, secret=secret, insecure=insecure)
        from imagewise.service.watch import Watcher, parse_watch

        self.watcher = Watcher(
            self.engine, self.queue, parse_watch((config or {}).get("watch")), insecure
        )
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        import socket

        import uvicorn

        if self.port == 0:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self.workers.start()
        self.watcher.start()
        self.scheduler.start()
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 20
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def serve_forever(self) -> None:
        import uvicorn

        self.workers.start()
        self.watcher.start()
        self.scheduler.start()
        try:
            uvicorn.run(self.app, host=self.host, port=self.port, log_level="info", lifespan="off")
        finally:
            self.scheduler.close()
            self.watcher.close()
            self.workers.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.scheduler.close()
        self.watcher.close()
        self.workers.close()
        self.engine.dispose()


def _job_name(job: Any) -> str:
    """What a job is about, the same for every run of it: a schedule's or build's name, a
    checked digest, else its key."""
    payload = job.payload or {}
    return str(payload.get("name") or payload.get("digest") or job.key)
