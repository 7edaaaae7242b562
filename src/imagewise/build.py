"""``imagewise build``: build an image with the real engine (buildah; imagewise never builds
itself), with lint as a gate before, per-step timings and cache use from the engine's own
output, a diagnosis when the build fails, and ``check`` as a gate after.

* Before: the Dockerfile is linted; a finding at or above ``lint_fail_on`` stops the build.
* During: ``buildah bud --isolation chroot`` (``--layers`` for the layer cache) runs with its
  output streamed; every ``STEP n/m:`` line starts a step, ``--> Using cache`` marks it cached,
  and each step's time is measured from the lines' arrival.
* On failure: the failed step, the tail of the log, and a diagnosis: the cause classified from
  the engine's messages (Dockerfile syntax with lint's message, a missing ``COPY`` source, an
  untrusted TLS certificate, network, an apt/apk/pip/npm package or version that does not
  exist, registry authentication, disk full, a base image that does not exist) with a concrete
  fix; the causes are tried in that order (a package "not found" after a network failure is
  the network's doing).
* After: the image is pushed (``--push`` destinations, any transport buildah takes) and, with
  ``check_gate``, checked under the policy; a failed check fails the build (exit 1).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from imagewise.errors import ImagewiseError, UsageError

DIAGNOSES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "dockerfile-syntax",
        re.compile(r"(?i)(dockerfile parse error|unknown instruction|parse error on line)"),
        "Fix the Dockerfile line the message names (`imagewise lint` shows it).",
    ),
    (
        "copy-source-missing",
        re.compile(
            r"(?i)checking on sources under .*no such file or directory|COPY failed|no source files were specified"
        ),
        "Add the file to the build context, fix the COPY path, or check .dockerignore does not exclude it.",
    ),
    (
        "tls-certificate",
        re.compile(
            r"(?i)(certificate verify failed|x509: certificate signed by unknown authority"
            r"|problem confirming the ssl certificate|SSL certificate problem"
            r"|unable to get local issuer certificate|SELF_SIGNED_CERT_IN_CHAIN)"
        ),
        "The build does not trust the TLS certificate of the package index or registry (a proxy "
        "that intercepts TLS?): COPY its CA into the image and point the tool at it (PIP_CERT, "
        "NODE_EXTRA_CA_CERTS, update-ca-certificates), or use a mirror.",
    ),
    (
        "network",
        re.compile(
            r"(?i)(temporary failure in name resolution|temporary failure resolving"
            r"|could not resolve host|network is unreachable|max retries exceeded"
            r"|connection timed out|i/o timeout|connect: connection refused|no such host)"
        ),
        "The build has no network to the package index or registry: check DNS and proxies, or use a mirror.",
    ),
    (
        "apt-package-missing",
        re.compile(r"E: (Unable to locate package|Version '.*' for '.*' was not found)"),
        "Check the package name and pinned version (`apt-cache policy NAME` in the base image); `imagewise deps check` lists what exists.",
    ),
    (
        "apk-package-missing",
        re.compile(r"ERROR: unable to select packages"),
        "Check the package name and version in the base image's Alpine branch.",
    ),
    (
        "pip-version-missing",
        re.compile(
            r"(No matching distribution found for|Could not find a version that satisfies the requirement)"
        ),
        "The pinned Python package version does not exist (for this Python): pick an available one.",
    ),
    (
        "npm-package-missing",
        re.compile(r"npm ERR! (code E404|notarget|404 Not Found)"),
        "The npm package or version does not exist in the registry: fix the name or version.",
    ),
    (
        "registry-auth",
        re.compile(r"(?i)(unauthorized|authentication required|denied: requested access)"),
        "Log in to the registry (credentials in auth.json / docker config) or check the image name.",
    ),
    (
        "disk-full",
        re.compile(r"(?i)no space left on device"),
        "Free space where the engine keeps its storage (e.g. `buildah rmi --prune`), or point it elsewhere.",
    ),
    (
        "base-image-missing",
        re.compile(
            r"(?i)(manifest unknown|reading manifest .* not found|name unknown|repository .* not found)"
        ),
        "The base image or tag does not exist: `imagewise outdated Dockerfile` lists the tags there are.",
    ),
]


#: a step line of buildah's output (``[linux/arm64] `` before it in a multi-platform build)
_STEP = re.compile(r"(?:\[([^\]]+)\] )?STEP (\d+)/(\d+): (.*)")
_COMMIT = re.compile(r"(?:\[[^\]]+\] )?COMMIT")


def _loopback(ref: str) -> bool:
    """Whether ``ref`` (a registry reference, ``docker://`` or not) is on this machine."""
    from imagewise.reference import ImageReference

    return ImageReference.parse(ref.removeprefix("docker://")).is_loopback


def _loopback_base(dockerfile: Path, build_args: dict[str, str]) -> bool:
    """Whether a ``FROM`` of ``dockerfile`` (build args resolved) names a registry on this
    machine (a Dockerfile that does not parse is the engine's to report)."""
    from imagewise.dockerfile.parser import parse
    from imagewise.release.outdated import from_lines

    try:
        df = parse(dockerfile.read_text("utf-8", "replace"), str(dockerfile))
        images = [image for _stage, image in from_lines(df, build_args)]
    except (ImagewiseError, OSError):
        return False
    for image in images:
        if re.match(r"[a-z-]+:(?!\d)", image) and not image.startswith("docker://"):
            continue  # another transport (oci:, oci-archive:, docker-archive:, ...)
        try:
            if _loopback(image):
                return True
        except ImagewiseError:
            continue
    return False


def cache_repository(ref: str | None, flag: str) -> str | None:
    """``ref`` checked to be a registry repository (no tag, no digest) for the layer cache."""
    if ref is None:
        return None
    from imagewise.reference import ImageReference

    try:
        parsed = ImageReference.parse(ref.removeprefix("docker://"))
    except ImagewiseError as e:
        raise UsageError(f"{flag} {ref}: {e}") from None
    if parsed.tag or parsed.digest or "://" in ref.removeprefix("docker://"):
        raise UsageError(f"{flag} {ref}: give a registry repository, without a tag or digest")
    return ref.removeprefix("docker://")


class Step:
    __slots__ = ("number", "instruction", "platform", "seconds", "cache")  # noqa: RUF023

    def __init__(self, number: int, instruction: str, platform: str | None = None) -> None:
        self.number, self.instruction, self.platform = number, instruction, platform
        self.seconds = 0.0
        self.cache: str | None = None  # "local" (this storage) or "registry" (--cache-from)

    @property
    def cached(self) -> bool:
        return self.cache is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "instruction": self.instruction,
            "platform": self.platform,
            "seconds": round(self.seconds, 3),
            "cached": self.cached,
            "cache": self.cache,
        }


class BuildResult:
    def __init__(self) -> None:
        self.engine = "buildah"
        self.steps: list[Step] = []
        self.seconds = 0.0
        self.context_bytes = 0
        self.ignored_bytes = 0
        self.image_id = ""
        self.pushed: list[str] = []
        self.ok = False
        self.failed_step: str | None = None
        self.diagnosis: dict[str, str] | None = None
        self.log_tail: list[str] = []
        self.lint: list[dict[str, Any]] = []
        self.check: dict[str, Any] | None = None
        self.platforms: list[str] = []
        self.cache_from: str | None = None
        self.cache_to: str | None = None
        self.notes: list[str] = []

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "engine": self.engine,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_json() for s in self.steps],
            "cache_hits": sum(s.cached for s in self.steps),
            "registry_cache_hits": sum(s.cache == "registry" for s in self.steps),
            "platforms": self.platforms,
            "cache_from": self.cache_from,
            "cache_to": self.cache_to,
            "notes": self.notes,
            "context_bytes": self.context_bytes,
            "dockerignore_excluded_bytes": self.ignored_bytes,
            "image_id": self.image_id or None,
            "pushed": self.pushed,
            "failed_step": self.failed_step,
            "diagnosis": self.diagnosis,
            "log_tail": self.log_tail,
            "lint": self.lint,
            "check": self.check,
        }


def context_size(context: Path) -> tuple[int, int]:
    """(bytes sent to the engine, bytes ``.dockerignore`` keeps out)."""
    patterns: list[str] = []
    ignore = context / ".dockerignore"
    if ignore.is_file():
        patterns = [
            line.strip()
            for line in ignore.read_text("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("#")
        ]
    sent = skipped = 0
    for root, _dirs, files in os.walk(context):
        for name in files:
            p = Path(root) / name
            rel = p.relative_to(context).as_posix()
            size = p.lstat().st_size
            excluded = False
            for pat in patterns:
                neg = pat.startswith("!")
                pat = pat.lstrip("!").strip("/")
                if (
                    fnmatch.fnmatch(rel, pat)
                    or fnmatch.fnmatch(rel, pat + "/*")
                    or rel.startswith(pat + "/")
                ):
                    excluded = not neg
            if excluded:
                skipped += size
            else:
                sent += size
    return sent, skipped


def diagnose(log: list[str], dockerfile: Path | None = None) -> dict[str, str]:
    text = "\n".join(log)
    for name, pattern, fix in DIAGNOSES:
        m = pattern.search(text)
        if m:
            line = next((ln for ln in log if pattern.search(ln)), m.group(0))
            out = {"cause": name, "evidence": line.strip()[:500], "fix": fix}
            if name == "dockerfile-syntax" and dockerfile is not None:
                from imagewise.dockerfile.lint import lint_file

                try:
                    lint_file(dockerfile)
                except ImagewiseError as e:
                    out["lint"] = str(e)
            return out
    return {
        "cause": "unknown",
        "evidence": (log[-1] if log else "").strip()[:500],
        "fix": "Read the log tail above.",
    }


def build(
    context: str,
    *,
    dockerfile: str | None = None,
    tags: tuple[str, ...] = (),
    push: tuple[str, ...] = (),
    layers: bool = True,
    build_args: dict[str, str] | None = None,
    lint_fail_on: str | None = "error",
    check_gate: bool = False,
    policy: Any = None,
    insecure: bool = False,
    cache_from: str | None = None,
    cache_to: str | None = None,
    platforms: tuple[str, ...] = (),
) -> BuildResult:
    """Build ``context`` with buildah. ``cache_from``/``cache_to``: registry repositories for
    the layer cache (steps pulled from and pushed to it, so a fresh storage on another machine
    reuses them); ``platforms``: ``os/arch[/variant]`` each (more than one makes a manifest
    list named by the first tag and pushed with all its images)."""
    engine = shutil.which("buildah")
    if engine is None:
        raise UsageError(
            "imagewise build drives buildah, which is not installed (apt-get install buildah)"
        )
    ctx = Path(context)
    if not ctx.is_dir():
        raise UsageError(f"build context {context} is not a directory")
    df = Path(dockerfile) if dockerfile else ctx / "Dockerfile"
    if not df.is_file():
        raise UsageError(f"Dockerfile not found: {df}")
    cache_from = cache_repository(cache_from, "--cache-from")
    cache_to = cache_repository(cache_to, "--cache-to")
    if (cache_from or cache_to) and not layers:
        raise UsageError("--cache-from/--cache-to need the layer cache: drop --no-layers")
    if (cache_from or cache_to) and len(platforms) > 1:
        raise UsageError(
            "a multi-platform build runs without the layer cache (buildah reuses one platform's "
            "cached steps for another): build one --platform at a time with --cache-from/--cache-to"
        )
    from imagewise.oci.model import Platform

    for plat in platforms:
        try:
            Platform.parse(plat)
        except ImagewiseError as e:
            raise UsageError(f"--platform {plat}: {e}") from None
    result = BuildResult()
    result.platforms, result.cache_from, result.cache_to = list(platforms), cache_from, cache_to
    result.context_bytes, result.ignored_bytes = context_size(ctx)
    if lint_fail_on is not None:
        from imagewise.dockerfile.config import LintConfig
        from imagewise.dockerfile.lint import lint_file
        from imagewise.findings import Severity

        threshold = Severity.parse(lint_fail_on)
        try:
            findings = lint_file(df, LintConfig())
        except ImagewiseError as e:
            result.diagnosis = {
                "cause": "dockerfile-syntax",
                "evidence": str(e),
                "fix": "Fix the Dockerfile line the message names.",
            }
            return result
        result.lint = [
            {
                "rule": f.rule,
                "severity": f.severity.name.lower(),
                "line": f.location.line if f.location else None,
                "message": f.message,
            }
            for f in findings
        ]
        blocking = [f for f in findings if f.severity >= threshold]
        if blocking:
            result.diagnosis = {
                "cause": "lint-gate",
                "evidence": f"{blocking[0].rule} at line {blocking[0].location.line if blocking[0].location else '?'}: {blocking[0].message}",
                "fix": f"Fix the findings at {lint_fail_on} or above (`imagewise lint {df} --fix` fixes some), or lower --lint-fail-on.",
            }
            return result
    name = tags[0] if tags else f"localhost/imagewise-build:{int(time.time())}"
    from imagewise.runtime import buildah_base

    base = buildah_base(engine)
    multi = len(platforms) > 1
    if multi:
        layers = False  # buildah reuses one platform's cached steps for another: off
        result.notes.append(
            "multi-platform build: the layer cache is off (buildah 1.28 reuses one platform's "
            "cached steps for another)"
        )
    cmd = [*base, "bud", "--isolation", "chroot", "-f", str(df)]
    if layers:
        cmd.append("--layers")
    if cache_from:
        cmd += ["--cache-from", cache_from]
    if cache_to:
        cmd += ["--cache-to", cache_to]
    loopback = any(_loopback(r) for r in (cache_from, cache_to) if r)
    if insecure or loopback or _loopback_base(df, build_args or {}):
        cmd.append("--tls-verify=false")  # a registry on this machine speaks plain HTTP
    if platforms:
        cmd += ["--platform", ",".join(platforms)]
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    if multi:
        cmd += ["--manifest", name]
    else:
        for t in tags or (name,):
            cmd += ["-t", t]
    cmd.append(str(ctx))
    started = time.perf_counter()
    log: list[str] = []
    current: Step | None = None
    mark = started
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter()
            log.append(line.rstrip("\n"))
            m = _STEP.match(line)
            if m:
                if current is not None:
                    current.seconds = now - mark
                current = Step(int(m.group(2)), m.group(4).strip(), m.group(1))
                result.steps.append(current)
                mark = now
            elif current is not None and line.startswith("--> Cache pulled from remote"):
                current.cache = "registry"
            elif current is not None and line.startswith("--> Using cache"):
                current.cache = current.cache or "local"
            if _COMMIT.match(line) and current is not None:
                current.seconds = now - mark
                current = None
        proc.wait()
    if current is not None:
        current.seconds = time.perf_counter() - mark
    result.seconds = time.perf_counter() - started
    if proc.returncode != 0:
        failed = next((ln for ln in log if "Error: building at STEP" in ln), None)
        result.failed_step = failed or (result.steps[-1].instruction if result.steps else None)
        result.log_tail = log[-20:]
        result.diagnosis = diagnose(log, df)
        return result
    result.image_id = log[-1].strip() if log else ""
    if multi:  # the manifest list is named by the first tag; the others name it too
        for t in tags[1:]:
            subprocess.run([*base, "tag", name, t], capture_output=True, check=True)
    for dest in push:
        transports = ("oci:", "docker://", "dir:", "docker-archive:", "oci-archive:")
        target = dest if dest.startswith(transports) else f"docker://{dest}"
        push_cmd = [*base, "manifest", "push", "--all"] if multi else [*base, "push"]
        if target.startswith("docker://") and (insecure or _loopback(target)):
            push_cmd.append("--tls-verify=false")
        done = subprocess.run(
            [*push_cmd, name, target], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            result.failed_step = f"push {target}"
            result.log_tail = done.stderr.strip().splitlines()[-20:]
            result.diagnosis = diagnose(result.log_tail)
            return result
        result.pushed.append(target)
    result.ok = True
    if check_gate and result.pushed:
        from imagewise.check import CheckOptions, run_check
        from imagewise.policy.model import default_policy

        checked = run_check(
            CheckOptions(
                result.pushed[0],
                policy=policy or default_policy(),
                insecure=insecure,
                allow_incomplete=True,
            )
        )
        result.check = {
            "status": checked.verdict.status,
            "passed": checked.verdict.passed,
            "violations": [v.rule for v in checked.verdict.violations],
        }
        result.ok = checked.verdict.passed
        if not result.ok:
            result.diagnosis = {
                "cause": "check-gate",
                "evidence": ", ".join(result.check["violations"][:5]),
                "fix": f"`imagewise check {result.pushed[0]}` shows the findings and their fixes.",
            }
    return result


_CACHE_WORD = {None: "", "local": "cached", "registry": "cached (registry)"}


def build_table(result: BuildResult) -> str:
    from imagewise.units import format_size

    lines = [
        f"  {(f'[{s.platform}] ' if s.platform else '')}{s.number:>2}  {s.seconds:6.2f}s  "
        f"{_CACHE_WORD[s.cache]:<18}{s.instruction[:90]}"
        for s in result.steps
    ]
    lines.append(
        f"{'built' if result.steps and not result.failed_step and not (result.diagnosis and result.diagnosis['cause'] == 'lint-gate') else 'not built'} "
        f"in {result.seconds:.2f}s with {result.engine}; {sum(s.cached for s in result.steps)} cache hit(s); "
        f"context {format_size(result.context_bytes)} (.dockerignore kept {format_size(result.ignored_bytes)} out)"
    )
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"pushed {p}" for p in result.pushed]
    if result.check:
        lines.append(f"check: {result.check['status']}")
    if result.failed_step:
        lines.append(f"failed at: {result.failed_step}")
        lines += [f"  | {ln}" for ln in result.log_tail[-10:]]
    if result.diagnosis:
        lines.append(f"diagnosis: {result.diagnosis['cause']}: {result.diagnosis['evidence']}")
        if result.diagnosis.get("lint"):
            lines.append(f"  lint: {result.diagnosis['lint']}")
        lines.append(f"fix: {result.diagnosis['fix']}")
    return "\n".join(lines) + "\n"
