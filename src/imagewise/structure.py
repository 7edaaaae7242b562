"""``imagewise test IMAGE --config tests.yaml``: container-structure-test's YAML (schemaVersion
2.0.0) on an image, without a container runtime for everything but command tests.

File existence, file content, metadata and license tests are answered from the image itself:
one pass over the layers builds the final filesystem (``layers.tree.FileTree``, whiteouts
honoured) and keeps the content of just the files the content tests name; the config answers
the metadata test. Paths are followed through symbolic links as a container would see them.
Command tests run the image with a real runtime (``runtime.BuildahRuntime``: a fresh working
container per test, its setup commands, the command, its teardown; stdout and stderr matched
against the expected and excluded regexes, the exit code compared). Without a runtime they are
reported as errors naming what is missing.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from imagewise.errors import ConfigError, UsageError
from imagewise.layers.model import Entry, Kind, Visitor

SCHEMA = "2.0.0"


class Outcome:
    __slots__ = ("kind", "name", "passed", "errors", "platform", "skipped")  # noqa: RUF023

    def __init__(
        self,
        kind: str,
        name: str,
        errors: list[str],
        platform: str | None = None,
        skipped: str | None = None,
    ) -> None:
        self.kind, self.name, self.errors = kind, name, errors
        self.platform = platform  # of a multi-platform image, else None
        self.skipped = skipped  # why the test could not run here (not a failure)
        self.passed = not errors

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "platform": self.platform,
            "pass": self.passed,
            "skipped": self.skipped,
            "errors": self.errors,
        }


class TestRun:
    def __init__(self, image: str, outcomes: list[Outcome]) -> None:
        self.image, self.outcomes = image, outcomes

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "pass": sum(o.passed and not o.skipped for o in self.outcomes),
            "fail": sum(not o.passed for o in self.outcomes),
            "skip": sum(o.skipped is not None for o in self.outcomes),
            "results": [o.to_json() for o in self.outcomes],
        }


class _Contents(Visitor):
    """Keeps the bytes of the files at ``paths`` as the last layer wrote them."""

    name = "structure-contents"
    cacheable = False

    def __init__(self, paths: set[str]) -> None:
        self.paths = paths
        self.data: dict[str, bytes] = {}

    def wants_content(self, entry: Entry) -> bool:
        return entry.kind is Kind.FILE and entry.path in self.paths

    def visit(self, entry: Entry) -> None:
        if entry.path in self.paths and entry.kind is Kind.FILE:
            self.data[entry.path] = entry.read(16 << 20)


def _norm(path: str) -> str:
    return str(PurePosixPath("/" + path)).lstrip("/")


class _Fs:
    """Lookups in the final filesystem, following symbolic links."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def resolve(self, path: str, hops: int = 40) -> tuple[str, Any] | None:
        parts = [p for p in _norm(path).split("/") if p]
        done: list[str] = []
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, part])
            node = self.tree.get(here)
            if node is None:
                return None
            if node.kind is Kind.SYMLINK:
                hops -= 1
                if hops < 0:
                    return None
                target = node.linkname
                base = [] if target.startswith("/") else done
                parts = [*[p for p in target.split("/") if p and p != "."], *parts]
                done = list(base)
                continue
            done.append(part)
        final = "/".join(done)
        node = self.tree.get(final) if final else self.tree.root
        return (final, node) if node is not None else None


def _mode_string(kind: Kind, mode: int) -> str:
    head = {Kind.DIR: "d", Kind.SYMLINK: "L"}.get(kind, "-")
    out = ""
    for shift in (6, 3, 0):
        bits = (mode >> shift) & 7
        out += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")
    return head + out


def load_tests(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise UsageError(f"test config not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"test config {path}: not valid YAML ({e})") from None
    if not isinstance(doc, dict) or str(doc.get("schemaVersion", "")) != SCHEMA:
        raise ConfigError(
            f"test config {path}: expected schemaVersion: {SCHEMA} (container-structure-test)"
        )
    known = {
        "schemaVersion",
        "fileExistenceTests",
        "fileContentTests",
        "metadataTest",
        "licenseTests",
        "commandTests",
        "globalEnvVars",
    }
    bad = sorted(set(doc) - known)
    if bad:
        raise ConfigError(f"test config {path}: unknown key {bad[0]}")
    return doc


def run_tests(image_ref: str, config_path: str, *, insecure: bool = False) -> TestRun:
    """Run the tests of ``config_path`` on ``image_ref``. A multi-platform image is tested per
    platform: file, content, metadata and license tests on every platform's image; command
    tests on the platforms this machine runs (no emulation is assumed), skipped on the others."""
    from imagewise.oci.model import Platform
    from imagewise.sources import open_source

    doc = load_tests(config_path)
    outcomes: list[Outcome] = []
    host = Platform.host()
    with open_source(image_ref, insecure=insecure) as src:
        first = src.image()
        platforms = _platforms(first)
        for plat in platforms:
            image = first if plat is None else src.image(plat)
            found = _static_tests(image, doc)
            for o in found:
                o.platform = None if plat is None else str(plat)
            outcomes += found
    commands = doc.get("commandTests") or []
    for plat in platforms if commands else []:
        where = None if plat is None else str(plat)
        if plat is None or host.matches(plat):
            found = _commands(image_ref, commands, doc.get("globalEnvVars") or [], insecure, plat)
        else:
            why = f"{plat} does not run on this {host} machine (no emulation is assumed)"
            found = [
                Outcome("command", str(t.get("name", "command")), [], None, why) for t in commands
            ]
        for o in found:
            o.platform = where
        outcomes += found
    return TestRun(image_ref, outcomes)


def _platforms(image: Any) -> list[Any]:
    """The platforms of ``image``'s index (attestations' ``unknown/unknown`` left out), or
    ``[None]`` for a single-platform image."""
    from imagewise.oci.model import Platform

    if image.index is None:
        return [None]
    found = [Platform.parse(p) for p in image.index.platforms() if not p.startswith("unknown/")]
    return found or [None]


def _static_tests(image: Any, doc: dict[str, Any]) -> list[Outcome]:
    """File existence, content, metadata and license tests: one pass over ``image``'s layers
    (a second one only for content reached through symlinks)."""
    from imagewise.layers.passes import run_pass
    from imagewise.layers.tree import TreeVisitor

    content_paths = {_norm(t.get("path", "")) for t in doc.get("fileContentTests") or []}
    tree_v = TreeVisitor()
    # content tests may name a path through a symlink: keep the candidates' targets too
    contents = _Contents(content_paths)
    run_pass(image, [tree_v, contents])
    fs = _Fs(tree_v.tree)
    resolved = {p: fs.resolve(p) for p in content_paths}
    missing = {
        r[0]
        for r in resolved.values()
        if r and r[0] not in contents.data and r[1].kind is Kind.FILE
    }
    if missing:  # reached through a symlink: read the targets in a second pass
        more = _Contents(missing)
        run_pass(image, [more])
        contents.data.update(more.data)
    outcomes: list[Outcome] = []
    for t in doc.get("fileExistenceTests") or []:
        outcomes.append(_existence(fs, t))
    for t in doc.get("fileContentTests") or []:
        outcomes.append(_content(fs, contents.data, t))
    if doc.get("metadataTest"):
        outcomes.append(_metadata(image.config, doc["metadataTest"]))
    for t in doc.get("licenseTests") or []:
        outcomes.append(_license(tree_v.tree, fs, t))
    return outcomes


def _commands(
    image_ref: str,
    tests: list[dict[str, Any]],
    global_env: list[dict[str, Any]],
    insecure: bool,
    platform: Any = None,
) -> list[Outcome]:
    from imagewise.runtime import BuildahRuntime

    try:
        runtime = BuildahRuntime(insecure=insecure)
    except UsageError as e:
        return [Outcome("command", str(t.get("name", "command")), [str(e)]) for t in tests]
    return [_command(runtime, image_ref, t, global_env, platform) for t in tests]


def _argv(item: Any, where: str) -> list[str]:
    if not isinstance(item, list) or not item or not all(isinstance(a, str) for a in item):
        raise ConfigError(f"{where}: expected a command as a list of strings")
    return list(item)


def _command(
    runtime: Any, image_ref: str, t: dict[str, Any], global_env: list[Any], platform: Any = None
) -> Outcome:
    name = str(t.get("name", "command"))
    where = f"commandTests[{name}]"
    env = {str(e["key"]): str(e.get("value", "")) for e in [*global_env, *(t.get("envVars") or [])]}
    argv = _argv([t.get("command"), *(t.get("args") or [])], where)
    errors: list[str] = []
    with runtime.container(image_ref, platform) as ctr:
        for step in t.get("setup") or []:
            done = runtime.run(ctr, _argv(step, f"{where}.setup"), env)
            if done.exit_code != 0:
                errors.append(f"setup {step} exited {done.exit_code}: {done.stderr.strip()}")
        if not errors:
            done = runtime.run(ctr, argv, env)
            want = int(t.get("exitCode", 0))
            if done.exit_code != want:
                errors.append(f"exit code {done.exit_code}, expected {want}")
            for key, text, must in (
                ("expectedOutput", done.stdout, True),
                ("excludedOutput", done.stdout, False),
                ("expectedError", done.stderr, True),
                ("excludedError", done.stderr, False),
            ):
                stream = "output" if "Output" in key else "error"
                for pattern in t.get(key) or []:
                    found = re.search(pattern, text, re.M) is not None
                    if found != must:
                        errors.append(
                            f"{stream} {'lacks' if must else 'has'} {pattern!r}: {text.strip()[:200]!r}"
                        )
        for step in t.get("teardown") or []:
            runtime.run(ctr, _argv(step, f"{where}.teardown"), env)
    return Outcome("command", name, errors)


def _existence(fs: _Fs, t: dict[str, Any]) -> Outcome:
    name = str(t.get("name") or t.get("path"))
    path = str(t.get("path", ""))
    should = t.get("shouldExist", True)
    found = fs.resolve(path)
    errors: list[str] = []
    if should and found is None:
        errors.append(f"{path} does not exist")
    elif not should and found is not None:
        errors.append(f"{path} exists")
    if found is not None and should:
        _, node = found
        if "permissions" in t:
            got = _mode_string(node.kind, node.mode)
            if got != t["permissions"]:
                errors.append(f"{path} has permissions {got}, expected {t['permissions']}")
        for key in ("uid", "gid"):
            if key in t and getattr(node, key) != int(t[key]):
                errors.append(f"{path} has {key} {getattr(node, key)}, expected {t[key]}")
        who = t.get("isExecutableBy")
        if who:
            bits = {"owner": 0o100, "group": 0o010, "other": 0o001, "any": 0o111}.get(who)
            if bits is None:
                errors.append(f"isExecutableBy {who!r}: expected owner, group, other or any")
            elif not node.mode & bits:
                errors.append(f"{path} is not executable by {who}")
    return Outcome("file-existence", name, errors)


def _content(fs: _Fs, data: dict[str, bytes], t: dict[str, Any]) -> Outcome:
    name = str(t.get("name") or t.get("path"))
    path = str(t.get("path", ""))
    found = fs.resolve(path)
    if found is None or found[1].kind is not Kind.FILE:
        return Outcome("file-content", name, [f"{path} is not a file in the image"])
    text = data.get(found[0], b"").decode("utf-8", "replace")
    errors = [
        f"expected content /{p}/ not found in {path}"
        for p in t.get("expectedContents") or []
        if not re.search(p, text, re.MULTILINE)
    ]
    errors += [
        f"excluded content /{p}/ found in {path}"
        for p in t.get("excludedContents") or []
        if re.search(p, text, re.MULTILINE)
    ]
    return Outcome("file-content", name, errors)


def _pairs(items: list[dict[str, Any]], have: dict[str, str], what: str) -> list[str]:
    errors = []
    for item in items or []:
        key, want = str(item.get("key")), str(item.get("value", ""))
        got = have.get(key)
        if got is None:
            errors.append(f"{what} {key} is not set")
        elif item.get("isRegex") and not re.search(want, got):
            errors.append(f"{what} {key}={got!r} does not match /{want}/")
        elif not item.get("isRegex") and got != want:
            errors.append(f"{what} {key}={got!r}, expected {want!r}")
    return errors


def _metadata(config: Any, t: dict[str, Any]) -> Outcome:
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in config.env)
    errors = _pairs(t.get("envVars") or t.get("env") or [], env, "env")
    errors += _pairs(t.get("labels") or [], dict(config.labels), "label")
    for key, attr in (("entrypoint", "entrypoint"), ("cmd", "cmd")):
        if key in t and list(getattr(config, attr) or []) != list(t[key] or []):
            errors.append(
                f"{key} is {list(getattr(config, attr) or [])}, expected {list(t[key] or [])}"
            )
    if "workdir" in t and (config.workdir or "") != t["workdir"]:
        errors.append(f"workdir is {config.workdir!r}, expected {t['workdir']!r}")
    if "user" in t and (config.user or "") != t["user"]:
        errors.append(f"user is {config.user!r}, expected {t['user']!r}")
    ports = {p.split("/")[0] for p in config.exposed_ports}
    errors += [
        f"port {p} is not exposed"
        for p in t.get("exposedPorts") or []
        if str(p).split("/")[0] not in ports
    ]
    errors += [
        f"port {p} is exposed"
        for p in t.get("unexposedPorts") or []
        if str(p).split("/")[0] in ports
    ]
    volumes = set(config.volumes)
    errors += [f"volume {v} is not declared" for v in t.get("volumes") or [] if v not in volumes]
    errors += [f"volume {v} is declared" for v in t.get("unmountedVolumes") or [] if v in volumes]
    return Outcome("metadata", "metadata", errors)


def _license(tree: Any, fs: _Fs, t: dict[str, Any]) -> Outcome:
    errors = []
    if t.get("debian"):
        docs = [
            p for p, n in tree.walk("usr/share/doc") if p.count("/") == 3 and n.kind is Kind.DIR
        ]
        errors += [
            f"/{d} has no copyright file" for d in docs if fs.resolve(f"{d}/copyright") is None
        ]
    errors += [
        f"license file {f} is missing" for f in t.get("files") or [] if fs.resolve(f) is None
    ]
    return Outcome("license", "licenses", errors)


def junit_xml(run: TestRun) -> str:
    from xml.sax.saxutils import escape, quoteattr

    cases = []
    for o in run.outcomes:
        body = "".join(f"<failure message={quoteattr(e)}>{escape(e)}</failure>" for e in o.errors)
        if o.skipped:
            body += f"<skipped message={quoteattr(o.skipped)}/>"
        name = f"{o.name} [{o.platform}]" if o.platform else o.name
        cases.append(
            f"  <testcase classname={quoteattr(o.kind)} name={quoteattr(name)}>{body}</testcase>"
        )
    fails = sum(not o.passed for o in run.outcomes)
    skips = sum(o.skipped is not None for o in run.outcomes)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites><testsuite name={quoteattr(run.image)} tests="{len(run.outcomes)}" '
        f'failures="{fails}" skipped="{skips}">\n'
        + "\n".join(cases)
        + "\n</testsuite></testsuites>\n"
    )


def test_table(run: TestRun) -> str:
    lines = []
    for o in run.outcomes:
        word = "SKIP" if o.skipped else ("PASS" if o.passed else "FAIL")
        at = f" [{o.platform}]" if o.platform else ""
        lines.append(f"{word}  {o.kind:<15} {o.name}{at}")
        lines += [f"      {o.skipped}"] if o.skipped else []
        lines += [f"      {e}" for e in o.errors]
    doc = run.to_json()
    skipped = f", {doc['skip']} skipped" if doc["skip"] else ""
    lines.append(f"{run.image}: {doc['pass']} passed, {doc['fail']} failed{skipped}")
    return "\n".join(lines) + "\n"
