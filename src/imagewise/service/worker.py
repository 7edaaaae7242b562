"""Workers of the embedded service: threads of the serve process that claim jobs from the
queue, send heartbeats while they run, and finish or fail them (failures retry with backoff)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from imagewise.service.queue import JobQueue

Handler = Callable[[dict[str, Any]], str]


class Workers:
    def __init__(
        self, queue: JobQueue, handlers: dict[str, Handler], count: int = 2, poll: float = 0.2
    ) -> None:
        self.queue, self.handlers, self.count, self.poll = queue, handlers, count, poll
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> None:
        self.queue.recover()  # jobs a killed service left running run again
        for i in range(self.count):
            t = threading.Thread(target=self._loop, args=(f"{self.name}/{i}",), daemon=True)
            t.start()
            self.threads.append(t)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _loop(self, me: str) -> None:
        while not self.stop.is_set():
            job = self.queue.claim(me)
            if job is None:
                self.stop.wait(self.poll)
                continue
            beating = threading.Event()

            def beat(job_id: int = job.id) -> None:
                while not beating.wait(10.0):
                    self.queue.heartbeat(job_id)

            pulse = threading.Thread(target=beat, daemon=True)
            pulse.start()
            try:
                handler = self.handlers.get(job.kind)
                if handler is None:
                    raise RuntimeError(f"no handler for job kind {job.kind!r}")
                handler(job.payload)
            except Exception as e:  # noqa: BLE001 - a failed job is recorded and retried
                self.queue.fail(job.id, f"{type(e).__name__}: {e}")
            else:
                self.queue.finish(job.id)
            finally:
                beating.set()
                pulse.join()
