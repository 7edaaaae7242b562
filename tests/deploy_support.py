"""The deployment files' commands, for the tests that run them (tests/test_service_celery.py)
and the tests that check the files (tests/test_service_deploy.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes" / "imagewise.yaml"


def compose_command(service: str) -> list[str]:
    """The imagewise arguments of a compose service."""
    import yaml

    return [str(a) for a in yaml.safe_load(COMPOSE.read_text())["services"][service]["command"]]


def with_values(args: list[str], values: dict[str, str]) -> list[str]:
    """``args`` with the value after each flag of ``values`` replaced (a test's own paths)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in values:
            out[i + 1] = values[a]
    return out
