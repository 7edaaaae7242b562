"""HTTP receivers on loopback for the alert tests: a webhook (``receiver``: its URL and the JSON
bodies POSTed to it) and ticket trackers' issue APIs (``tracker``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from http_support import Quiet, serving


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(Quiet):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers["Content-Length"])
            got.append(json.loads(self.rfile.read(n)))
            self.send_response(200)
            self.end_headers()

    with serving(Handler) as host:
        yield f"http://{host}/hook", got


class Tracker:
    """What a ticket tracker on loopback was asked: (method, path, auth header, JSON body)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[tuple[str, str, str, Any]] = []

    def calls(self, prefix: str) -> list[tuple[str, str, Any]]:
        """The requests under ``prefix``, without the auth header."""
        return [(m, p, b) for m, p, _a, b in self.requests if p.startswith(prefix)]


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    """GitHub's, GitLab's and Jira's issue endpoints answered on loopback: a created issue gets
    the next number (GitHub ``number``, GitLab ``iid``, Jira key ``OPS-n``); comments,
    notes, edits and transitions are recorded and answered with ``{}``."""
    made = iter(range(1, 1000))
    seen: Tracker

    class Handler(Quiet):
        def _answer(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            auth = self.headers.get("Authorization") or self.headers.get("PRIVATE-TOKEN") or ""
            seen.requests.append((self.command, self.path, auth, body))
            reply: dict[str, Any] = {}
            if self.command == "POST" and self.path.endswith("/issues"):
                number = next(made)
                if "/projects/" in self.path:
                    reply = {"iid": number, "web_url": f"{seen.url}/gl/{number}"}
                else:
                    reply = {"number": number, "html_url": f"{seen.url}/gh/{number}"}
            elif self.command == "POST" and self.path == "/rest/api/2/issue":
                reply = {"key": f"OPS-{next(made)}", "self": f"{seen.url}/jira"}
            data = json.dumps(reply).encode()
            self.send_response(201 if reply else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PATCH = do_PUT = _answer  # noqa: N815

    with serving(Handler) as host:
        seen = Tracker(f"http://{host}")
        yield seen
