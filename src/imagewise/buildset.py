"""Several images from one build file, built concurrently in dependency order.

``imagewise-build.yaml``::

    images:
      base:
        context: base                 # required
        dockerfile: base/Dockerfile   # default: CONTEXT/Dockerfile
        tags: [localhost:5000/acme/base:1.0]
        build_args: {PY: "3.12"}
        push: [localhost:5000/acme/base:1.0]
      app:
        context: app
        base: base                    # built after `base`; BASE_IMAGE=<base's first tag>
        after: [tools]                # more images to wait for (no build arg)
        tags: [localhost:5000/acme/app:1.0]

Each image is one :func:`imagewise.build.build` (lint gate, the engine, push, check gate) with
the options of the command line. An image starts as soon as every image it names is built, at
most ``jobs`` at a time (the engine takes its own storage locks); an image whose base failed is
skipped, not built against an old base. A cycle, an unknown name or an unknown key is refused
before anything is built.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from imagewise.build import BuildResult, build, build_table, cache_repository
from imagewise.configfile import load_yaml, reject_unknown_keys
from imagewise.errors import ConfigError, ImagewiseError
from imagewise.oci.model import Platform

#: the build arg an image built on another image of the file gets (its base's first tag)
BASE_ARG = "BASE_IMAGE"


class ImageSpec:
    """One image of a build file (paths resolved against the file's directory)."""

    def __init__(self, name: str, doc: dict[str, Any], root: Path, where: str) -> None:
        reject_unknown_keys(
            doc,
            (
                "context",
                "dockerfile",
                "tags",
                "build_args",
                "push",
                "base",
                "after",
                "platforms",
                "cache_from",
                "cache_to",
            ),
            where,
        )
        if not isinstance(doc.get("context"), str):
            raise ConfigError(f"{where}: context is required (a directory)")
        self.name = name
        self.context = str(root / doc["context"])
        self.dockerfile = str(root / doc["dockerfile"]) if doc.get("dockerfile") else None
        self.tags = tuple(_strings(doc, "tags", where))
        self.push = tuple(_strings(doc, "push", where))
        args = doc.get("build_args") or {}
        if not isinstance(args, dict):
            raise ConfigError(f"{where}.build_args: expected a mapping NAME: value")
        self.build_args = {str(k): str(v) for k, v in args.items()}
        self.base = doc.get("base")
        if self.base is not None and not isinstance(self.base, str):
            raise ConfigError(f"{where}.base: expected the name of another image")
        self.after = [*([self.base] if self.base else []), *_strings(doc, "after", where)]
        self.platforms = tuple(_strings(doc, "platforms", where))
        for key in ("cache_from", "cache_to"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise ConfigError(f"{where}.{key}: expected a registry repository")
        try:  # refused here, before anything of the file is built
            self.cache_from = cache_repository(doc.get("cache_from"), "cache_from")
            self.cache_to = cache_repository(doc.get("cache_to"), "cache_to")
            for plat in self.platforms:
                Platform.parse(plat)
        except ImagewiseError as e:
            raise ConfigError(f"{where}: {e}") from None
        if (self.cache_from or self.cache_to) and len(self.platforms) > 1:
            raise ConfigError(
                f"{where}: a multi-platform build runs without the layer cache: "
                "no cache_from/cache_to with more than one platform"
            )


def _strings(doc: dict[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of strings")
    return list(value)


def load_build_file(path: str | Path) -> list[ImageSpec]:
    """The images of a build file, in an order where each comes after what it names."""
    p = Path(path)
    doc = load_yaml(p, "build file")
    if not isinstance(doc, dict):
        raise ConfigError(f"build file {p}: expected `images:` with a mapping of images")
    reject_unknown_keys(doc, ("images",), f"build file {p}")
    images = doc.get("images")
    if not isinstance(images, dict) or not images:
        raise ConfigError(f"build file {p}: expected `images:` with a mapping of images")
    specs = {}
    for name, body in images.items():
        where = f"build file {p}: images.{name}"
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: expected a mapping")
        specs[str(name)] = ImageSpec(str(name), body, p.parent, where)
    for spec in specs.values():
        for other in spec.after:
            if other not in specs:
                raise ConfigError(
                    f"build file {p}: images.{spec.name} names {other!r}, "
                    f"which the file does not define"
                )
        if spec.base and not specs[spec.base].tags:
            raise ConfigError(
                f"build file {p}: images.{spec.base} is the base of "
                f"{spec.name}, so it needs a tag to be named by"
            )
    ordered: list[ImageSpec] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ConfigError(f"build file {p}: images depend on each other in a cycle: {cycle}")
        state[name] = "visiting"
        for other in specs[name].after:
            visit(other, [*path, name])
        state[name] = "done"
        ordered.append(specs[name])

    for name in specs:
        visit(name, [])
    return ordered


class BuildSetResult:
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.seconds = 0.0
        #: name -> (built, failed or skipped, what it waited for, its result or why skipped)
        self.images: dict[str, tuple[str, list[str], BuildResult | str]] = {}
        #: name -> (start, end) in seconds since the set started (images that were built)
        self.times: dict[str, tuple[float, float]] = {}

    @property
    def ok(self) -> bool:
        return all(status == "built" for status, _, _ in self.images.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "jobs": self.jobs,
            "images": [
                {
                    "name": name,
                    "status": status,
                    "after": after,
                    **(
                        {
                            "start_seconds": round(self.times[name][0], 3),
                            "end_seconds": round(self.times[name][1], 3),
                            "build": outcome.to_json(),
                        }
                        if isinstance(outcome, BuildResult)
                        else {"reason": outcome}
                    ),
                }
                for name, (status, after, outcome) in self.images.items()
            ],
        }


def build_set(path: str | Path, *, jobs: int = 2, **options: Any) -> BuildSetResult:
    """Build every image of the build file ``path``; ``options`` go to each ``build`` (lint
    gate, check gate, policy, layers, insecure)."""
    specs = load_build_file(path)
    result = BuildSetResult(max(1, jobs))
    by_name = {s.name: s for s in specs}
    started = time.perf_counter()

    def one(spec: ImageSpec) -> BuildResult:
        begun = time.perf_counter() - started
        try:
            return _one(spec)
        finally:
            result.times[spec.name] = (begun, time.perf_counter() - started)

    def _one(spec: ImageSpec) -> BuildResult:
        args = dict(spec.build_args)
        if spec.base:
            args.setdefault(BASE_ARG, by_name[spec.base].tags[0])
        return build(
            spec.context,
            dockerfile=spec.dockerfile,
            tags=spec.tags,
            push=spec.push,
            build_args=args,
            platforms=spec.platforms,
            cache_from=spec.cache_from,
            cache_to=spec.cache_to,
            **options,
        )

    waiting = list(specs)
    running: dict[Future[BuildResult], ImageSpec] = {}
    with ThreadPoolExecutor(result.jobs) as pool:
        while waiting or running:
            for spec in list(waiting):
                states = [result.images.get(n, ("",))[0] for n in spec.after]
                failed = [
                    n for n, s in zip(spec.after, states, strict=True) if s in ("failed", "skipped")
                ]
                if failed:
                    waiting.remove(spec)
                    result.images[spec.name] = ("skipped", spec.after, f"{failed[0]} was not built")
                elif all(s == "built" for s in states) and len(running) < result.jobs:
                    waiting.remove(spec)
                    running[pool.submit(one, spec)] = spec
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                spec = running.pop(future)
                outcome = future.result()
                status = "built" if outcome.ok else "failed"
                result.images[spec.name] = (status, spec.after, outcome)
    result.images = {s.name: result.images[s.name] for s in specs}  # in the file's build order
    result.seconds = time.perf_counter() - started
    return result


def build_set_table(result: BuildSetResult) -> str:
    parts = []
    for name, (status, after, outcome) in result.images.items():
        head = f"== {name}: {status}" + (f" (after {', '.join(after)})" if after else "")
        body = build_table(outcome) if isinstance(outcome, BuildResult) else f"{outcome}\n"
        parts.append(f"{head}\n{body}")
    built = sum(s == "built" for s, _, _ in result.images.values())
    parts.append(
        f"{built}/{len(result.images)} images built in {result.seconds:.2f}s "
        f"({result.jobs} at a time)\n"
    )
    return "".join(parts)


def any_table(result: BuildResult | BuildSetResult) -> str:
    """The table of one build or of a build file's builds (``imagewise build``'s encoder)."""
    return build_set_table(result) if isinstance(result, BuildSetResult) else build_table(result)


def any_json(result: BuildResult | BuildSetResult) -> dict[str, Any]:
    """``imagewise/build/v1``: one build's body, or with ``--build-file`` the builds under ``images``."""
    return result.to_json()
