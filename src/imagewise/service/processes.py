"""Worker processes of the service (``imagewise serve --worker-processes N``).

Each is an ``imagewise worker`` process on the same database: its own interpreter (a job that
hangs, leaks or crashes takes only its process), claiming jobs from the same queue as any other
worker. The serve process starts them, restarts one that exits, and stops them when it stops.
Each runs in a process group of its own and watches its parent: when the service dies, even by
``kill -9``, the worker kills its group (its job's engine processes too) at once, and the job
it was running is taken back after ``stale`` seconds by whichever worker runs next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


class WorkerProcesses:
    def __init__(
        self,
        count: int,
        *,
        db_url: str,
        threads: int,
        policy_file: str | None,
        config_file: str | None,
        insecure: bool,
        stale: float,
    ) -> None:
        self.count = count
        self.argv = [
            sys.executable,
            "-m",
            "imagewise",
            "worker",
            "--db",
            db_url,
            "--workers",
            str(threads),
            "--stale-after",
            str(stale),
            "--parent-pid",
            str(os.getpid()),
        ]
        if policy_file:
            self.argv += ["--policy", policy_file]
        if config_file:
            self.argv += ["--config", config_file]
        if insecure:
            self.argv.append("--insecure")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv, start_new_session=True)

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self.thread = threading.Thread(target=self._supervise, daemon=True)
        self.thread.start()

    def _supervise(self) -> None:
        while not self.stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stop.is_set():
                    self.procs[i] = self._spawn()  # exited on its own: another in its place

    def close(self) -> None:
        """Ask every worker to stop (SIGTERM: it finishes its job first, up to 30 s), then kill
        what is left."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 35
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
