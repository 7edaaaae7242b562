"""``imagewise deps check``: whether what a Dockerfile installs exists, without building it.

Every pinned (and unpinned) package of ``apt-get install``, ``apk add``, ``pip install`` and
``npm install`` in its RUN lines, and every base image of its FROM lines, is looked up where the
build would get it:

* apt: the Debian or Ubuntu archive's ``Packages`` index of the release the stage's base image
  names (``debian:bookworm``, ``python:3.12-slim-bookworm``, ``ubuntu:24.04``...): the release,
  its ``-updates`` and ``-security`` suites; ``main`` (and ``universe`` on Ubuntu);
* apk: the Alpine mirror's ``APKINDEX`` of the branch the base image names (``alpine:3.19``);
* pip: the package index's JSON API (``/pypi/NAME/json``, PyPI and its mirrors); a version
  whose every file is yanked counts as gone;
* npm: the registry's package document (``/NAME``);
* base images: the registry (the tag's manifest).

Each is ``ok``, ``gone`` (the name exists, that version no longer does: the newest is given),
``missing`` (no such name), ``unpinned`` (no version given: the newest is given) or
``unknown`` (the index could not be reached or the release could not be told; the reason is
given). Indexes are fetched once per run, in parallel; the apt and apk indexes are kept for a
day in the cache directory. Index URLs are settings (``DepsIndexes``), for mirrors.
"""

from __future__ import annotations

import lzma
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imagewise.errors import UsageError
from imagewise.record import Record

#: release names by version, where a base image names the number
DEBIAN = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky"}
UBUNTU = {
    "20.04": "focal",
    "22.04": "jammy",
    "24.04": "noble",
    "24.10": "oracular",
    "25.04": "plucky",
    "25.10": "questing",
}
#: how long a downloaded apt or apk index is used before it is fetched again
INDEX_TTL = 24 * 3600


class DepsIndexes(Record):
    """Where packages are looked up (mirrors welcome)."""

    __slots__ = ("debian", "debian_security", "ubuntu", "alpine", "pypi", "npm", "arch")  # noqa: RUF023

    def __init__(
        self,
        debian: str = "https://deb.debian.org/debian",
        debian_security: str = "https://deb.debian.org/debian-security",
        ubuntu: str = "http://archive.ubuntu.com/ubuntu",
        alpine: str = "https://dl-cdn.alpinelinux.org/alpine",
        pypi: str = "https://pypi.org",
        npm: str = "https://registry.npmjs.org",
        arch: str = "amd64",
    ) -> None:
        self.debian = debian.rstrip("/")
        self.debian_security = debian_security.rstrip("/")
        self.ubuntu = ubuntu.rstrip("/")
        self.alpine = alpine.rstrip("/")
        self.pypi = pypi.rstrip("/")
        self.npm = npm.rstrip("/")
        self.arch = arch


class Dependency(Record):
    """One thing the Dockerfile installs or builds on, and what the index says about it."""

    __slots__ = ("kind", "name", "version", "line", "release", "status", "newest", "note")  # noqa: RUF023

    def __init__(
        self,
        kind: str,  # apt, apk, pip, npm, image
        name: str,
        version: str,  # "" when not pinned
        line: int,
        release: str = "",  # apt/apk: the distribution release the stage is built on
        status: str = "",
        newest: str = "",
        note: str = "",
    ) -> None:
        self.kind = kind
        self.name = name
        self.version = version
        self.line = line
        self.release = release
        self.status = status
        self.newest = newest
        self.note = note

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version or None,
            "line": self.line,
            "release": self.release or None,
            "status": self.status,
            "newest": self.newest or None,
            "note": self.note or None,
        }


class DepsResult(Record):
    __slots__ = ("dockerfile", "dependencies")  # noqa: RUF023

    def __init__(self, dockerfile: str, dependencies: list[Dependency]) -> None:
        self.dockerfile = dockerfile
        self.dependencies = dependencies

    @property
    def failed(self) -> list[Dependency]:
        return [d for d in self.dependencies if d.status in ("missing", "gone")]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for d in self.dependencies:
            counts[d.status] = counts.get(d.status, 0) + 1
        return {
            "dockerfile": self.dockerfile,
            "dependencies": [d.to_json() for d in self.dependencies],
            "counts": counts,
        }


# -- what the Dockerfile installs -----------------------------------------------------------------


def _release(image: str) -> str:
    """``debian/bookworm``, ``ubuntu/noble``, ``alpine/v3.19`` or "" from a base image name."""
    from imagewise.dockerfile.rules._util import parse_image

    ref = parse_image(image)
    name, tag = ref.name.rsplit("/", 1)[-1], (ref.tag or "latest").lower()
    if name == "alpine" or "alpine" in tag:
        m = (
            re.search(r"alpine(\d+\.\d+)", tag)
            if name != "alpine"
            else re.match(r"(\d+\.\d+)", tag)
        )
        return f"alpine/v{m.group(1)}" if m else ""
    for codename in (*DEBIAN.values(), *UBUNTU.values()):
        if re.search(rf"(^|[-_.]){codename}($|[-_.])", tag):
            return f"{'ubuntu' if codename in UBUNTU.values() else 'debian'}/{codename}"
    if name == "debian":
        number = tag.split("-")[0].split(".")[0]
        return f"debian/{DEBIAN[number]}" if number in DEBIAN else ""
    if name == "ubuntu":
        number = ".".join(tag.split("-")[0].split(".")[:2])
        return f"ubuntu/{UBUNTU[number]}" if number in UBUNTU else ""
    return ""


def _split(arg: str, kind: str) -> tuple[str, str]:
    """(name, exact version or "") of a package argument."""
    if kind in ("apt", "apk"):
        name, _, version = arg.partition("=")
        return name.split(":")[0] if kind == "apt" else name, version
    if kind == "pip":
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==|===)?\s*([^,;\s]*)", arg)
        if not m:
            return arg, ""
        return m.group(1), m.group(4) if m.group(3) else ""
    scoped = arg.startswith("@")
    name, _, version = (arg[1:] if scoped else arg).partition("@")
    return ("@" + name if scoped else name), version


def _not_by_name(arg: str, kind: str) -> bool:
    if arg.startswith(("$", ".", "/", "~")) or "://" in arg or arg.startswith("git+"):
        return True
    if arg.endswith((".deb", ".whl", ".tar.gz", ".tgz", ".zip", ".tar")):
        return True
    if kind == "npm":  # @scope/name is a name; other slashes are paths or GitHub shorthands
        return "/" in (arg.split("/", 1)[1] if arg.startswith("@") else arg)
    return "/" in arg


def requirements(path: str | Path, build_args: dict[str, str] | None = None) -> list[Dependency]:
    """The packages and base images of a Dockerfile, in order (nothing looked up yet)."""
    from imagewise.dockerfile.context import LintContext
    from imagewise.dockerfile.files import read_dockerfiles
    from imagewise.dockerfile.parser import check_size, parse
    from imagewise.dockerfile.rules.packages import (
        apk_packages,
        apt_packages,
        npm_packages,
        pip_packages,
    )
    from imagewise.release.outdated import from_lines

    (doc,) = read_dockerfiles([str(path)])
    check_size(len(doc.data), str(path))
    df = parse(doc.data.decode("utf-8", "replace"), str(path))
    ctx = LintContext(df)
    releases: dict[int, str] = {}  # stage index -> release of its base (through earlier stages)
    out: list[Dependency] = []
    bases = {id(stage): image for stage, image in from_lines(df, build_args or {})}
    for i, stage in enumerate(df.stages):
        image = bases.get(id(stage))
        if image is None:  # scratch, or an earlier stage
            parent = ctx.parent(stage)
            releases[i] = releases.get(parent.index, "") if parent is not None else ""
            continue
        releases[i] = _release(image)
        last = image.rsplit("/", 1)[-1].split("@", 1)[0]
        version = last.split(":", 1)[1] if ":" in last else ""
        out.append(Dependency("image", image, version, stage.from_instruction.start_line))
    extract: dict[str, Callable[[Any], list[str]]] = {
        "apt": apt_packages,
        "apk": apk_packages,
        "pip": pip_packages,
        "npm": npm_packages,
    }
    for run in ctx.runs():
        for cmd in run.script.commands:
            for kind, packages in extract.items():
                for arg in packages(cmd):
                    if _not_by_name(arg, kind):
                        continue  # a variable, a path, a URL or a file: nothing to look up
                    name, version = _split(arg, kind)
                    release = releases.get(run.stage_index, "") if kind in ("apt", "apk") else ""
                    out.append(Dependency(kind, name, version, run.line, release))
    out.sort(key=lambda d: d.line)  # stable: FROM first on its line, then packages in order
    return out


# -- where it is looked up ----------------------------------------------------------------------


class _Lookup:
    """Fetches each index once (threads share it) and answers for one dependency."""

    def __init__(self, indexes: DepsIndexes, insecure: bool, cache: Path, timeout: float) -> None:
        import threading

        import httpx

        from imagewise.registry.session import trust_context

        self.indexes = indexes
        self.insecure = insecure
        self.cache = cache
        self.http = httpx.Client(timeout=timeout, follow_redirects=True, verify=trust_context())
        self._lock = threading.Lock()
        self._dist: dict[str, Any] = {}  # release -> name -> versions, or the error text

    def close(self) -> None:
        self.http.close()

    def _fetch(self, url: str, keep: bool) -> bytes:
        """The body at ``url`` (kept in the cache directory for a day when ``keep``)."""
        import hashlib

        from imagewise.fileio import write_file

        if keep:
            path = self.cache / hashlib.sha256(url.encode()).hexdigest()[:32]
            if path.is_file() and time.time() - path.stat().st_mtime < INDEX_TTL:
                return path.read_bytes()
        r = self.http.get(url)
        r.raise_for_status()
        if keep:
            self.cache.mkdir(parents=True, exist_ok=True)
            write_file(str(path), r.content)
        return r.content

    # distribution indexes: release -> {name: [versions]}
    def _distribution(self, release: str) -> dict[str, list[str]] | str:
        with self._lock:
            if release not in self._dist:
                try:
                    self._dist[release] = self._load_distribution(release)
                except Exception as e:  # noqa: BLE001 - reported on each package as unknown
                    self._dist[release] = f"{release} index unreachable: {_why(e)}"
            return self._dist[release]  # type: ignore[no-any-return]

    def _load_distribution(self, release: str) -> dict[str, list[str]]:
        family, name = release.split("/", 1)
        ix, arch = self.indexes, self.indexes.arch
        if family == "alpine":
            urls = [
                f"{ix.alpine}/{name}/{repo}/{_apk_arch(arch)}/APKINDEX.tar.gz"
                for repo in ("main", "community")
            ]
        elif family == "debian":
            urls = [
                f"{ix.debian}/dists/{s}/main/binary-{arch}/Packages.xz"
                for s in (name, f"{name}-updates")
            ]
            urls.append(
                f"{ix.debian_security}/dists/{name}-security/main/binary-{arch}/Packages.xz"
            )
        else:
            urls = [
                f"{ix.ubuntu}/dists/{s}/{c}/binary-{arch}/Packages.xz"
                for s in (name, f"{name}-updates", f"{name}-security")
                for c in ("main", "universe")
            ]
        with ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(lambda u: self._fetch(u, keep=True), urls))
        versions: dict[str, list[str]] = {}
        for body in bodies:
            pairs = _apkindex(body) if family == "alpine" else _packages(body)
            for pkg, version in pairs:
                versions.setdefault(pkg, []).append(version)
        return versions

    def look(self, d: Dependency) -> None:
        how = {
            "apt": self._dist_package,
            "apk": self._dist_package,
            "pip": self._pip,
            "npm": self._npm,
            "image": self._image,
        }[d.kind]
        try:
            how(d)
        except Exception as e:  # noqa: BLE001 - one dependency's lookup never stops the others
            d.status, d.note = "unknown", _why(e)

    def _dist_package(self, d: Dependency) -> None:
        if not d.release:
            d.status, d.note = "unknown", "the base image names no Debian, Ubuntu or Alpine release"
            return
        index = self._distribution(d.release)
        if isinstance(index, str):
            d.status, d.note = "unknown", index
            return
        versions = index.get(d.name)
        if not versions:
            d.status = "missing"
            return
        d.newest = _newest_deb(versions) if d.kind == "apt" else _newest_apk(versions)
        if not d.version:
            d.status = "unpinned"
        elif d.kind == "apk" and d.version.endswith("*"):  # apk's fuzzy pin: curl=8.5*
            prefix = d.version.rstrip("*")
            d.status = "ok" if any(v.startswith(prefix) for v in versions) else "gone"
        else:
            d.status = "ok" if d.version in versions else "gone"

    def _pip(self, d: Dependency) -> None:
        r = self.http.get(f"{self.indexes.pypi}/pypi/{d.name}/json")
        if r.status_code == 404:
            d.status = "missing"
            return
        r.raise_for_status()
        doc = r.json()
        d.newest = str(doc.get("info", {}).get("version") or "")
        if not d.version:
            d.status = "unpinned"
            return
        files = _pep440_lookup(doc.get("releases") or {}, d.version)
        if files is None:
            d.status = "gone"
        elif files and all(f.get("yanked") for f in files):
            d.status, d.note = "gone", "every file of this version is yanked"
        else:
            d.status = "ok"

    def _npm(self, d: Dependency) -> None:
        name = d.name.replace("/", "%2f")
        r = self.http.get(
            f"{self.indexes.npm}/{name}", headers={"Accept": "application/vnd.npm.install-v1+json"}
        )
        if r.status_code == 404:
            d.status = "missing"
            return
        r.raise_for_status()
        doc = r.json()
        tags = doc.get("dist-tags") or {}
        d.newest = str(tags.get("latest") or "")
        versions = doc.get("versions") or {}
        if not d.version:
            d.status = "unpinned"
        elif d.version in tags:
            d.status, d.note = "ok", f"dist-tag {d.version} -> {tags[d.version]}"
        elif re.fullmatch(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?", d.version):
            d.status = "ok" if d.version.lstrip("v") in versions else "gone"
        else:  # a range: ok when some published version satisfies it
            d.status = "ok" if _npm_satisfied(d.version, list(versions)) else "gone"
            d.note = f"range {d.version}"

    def _image(self, d: Dependency) -> None:
        from imagewise.errors import NotFound
        from imagewise.reference import ImageReference
        from imagewise.sources.registry import client_for
        from imagewise.tagversion import parse_tag

        ref = ImageReference.parse(d.name)
        client = client_for(ref, self.insecure)
        try:
            client.head_manifest(
                ref.repository, ref.digest and str(ref.digest) or ref.tag or "latest"
            )
            d.status = "ok"
        except NotFound:
            d.status = "gone"
        if d.status == "gone" or ref.tag:
            try:
                tags = client.list_tags(ref.repository)
            except NotFound:
                d.status = "missing"
                return
            versioned = [t for t in tags if parse_tag(t) is not None]
            if versioned:
                d.newest = max(versioned, key=lambda t: parse_tag(t).numbers)  # type: ignore[union-attr]
        if not ref.tag and not ref.digest:
            d.status = "unpinned" if d.status == "ok" else d.status


def _npm_satisfied(spec: str, versions: list[str]) -> bool:
    from univers.version_range import NpmVersionRange
    from univers.versions import InvalidVersion, SemverVersion

    try:
        wanted = NpmVersionRange.from_native(spec)  # type: ignore[no-untyped-call]
    except Exception as e:  # noqa: BLE001 - univers raises several kinds on bad ranges
        raise ValueError(f"cannot read the npm range {spec!r}: {e}") from None
    for v in versions:
        try:
            if SemverVersion(v) in wanted:
                return True
        except (InvalidVersion, ValueError):
            continue
    return False


def _why(e: BaseException) -> str:
    import httpx

    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code} from {e.request.url}"
    if isinstance(e, httpx.HTTPError):
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return str(e) or type(e).__name__


def _apk_arch(arch: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64", "386": "x86", "arm": "armv7"}.get(arch, arch)


def _packages(body: bytes) -> list[tuple[str, str]]:
    """(name, version) of a Debian ``Packages`` file (xz-compressed or plain)."""
    text = (lzma.decompress(body) if body[:6] == b"\xfd7zXZ\x00" else body).decode(
        "utf-8", "replace"
    )
    return re.findall(r"^Package: (\S+)\n(?:(?!\n)[^\n]*\n)*?Version: (\S+)", text, re.M)


def _apkindex(body: bytes) -> list[tuple[str, str]]:
    """(name, version) of an Alpine ``APKINDEX.tar.gz``."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = tar.extractfile("APKINDEX")
        text = member.read().decode("utf-8", "replace") if member else ""
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line[:2])
        if "P" in fields and "V" in fields:
            out.append((fields["P"], fields["V"]))
    return out


def _newest_deb(versions: list[str]) -> str:
    from univers.versions import DebianVersion

    return _newest(versions, DebianVersion)


def _newest_apk(versions: list[str]) -> str:
    from univers.versions import AlpineLinuxVersion

    return _newest(versions, AlpineLinuxVersion)


def _newest(versions: list[str], kind: Callable[[str], Any]) -> str:
    """The greatest version by the distribution's rules; by a natural order of its numbers and
    words when one of them is outside what the version class reads (``1.2.4_git20230717``)."""
    try:
        return max(versions, key=kind)
    except Exception:  # noqa: BLE001 - univers raises InvalidVersion and others
        return max(versions, key=_natural)


def _natural(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[A-Za-z]+", version)]


def _pep440_lookup(releases: dict[str, Any], version: str) -> list[dict[str, Any]] | None:
    """The files of ``version`` among PyPI's releases (compared as PEP 440 versions)."""
    from packaging.version import InvalidVersion, Version

    if version in releases:
        return list(releases[version])
    try:
        want = Version(version)
    except InvalidVersion:
        return None
    for text, files in releases.items():
        try:
            if Version(text) == want:
                return list(files)
        except InvalidVersion:
            continue
    return None


def deps_check(
    dockerfile: str | Path,
    *,
    indexes: DepsIndexes | None = None,
    build_args: dict[str, str] | None = None,
    insecure: bool = False,
    cache_dir: str | Path | None = None,
    timeout: float = 30.0,
    jobs: int = 8,
) -> DepsResult:
    """Look up every package and base image of ``dockerfile`` (see the module docstring)."""
    if not Path(dockerfile).is_file():
        raise UsageError(f"{dockerfile}: no such Dockerfile")
    deps = requirements(dockerfile, build_args)
    if cache_dir is None:
        from imagewise.cache import default_dir

        cache_dir = default_dir().parent / "indexes"
    lookup = _Lookup(indexes or DepsIndexes(), insecure, Path(cache_dir), timeout)
    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(lookup.look, deps))
    finally:
        lookup.close()
    return DepsResult(str(dockerfile), deps)


def deps_table(result: DepsResult) -> str:
    rows = [
        f"{d.line:>4}  {d.kind:<5}  {d.status:<8}  {d.name}"
        + (f"={d.version}" if d.version and d.kind != "image" else "")
        + (f"  (newest {d.newest})" if d.newest and d.newest != d.version else "")
        + (f"  [{d.release}]" if d.release else "")
        + (f"  {d.note}" if d.note else "")
        for d in result.dependencies
    ]
    bad = result.failed
    rows.append(
        f"{len(result.dependencies)} dependencies: "
        + (f"{len(bad)} missing or gone" if bad else "all found")
        + (
            f", {sum(d.status == 'unknown' for d in result.dependencies)} unknown"
            if any(d.status == "unknown" for d in result.dependencies)
            else ""
        )
    )
    return "\n".join(rows) + "\n"
