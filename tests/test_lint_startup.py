"""What `imagewise lint` imports at start-up, plugin rules found without importlib.metadata, and
lint run from many threads at once (the shell model needs no signal and no shared parser)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import corpus
from startup_support import SRC, imported

from imagewise.dockerfile.lint import lint

DOCKERFILE = corpus("dockerfiles", "docker-library__golang__1.26_alpine3.23_Dockerfile")
IMAGE = corpus("dive", "test-docker-image.tar")


def test_console_script_start_up_stays_lean(tmp_path: Path) -> None:
    # a project's pyproject.toml without a tool.imagewise table is not parsed
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    heavy = {"dataclasses", "click", "inspect"}
    for argv in (
        ["--version"],
        ["analyze", f"docker-archive:{IMAGE}"],
        ["lint", "--no-fail", str(DOCKERFILE)],
    ):
        code, modules = imported(argv, tmp_path)
        assert code == 0, argv
        assert not heavy & modules, (argv, sorted(heavy & modules))
    # lint: no plugin declared, no TOML to read, nothing but the rules and the shell parser
    assert (
        not {
            "importlib.metadata",
            "importlib.resources",
            "tomllib",
            "bashlex",
            "hashlib",
            "urllib.request",
        }
        & modules
    )
    # a plain command line is read without argparse (and the gettext and locale it imports)
    assert not {"argparse", "gettext", "locale"} & modules
    # no config file to find: the search is made with os.path (pathlib imports urllib.parse,
    # which imports ipaddress)
    assert not {"pathlib", "urllib.parse", "ipaddress"} & modules
    assert "tree_sitter._binding" in modules  # the Dockerfile has RUNs to analyse
    # tree-sitter's extension modules are loaded without their packages' __init__ (typing,
    # importlib.resources), and nothing else imports typing (this child imports contextlib)
    assert (
        not {"tree_sitter", "tree_sitter_bash", "typing", "importlib.util", "threading"} & modules
    ), sorted(
        {"tree_sitter", "tree_sitter_bash", "typing", "importlib.util", "threading"} & modules
    )
    # analyze hashes only documents (its image's config): no OpenSSL (3.8 MB of resident memory)
    # and no dataclasses (its JSON writer) either
    code, modules = imported(["analyze", f"docker-archive:{IMAGE}", "--format", "json"], tmp_path)
    assert code == 0 and not {"hashlib", "_hashlib", "dataclasses"} & modules
    # check, scan and sbom writing JSON: no dataclasses (their models are records: ~20 ms of a
    # check's start-up, with the inspect and ast that dataclasses imports)
    for argv in (
        ["check", f"docker-archive:{IMAGE}", "--offline", "--format", "json"],
        ["scan", f"docker-archive:{IMAGE}", "--offline", "--format", "json"],
        ["sbom", f"docker-archive:{IMAGE}", "--format", "json"],
    ):
        code, modules = imported(argv, tmp_path)
        assert code in (0, 1), argv  # check's verdict on the sample may be FAIL
        assert not {"dataclasses", "inspect", "ast"} & modules, (argv[0], modules)
    # an option with a checked type (a directory that exists) is read without argparse too
    code, modules = imported(
        ["lint", "--no-fail", "--context", str(tmp_path), str(DOCKERFILE)], tmp_path
    )
    assert code == 0 and "argparse" not in modules


def test_shell_parser_is_imported_only_for_a_run_that_needs_it(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text('FROM alpine:3.20\nRUN ["apk", "add", "--no-cache", "curl"]\nUSER 1000\n')
    code, modules = imported(["lint", "--no-fail", str(df)], tmp_path)
    assert code == 0
    assert not any(m.startswith("tree_sitter") for m in modules)


def test_rules_declared_as_entry_points_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "acme_rules.py").write_text(
        "from imagewise.dockerfile.rules import Hit, Rule\n"
        "from imagewise.findings import RuleInfo, Severity\n"
        "def check(ctx):\n"
        "    return [Hit(i.start_line) for i in ctx.effective() if i.keyword == 'MAINTAINER']\n"
        "RULE = Rule(RuleInfo('ACME1', Severity.WARNING, 'No MAINTAINER'), check)\n"
    )
    dist = tmp_path / "acme_rules-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imagewise.lint_rules]\nacme = acme_rules:RULE\n")
    df = tmp_path / "Dockerfile"
    df.write_text("FROM alpine:3.20\nMAINTAINER me\n")
    pythonpath = os.pathsep.join([str(SRC), str(tmp_path)])
    env = {**os.environ, "PYTHONPATH": pythonpath}
    proc = subprocess.run(
        [sys.executable, "-m", "imagewise", "lint", "-f", "json", "--no-fail", str(df)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rules = {f["rule"] for f in json.loads(proc.stdout)["findings"]}
    assert {"ACME1", "DL4000"} <= rules
    # the entry point was found through importlib.metadata, and only because one is declared
    _, modules = imported(["lint", "--no-fail", str(df)], tmp_path, pythonpath)
    assert "importlib.metadata" in modules and "acme_rules" in modules
    (dist / "entry_points.txt").write_text("[console_scripts]\nacme = acme_rules:main\n")
    _, modules = imported(["lint", "--no-fail", str(df)], tmp_path, pythonpath)
    assert "importlib.metadata" not in modules and "acme_rules" not in modules


def test_lint_in_threads_matches_serial_lint() -> None:
    from imagewise.dockerfile.shell import parse_shell

    root = corpus("dockerfiles")
    texts = [
        (p.name, p.read_text(encoding="utf-8"))
        for p in sorted(root.iterdir())
        if p.is_file() and "Dockerfile" in p.name
    ]
    assert len(texts) >= 100

    def run(item: tuple[str, str]) -> list[tuple[str, int, str]]:
        return [(f.rule, f.location.line, f.message) for f in lint(item[1], item[0])]

    parse_shell.cache_clear()
    serial = [run(t) for t in texts]
    parse_shell.cache_clear()  # every thread parses its RUNs again, side by side
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(run, texts * 2))
    assert threaded == serial * 2
    assert sum(map(len, serial)) > 500


def test_records_with_dict_fields_hash_without_them_and_compare_with_them() -> None:
    from imagewise.dockerfile.config import LintConfig
    from imagewise.dockerfile.model import Instruction
    from imagewise.findings import Severity

    a = Instruction("RUN", "RUN --mount=type=cache x", 1, 1, flags={"--mount": ("type=cache",)})
    b = a.replace(flags={})
    assert hash(a) == hash(b) and a != b  # a dataclass field's hash=False
    assert a == a.replace() and {a, a.replace()} == {a}
    c = LintConfig().replace(override={"DL3008": Severity.ERROR})
    assert c != LintConfig() and hash(c) == hash(LintConfig())
    assert LintConfig().override == {} and LintConfig().override is not LintConfig().override


def test_tree_sitter_loaded_directly_is_the_packages_own() -> None:
    """The lint path loads tree-sitter's extension module without the package's __init__; a
    later ``import tree_sitter`` takes that very module (one Parser class, one Language)."""
    code = (
        "import sys\n"
        "from imagewise.dockerfile.shell import parse_shell, _tree_sitter\n"
        "assert parse_shell('a | b').has_pipe\n"
        "assert 'tree_sitter' not in sys.modules\n"
        "import tree_sitter, tree_sitter_bash\n"
        "assert tree_sitter.Parser is _tree_sitter().Parser\n"
        "assert tree_sitter.Language is _tree_sitter().Language\n"
        "parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))\n"
        "assert parser.parse(b'a | b').root_node.child_count == 1\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_bash_grammar_loaded_directly_is_the_packages_own() -> None:
    """The lint path reads tree-sitter-bash's grammar from its extension module (the package's
    __init__ imports importlib.resources); it must be the very grammar the package gives."""
    import tree_sitter
    import tree_sitter_bash

    from imagewise.dockerfile.shell import _bash_grammar

    ours, theirs = (
        tree_sitter.Language(_bash_grammar()),
        tree_sitter.Language(tree_sitter_bash.language()),
    )
    assert (ours.name, ours.abi_version, ours.node_kind_count) == (
        theirs.name,
        theirs.abi_version,
        theirs.node_kind_count,
    )


def test_regexes_a_lint_does_not_need_are_not_compiled(tmp_path: Path) -> None:
    """Compiling a regex costs about as much as importing a small module: the secret triggers
    (never used by lint) and the pragma patterns (only for a comment with "=") wait for use."""
    df = tmp_path / "Dockerfile"
    df.write_text("# a comment\nFROM alpine:3.20\n# another one\nRUN apk add --no-cache curl\n")
    code = (
        "from imagewise.dockerfile.lint import lint\n"
        "from imagewise.dockerfile import pragmas\n"
        "from imagewise.secrets import mask\n"
        f"assert lint(open({str(df)!r}).read())\n"
        "assert not pragmas._COMPILED and not mask._TRIGGERS\n"
        "rules = lambda text: {f.rule for f in lint(text)}\n"
        "assert 'DL3018' in rules('FROM alpine:3.20\\nRUN apk add curl\\n')\n"
        "assert 'DL3018' not in rules('FROM alpine:3.20\\n"
        "# hadolint ignore=DL3018\\nRUN apk add curl\\n')\n"
        "assert pragmas._COMPILED\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
