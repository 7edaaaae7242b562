"""Declared encoders (``imagewise.encoders``): every command's ``--format`` comes from its result
kind's registry, the human format is ``table`` everywhere (``tty`` and ``text`` are aliases),
and every imagewise JSON document gets its ``schema`` envelope from the encoder layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_runner import CliRunner, Result
from conftest import corpus
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise import encoders
from imagewise.cli.args import Command, Group
from imagewise.cli.main import COMMANDS, load
from imagewise.encoders import REGISTRIES, Encoder, Formats
from imagewise.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]

BUSYBOX = ("rootfs", "busybox", "latest-musl", "busybox-1.38.0-musl-amd64-oci.tar")

#: the command whose --format each registry serves
KIND_OF = {
    "analyze": "analysis",
    "tag": "tag",
    "promote": "move",
    "rollback": "move",
    "history": "history",
    "deprecate": "deprecation",
    "outdated": "outdated",
    "du": "du",
    "test": "test",
    "build": "build",
    "deps check": "deps",
    "measure pull": "pull",
    "measure startup": "startup",
    "dedup": "dedup",
    "sync": "sync",
    "backup run": "backup",
    "backup list": "snapshots",
    "backup verify": "backup-verify",
    "restore": "restore",
    "backup forget": "backup-forget",
    "backup prune": "backup-prune",
    "backup du": "backup-du",
    "drill": "drill",
    "retention plan": "retention-plan",
    "retention apply": "retention-apply",
    "diff": "diff",
    "files": "files",
    "inspect": "inspect",
    "copy": "copy",
    "tags list": "tags",
    "tags lint": "tag-lint",
    "lint": "lint",
    "rules": "rules",
    "sbom": "sbom",
    "scan": "scan",
    "db status": "db-status",
    "check": "check",
}


def _commands() -> dict[str, Command]:
    out: dict[str, Command] = {}
    for name in COMMANDS:
        cmd = load(name)
        if isinstance(cmd, Group):
            out.update({f"{name} {sub}": c for sub, c in cmd.commands.items()})
        else:
            assert isinstance(cmd, Command)
            out[name] = cmd
    return out


def _format_action(cmd: Command, name: str) -> Any:
    actions = [
        a for a in cmd.parser(f"imagewise {name}")._actions if "--format" in a.option_strings
    ]
    return actions[0] if actions else None


def run(*args: str) -> Result:
    return CliRunner().invoke(_cli(), list(args))


def _cli() -> Any:
    from imagewise.cli.main import cli

    return cli


# -- the registries ----------------------------------------------------------------------------


def test_every_format_option_comes_from_its_registry() -> None:
    with_format = {}
    for name, cmd in _commands().items():
        action = _format_action(cmd, name)
        if action is not None:
            with_format[name] = action
    assert set(with_format) == set(KIND_OF), "a --format option without a registry, or the reverse"
    assert set(KIND_OF.values()) == set(REGISTRIES)
    for name, action in with_format.items():
        formats = REGISTRIES[KIND_OF[name]]
        assert (
            tuple(action.choices)
            == formats.choices
            == formats.ids + tuple(a for e in formats.encoders for a in e.aliases)
        ), name
        assert action.default == "table" == formats.default, name
        # an alias arrives as the canonical id; the help names the ids
        assert action.type("tty") == action.type("text") == action.type("table") == "table"
        assert all(action.type(i) == i for i in formats.ids)
        assert action.help.startswith(
            f"Output format: {', '.join(formats.ids)} [default: table"
        ) or action.help.startswith(f"Summary format: {', '.join(formats.ids)}"), action.help


def test_the_human_format_has_one_name_and_the_old_ones_as_aliases() -> None:
    for kind, formats in REGISTRIES.items():
        human = formats.encoders[0]
        assert (human.id, human.aliases, human.schema) == ("table", ("tty", "text"), None), kind
        names = [n for e in formats.encoders for n in e.names]
        assert len(names) == len(set(names)), f"{kind}: a format name is given twice"
        assert "tty" not in formats.ids and "text" not in formats.ids


def test_every_encoder_resolves_and_every_schema_is_its_kinds() -> None:
    for kind, formats in REGISTRIES.items():
        documents = [e for e in formats.encoders if e.schema]
        assert len(documents) == 1 and documents[0].id == "json", kind
        assert documents[0].schema == f"imagewise/{kind}/v1"
        for e in formats.encoders:
            assert callable(e.function()), f"{kind} {e.id}: {e.encode} does not resolve"


def test_no_renderer_writes_its_own_envelope() -> None:
    """No code but encoders.py puts a schema name in a document (``"schema": "imagewise/..."``)
    or in a constant (``SCHEMA = "imagewise/..."``); the names are declared once."""
    import re

    pattern = re.compile(r"""(?:["']schema["']\s*:\s*|(?<![!=<>])=\s*)["']imagewise/[a-z-]+/v\d""")
    assert pattern.findall('doc = {"schema": "imagewise/x/v1"}; SCHEMA = "imagewise/lint/v1"')
    for path in (ROOT / "src" / "imagewise").rglob("*.py"):
        found = pattern.findall(path.read_text("utf-8"))
        if path.name != "encoders.py":
            assert not found, f"{path.relative_to(ROOT)} names {found}"


def test_building_parsers_imports_no_renderer() -> None:
    """The registry is declarative: a command's parser (and its --help) loads no encoder."""
    targets = sorted(
        {
            e.encode.split(":")[0]
            for f in REGISTRIES.values()
            for e in f.encoders
            if not e.encode.startswith(("imagewise.cli.", "imagewise.encoders"))
        }
    )
    code = (
        "import sys\n"
        "from imagewise.cli.main import COMMANDS, load\n"
        "from imagewise.cli.args import Group\n"
        "for n in COMMANDS:\n"
        "    c = load(n)\n"
        "    for s in (c.commands.values() if isinstance(c, Group) else [c]):\n"
        "        s.parser('x').format_help()\n"
        f"print(sorted(m for m in {targets!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"},
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    assert len(targets) >= 10  # the check can fail: the renderers are real modules


def test_unknown_format_is_one_line_naming_the_ids() -> None:
    res = run("rules", "--format", "yaml")
    assert res.exit_code == 2
    assert "unknown format 'yaml' (choose from table, json)" in res.stderr
    with pytest.raises(
        UsageError,
        match="unknown format 'yaml' for lint; choose one of "
        "table, json, sarif, checkstyle, gitlab",
    ):
        encoders.LINT.get("yaml")


def test_help_shows_canonical_names_and_mentions_aliases() -> None:
    res = run("lint", "--help")
    text = " ".join(res.stdout.split())
    assert (
        "Output format: table, json, sarif, checkstyle, gitlab [default: table; also tty and "
        "text for table]" in text
    )
    assert "[-f FORMAT]" in res.stdout.split("\n\n")[0]  # usage: FORMAT, not the alias list


def test_envelope_is_added_once_first_and_only_to_documents() -> None:
    def body(value: dict[str, Any], flag: bool = False) -> dict[str, Any]:
        return {**value, "flag": flag}

    def text(value: dict[str, Any]) -> str:
        return json.dumps(value)

    import types

    mod = types.ModuleType("encoders_probe")
    mod.body, mod.text = body, text  # type: ignore[attr-defined]
    sys.modules["encoders_probe"] = mod
    try:
        f = Formats(
            "probe",
            encoders.table("encoders_probe:text"),
            encoders.document("imagewise/probe/v1", "encoders_probe:body", ascii=False),
            Encoder("raw", "encoders_probe:text"),
        )
        out = f.encode("json", {"name": "é"}, flag=True, unused=1)
        assert out == '{\n  "schema": "imagewise/probe/v1",\n  "name": "é",\n  "flag": true\n}\n'
        assert f.encode("raw", {"a": 1}, flag=True) == '{"a": 1}\n'  # no envelope, no keyword
        assert f.encode("tty", {}) == f.encode("text", {}) == "{}\n"
        assert f.document({"a": 1}) == {"schema": "imagewise/probe/v1", "a": 1, "flag": False}
    finally:
        del sys.modules["encoders_probe"]


# -- every command, end to end -------------------------------------------------------------------

DIVE = f"docker-archive:{corpus('dive', 'test-docker-image.tar')}"
KANIKO = f"docker-archive:{corpus('dive', 'test-kaniko-image.tar')}"
DOCKERFILE = str(corpus("dive", "Dockerfile.example"))


@pytest.fixture(scope="module")
def osv_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("osv") / "osv.sqlite"
    advisories = sorted(corpus("osv", "pypa-advisory-database", "vulns").rglob("*.yaml"))[:20]
    res = run("db", "import", "--db", str(db), *map(str, advisories))
    assert res.exit_code == 0, res.output
    return db


def _build_context(tmp: Path) -> Path:
    ctx = tmp / "build-ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    (ctx / "f").write_text("x\n")
    return ctx


def _deps_dockerfile(tmp: Path, base: str) -> Path:
    path = tmp / "Dockerfile.deps"
    path.write_text(f"FROM {base}\n")
    return path


def _structure_config(tmp: Path) -> Path:
    cfg = tmp / "structure.yaml"
    cfg.write_text("schemaVersion: 2.0.0\nmetadataTest: {}\n")
    return cfg


def _sync_config(tmp: Path, host: str, repo: str) -> Path:
    cfg = tmp / "sync.yaml"
    cfg.write_text(f"{host}:\n  images:\n    {repo}: ['1.0']\n")
    return cfg


def _invocations(tmp: Path, db: Path, registry: RegistryServer) -> dict[str, list[str]]:
    repo = unique_repo("enc")
    push_image(registry, repo, "1.0", build_image((10,), seed=5))
    return {
        "analyze": ["analyze", DIVE],
        "diff": ["diff", DIVE, KANIKO],
        "files": ["files", DIVE, "--layer", "2"],
        "inspect": ["inspect", DIVE],
        "copy": ["copy", DIVE, f"oci:{tmp / 'copy'}:1"],
        "tags list": ["tags", f"{registry.host}/{repo}"],
        "tags lint": ["tags", "lint", f"{registry.host}/{repo}", "--state", str(tmp / "s.json")],
        "promote": ["promote", f"{registry.host}/{repo}:1.0", "--to", "qa"],
        "rollback": ["rollback", f"{registry.host}/{repo}", "--env", "qa", "--to", "1.0"],
        "history": ["history", f"{registry.host}/{repo}"],
        "deprecate": ["deprecate", f"{registry.host}/{repo}:1.0", "--reason", "old"],
        "outdated": ["outdated", f"{registry.host}/{repo}:1.0"],
        "du": ["du", f"{registry.host}/{repo}"],
        "test": ["test", f"{registry.host}/{repo}:1.0", "--config", str(_structure_config(tmp))],
        "build": ["build", str(_build_context(tmp)), "--lint-fail-on", "none"],
        "deps check": ["deps", "check", str(_deps_dockerfile(tmp, f"{registry.host}/{repo}:1.0"))],
        "measure pull": ["measure", "pull", f"{registry.host}/{repo}:1.0", "--runs", "1"],
        "measure startup": [
            "measure",
            "startup",
            "oci-archive:" + str(corpus(*BUSYBOX)),
            "--runs",
            "1",
            "--log",
            "ready",
            "--command",
            "sh -c 'echo ready; sleep 30'",
        ],
        "dedup": ["dedup", f"{registry.host}/{repo}"],
        "sync": [
            "sync",
            str(_sync_config(tmp, registry.host, repo)),
            f"docker://{registry.host}/m",
        ],
        "backup run": ["backup", "run", f"{registry.host}/{repo}", "--to", str(tmp / "store")],
        "backup list": ["backup", "list", str(tmp / "store")],
        "backup verify": ["backup", "verify", str(tmp / "store")],
        "restore": [
            "restore",
            "latest",
            "--store",
            str(tmp / "store"),
            "--to",
            f"oci:{tmp / 'rst'}",
        ],
        "backup forget": ["backup", "forget", str(tmp / "store"), "--keep-last", "5"],
        "backup prune": ["backup", "prune", str(tmp / "store")],
        "backup du": ["backup", "du", str(tmp / "store")],
        "drill": [
            "drill",
            "latest",
            "--store",
            str(tmp / "store"),
            "--scratch",
            f"oci:{tmp / 'drills'}",
        ],
        "retention plan": ["retention", "plan", f"{registry.host}/{repo}"],
        "retention apply": ["retention", "apply", f"{registry.host}/{repo}"],
        "tag": ["tag", f"{registry.host}/{repo}:1.0", "--env", "staging", "--dry-run"],
        "lint": ["lint", DOCKERFILE, "--no-fail"],
        "rules": ["rules"],
        "sbom": ["sbom", DIVE],
        "scan": ["scan", DIVE, "--db", str(db)],
        "db status": ["db", "status", "--db", str(db)],
        "check": ["check", DIVE, "--db", str(db), "--no-cache"],
    }


def test_every_machine_format_of_every_command_carries_its_envelope(
    tmp_path: Path, osv_db: Path, registry: RegistryServer
) -> None:
    calls = _invocations(tmp_path, osv_db, registry)
    assert set(calls) == set(KIND_OF)
    for name, args in calls.items():
        formats = REGISTRIES[KIND_OF[name]]
        for enc in formats.encoders:
            if enc.id in ("table", "html"):
                continue
            if name == "copy":
                args = [*args[:-1], f"oci:{tmp_path / enc.id}:1"]
            res = run(*args, "--format", enc.id)
            fails = 1 if name == "check" else 0  # the dive image fails the default policy
            assert res.exit_code in (0, fails), f"{name} --format {enc.id}: {res.stderr[-2000:]}"
            if enc.schema:
                doc = json.loads(res.stdout)
                assert next(iter(doc)) == "schema" and doc["schema"] == enc.schema, name
            else:  # standard formats (SARIF, CycloneDX, SPDX, GitLab, Checkstyle) as they are
                assert '"schema": "imagewise/' not in res.stdout, (name, enc.id)


def test_old_human_names_give_the_same_output(tmp_path: Path) -> None:
    for args in (["lint", DOCKERFILE, "--no-fail"], ["rules"], ["files", DIVE, "--layer", "1"]):
        outs = {fmt: run(*args, "--format", fmt) for fmt in ("table", "tty", "text")}
        assert {r.exit_code for r in outs.values()} == {0}
        assert outs["table"].stdout and len({r.stdout for r in outs.values()}) == 1, args
    copied = [
        run("copy", DIVE, f"oci:{tmp_path / fmt}:1", "--format", fmt).stdout.replace(
            str(tmp_path / fmt), "DEST"
        )
        for fmt in ("text", "table")
    ]
    assert copied[0] == copied[1] and "blobs copied" in copied[0]
