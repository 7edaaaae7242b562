"""Registry host names as policies name them: Docker Hub's several names are one registry, and
allow-lists are glob patterns. A bottom module (no imports of ours), so the lint path can use it
without loading the reference grammar or the policy model."""

from __future__ import annotations

_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def registry_allowed(registry: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether ``registry`` matches one of the glob ``patterns`` (``*.pkg.dev``); Docker Hub's
    names are one registry. Used by the policy's ``allowed_registries`` gate and by rule IW102
    (one list judges the base image)."""
    from fnmatch import fnmatchcase

    reg = registry.lower()
    names = _DOCKER_HUB if reg in _DOCKER_HUB else {reg}
    return any(fnmatchcase(n, p.lower()) for n in names for p in patterns)
