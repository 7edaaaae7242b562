"""A manifest PUT answered DIGEST_INVALID for bytes that match their digest (the distribution
registry reading a blob link another upload rewrites at that moment) is tried again; an answer
that stays DIGEST_INVALID is an error after the last try. A local server answers as told."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from http_support import Quiet, serving

from imagewise.errors import RegistryError
from imagewise.oci import media
from imagewise.registry.client import MANIFEST_PUT_TRIES, RegistryClient


@pytest.fixture
def flaky() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"invalid": 0, "puts": 0}

    class Handler(Quiet):
        def do_PUT(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            state["puts"] += 1
            if state["invalid"] > 0:
                state["invalid"] -= 1
                body = json.dumps(
                    {
                        "errors": [
                            {
                                "code": "DIGEST_INVALID",
                                "message": "provided digest did not match uploaded content",
                            }
                        ]
                    }
                ).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
            else:
                body = b""
                self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as host:
        yield host, state


def test_a_passing_digest_invalid_is_tried_again(flaky: tuple[str, dict[str, Any]]) -> None:
    host, state = flaky
    client = RegistryClient(host, f"http://{host}", insecure=True)
    raw = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    state["invalid"] = 2
    client.put_manifest("repo", "tag", raw, media.OCI_MANIFEST)
    assert state["puts"] == 3
    state.update(invalid=MANIFEST_PUT_TRIES, puts=0)
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        client.put_manifest("repo", "tag", raw, media.OCI_MANIFEST)
    assert state["puts"] == MANIFEST_PUT_TRIES
