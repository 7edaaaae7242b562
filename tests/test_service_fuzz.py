"""Property-based API test: schemathesis generates requests from the service's OpenAPI schema
(with a valid admin token, and without one); no request may end in a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from imagewise.service.app import create_app
from imagewise.service.db import connect
from imagewise.service.queue import SqlJobQueue
from imagewise.service.tokens import create_token

_DIR = Path(tempfile.mkdtemp(prefix="iw-fuzz-"))
_ENGINE = connect(f"sqlite:///{_DIR / 'fuzz.sqlite'}")
_QUEUE = SqlJobQueue(_ENGINE)
_TOKEN = create_token(_ENGINE, "fuzz", "admin")
APP = create_app(_ENGINE, _QUEUE, secret="fuzz-secret")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_TOKEN}"}, checks=[not_a_server_error]
    )
    case.call_and_validate(checks=[not_a_server_error])
