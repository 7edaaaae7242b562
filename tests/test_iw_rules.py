"""The guide's IW rules: each fires on the practice it names, stays quiet on the good version,
and none fires wrongly on the official-image corpus."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from conftest import corpus

from imagewise.dockerfile.iw_rules import (
    IW_RULES,
    IWContext,
    check,
    dockerignore_excludes,
    secret_name,
    split_image,
    tag_is_pinned,
)
from imagewise.dockerfile.parser import parse
from imagewise.findings import Severity


def rules_hit(text: str, ctx: IWContext | None = None, rule: str | None = None) -> list[str]:
    found = check(parse(text), ctx, [rule] if rule else None)
    return [f"{f.rule}@{f.location.line}" for f in found]


def test_rules_are_declared() -> None:
    assert len(IW_RULES) >= 12
    for rid, r in IW_RULES.items():
        assert rid.startswith("IW") and r.info.id == rid
        assert r.info.title and r.info.rationale and r.info.fix and r.info.area
        assert r.info.source == "imagewise"
        assert isinstance(r.info.severity, Severity)


@pytest.mark.parametrize(
    ("tag", "pinned"),
    [
        ("3.12-slim", True),
        ("bookworm-slim", True),
        ("1.27.4-alpine", True),
        ("ltsc2022", True),
        ("alpine", False),
        ("lts", False),
        ("mainline-alpine", False),
        ("stable-slim", False),
        ("slim", False),
        ("22-alpine", True),
        ("current", False),
    ],
)
def test_tag_pinning(tag: str, pinned: bool) -> None:
    assert tag_is_pinned(tag) is pinned


def test_split_image() -> None:
    assert split_image("python:3.12") == ("docker.io", "python", "3.12", "")
    assert split_image("localhost:5000/a/b:1@sha256:ab") == (
        "localhost:5000",
        "a/b",
        "1",
        "sha256:ab",
    )
    assert split_image("ghcr.io/org/img") == ("ghcr.io", "org/img", "", "")


def test_iw101_floating_base() -> None:
    assert rules_hit("FROM node:lts-alpine\n", rule="IW101") == ["IW101@1"]
    assert (
        rules_hit("FROM node:22.3-alpine\nFROM python@sha256:" + "a" * 64 + "\n", rule="IW101")
        == []
    )
    # untagged/latest belong to DL3006/DL3007; stage references and scratch are not images
    assert rules_hit("FROM ubuntu\nFROM alpine:latest\nFROM scratch\n", rule="IW101") == []
    assert rules_hit("FROM golang:1.22 AS build\nFROM build\n", rule="IW101") == []
    assert rules_hit("ARG B=nginx:mainline\nFROM ${B}\n", rule="IW101") == ["IW101@2"]


def test_iw102_registry_allow_list() -> None:
    text = "FROM evil.example.com/base:1.0\nFROM ghcr.io/org/app:2\nFROM python:3.12\n"
    assert rules_hit(text, rule="IW102") == ["IW102@1"]
    ctx = IWContext(allowed_registries=("registry.corp", "*.example.com"))
    assert rules_hit(text, ctx, rule="IW102") == ["IW102@2", "IW102@3"]


def test_iw103_non_root() -> None:
    app = 'FROM python:3.12-slim\nCOPY . /app\nCMD ["python", "/app/main.py"]\n'
    assert rules_hit(app, rule="IW103") == ["IW103@3"]
    assert rules_hit(app.replace("CMD", "USER 10001\nCMD"), rule="IW103") == []
    # an explicit root user is DL3002's finding, not a second one from IW103
    as_root = app.replace("CMD", "USER app\nUSER root\nCMD")
    assert rules_hit(as_root, rule="IW103") == []
    from imagewise.dockerfile.lint import lint

    assert [f.location.line for f in lint(as_root, only=["DL3002"])] == [4]
    scratch = 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n'
    assert rules_hit(scratch, rule="IW103") == ["IW103@3"]
    # user set in the stage it builds FROM counts; a base image without CMD is not an app
    assert (
        rules_hit(
            'FROM alpine:3.20 AS base\nUSER 1000\nFROM base\nCOPY a /a\nCMD ["/a"]\n', rule="IW103"
        )
        == []
    )
    assert rules_hit("FROM alpine:3.20\nRUN apk add --no-cache curl\n", rule="IW103") == []
    # privileges dropped by the entrypoint (gosu), as the official database images do
    gosu = app.replace("COPY", "RUN apt-get install -y gosu\nCOPY")
    assert rules_hit(gosu, rule="IW103") == []
    assert (
        rules_hit('FROM gcr.io/distroless/static:nonroot\nCOPY app /\nCMD ["/app"]\n', rule="IW103")
        == []
    )


def test_iw104_healthcheck() -> None:
    assert rules_hit("FROM nginx:1.27\nEXPOSE 80\n", rule="IW104") == ["IW104@2"]
    assert (
        rules_hit("FROM nginx:1.27\nEXPOSE 80\nHEALTHCHECK CMD curl -f localhost\n", rule="IW104")
        == []
    )
    assert rules_hit("FROM nginx:1.27\nEXPOSE 80\nHEALTHCHECK NONE\n", rule="IW104") == []
    assert rules_hit('FROM python:3.12\nCMD ["python3"]\n', rule="IW104") == []


def test_iw105_consecutive_runs() -> None:
    text = (
        "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n"
        "RUN apt-get install -y git\nRUN rm -rf /tmp/build\nRUN echo done\n"
    )
    assert rules_hit(text, rule="IW105") == ["IW105@3", "IW105@4", "IW105@5"]
    # reported even where only a person can join them safely (cd changes the next command's
    # directory, `||` would swallow a failure): --fix leaves those alone
    from imagewise.dockerfile.fix import fix

    for text in (
        "FROM debian:12\nRUN cd /src && make\nRUN rm -rf /src\n",
        "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y a || true\n",
    ):
        assert rules_hit(text, rule="IW105") == ["IW105@3"]
        assert fix(text, rules=["IW105"]).fixed == text
    # different mounts, exec form, a SHELL override: left alone
    assert (
        rules_hit(
            "FROM debian:12\nRUN --mount=type=cache,target=/v apt-get update\n"
            "RUN apt-get install -y curl\n",
            rule="IW105",
        )
        == []
    )
    assert (
        rules_hit(
            'FROM debian:12\nRUN ["apt-get", "update"]\nRUN apt-get install -y x\n', rule="IW105"
        )
        == []
    )


def test_iw111_cache_cleanup_in_later_run() -> None:
    text = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n"
        "ENV A=1\nRUN rm -rf /var/lib/apt/lists/*\n"
    )
    assert rules_hit(text, rule="IW111") == ["IW111@4"]
    same = "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
    assert rules_hit(same, rule="IW111") == []
    # directly after the install it is IW105's to report (and --fix merges it)
    adjacent = "FROM debian:12\nRUN apt-get update && apt-get install -y curl\nRUN apt-get clean\n"
    assert rules_hit(adjacent, rule="IW111") == []
    assert rules_hit(adjacent, rule="IW105") == ["IW105@3"]


def test_iw106_manifests_before_source() -> None:
    bad = 'FROM node:22\nWORKDIR /app\nCOPY . .\nRUN npm ci\nCMD ["node", "index.js"]\n'
    assert rules_hit(bad, rule="IW106") == ["IW106@4"]
    good = (
        "FROM node:22\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci\nCOPY . .\n"
        "RUN npm run build\n"
    )
    assert rules_hit(good, rule="IW106") == []
    py = "FROM python:3.12\nCOPY . /app\nRUN pip install --no-cache-dir -r /app/requirements.txt\n"
    assert rules_hit(py, rule="IW106") == ["IW106@3"]
    assert rules_hit("FROM python:3.12\nCOPY . /app\nRUN pip install /app\n", rule="IW106") == []


def test_iw108_toolchain_in_final_stage() -> None:
    bad = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y gcc make && "
        'rm -rf /var/lib/apt/lists/*\nCOPY . /src\nRUN make -C /src\nCMD ["/src/app"]\n'
    )
    assert rules_hit(bad, rule="IW108") == ["IW108@2"]
    purged = bad.replace("rm -rf", "make -C /src && apt-get purge -y gcc make && rm -rf")
    assert rules_hit(purged, rule="IW108") == []
    virtual = (
        "FROM alpine:3.20\nRUN apk add --no-cache --virtual .build-deps gcc musl-dev && "
        'make && apk del .build-deps\nCMD ["/app"]\n'
    )
    assert rules_hit(virtual, rule="IW108") == []
    multi = (
        "FROM golang:1.22 AS build\nRUN go build -o /app .\nFROM alpine:3.20\n"
        'COPY --from=build /app /app\nCMD ["/app"]\n'
    )
    assert rules_hit(multi, rule="IW108") == []
    single = 'FROM golang:1.22\nCOPY . .\nRUN go build -o /app .\nCMD ["/app"]\n'
    assert rules_hit(single, rule="IW108") == ["IW108@1"]
    # a toolchain image without CMD is a toolchain image on purpose
    assert rules_hit("FROM debian:12\nRUN apt-get install -y gcc\n", rule="IW108") == []


def test_iw109_secrets() -> None:
    text = (
        "FROM alpine:3.20\nARG NPM_TOKEN\nENV DB_PASSWORD=hunter2hunter2\n"
        "ENV GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\nENV PASSWORD_FILE=/run/pw\n"
        "ENV AWS=AKIAIOSFODNN7EXAMPLE\nARG apiKey=x\nENV PWD=/app\n"
        "ENV URL=https://user:s3cret@example.com/x\n"
    )
    assert rules_hit(text, rule="IW109") == ["IW109@2", "IW109@3", "IW109@6", "IW109@7", "IW109@9"]
    found = check(parse(text), None, ["IW109"])
    assert "hunter2hunter2" not in " ".join(f.message for f in found)  # values are masked
    assert secret_name("GITHUB_TOKEN") and secret_name("clientSecret")
    assert not secret_name("TOKEN_URL") and not secret_name("GPG_KEYS")
    assert secret_name("DB_PASS") and not secret_name("PASS_MAX_DAYS")
    assert not secret_name("AUTH_MODE") and secret_name("BASIC_AUTH")
    harmless = "FROM alpine:3.20\nENV TOKEN_TTL=3600 SECRET_ROTATION=true\nARG DB_PASSWORD=\n"
    assert rules_hit(harmless, rule="IW109") == ["IW109@3"]


def test_iw110_add_url_checksum() -> None:
    text = (
        "FROM alpine:3.20\nADD https://example.com/a.tgz /a.tgz\n"
        "ADD --checksum=sha256:" + "0" * 64 + " https://example.com/b.tgz /b\n"
        "ADD local.tgz /x/\n"
    )
    assert rules_hit(text, rule="IW110") == ["IW110@2"]


def test_iw107_dockerignore(tmp_path: Path) -> None:
    df = "FROM node:22\nCOPY . /app\nRUN cd /app && npm ci\n"
    ctx = IWContext(context_dir=str(tmp_path), dockerfile_dir=str(tmp_path))
    assert rules_hit(df, ctx, "IW107") == ["IW107@1"]
    assert rules_hit(df, IWContext(), "IW107") == []  # no context (stdin): nothing to check
    (tmp_path / ".dockerignore").write_text(".git\n")
    (tmp_path / ".env").write_text("A=1\n")
    found = check(parse(df), ctx, ["IW107"])
    assert len(found) == 1 and "node_modules, .env" in found[0].message
    (tmp_path / ".dockerignore").write_text("# ctx\n**/.git\nnode_modules\n.env*\n")
    assert rules_hit(df, ctx, "IW107") == []
    # allow-list style: everything excluded, only src re-included
    (tmp_path / ".dockerignore").write_text("*\n!src\n")
    assert rules_hit(df, ctx, "IW107") == []
    # BuildKit's per-Dockerfile ignore file wins
    (tmp_path / "Dockerfile.dockerignore").write_text("node_modules\n")
    found = check(parse(df, str(tmp_path / "Dockerfile")), ctx, ["IW107"])
    assert (
        len(found) == 1
        and "Dockerfile.dockerignore does not exclude .git, .env" in found[0].message
    )


def test_dockerignore_matching() -> None:
    lines = ["**/*.pem", "build/", "!build/keep", "/logs"]
    assert dockerignore_excludes(lines, "a/b/c.pem") and dockerignore_excludes(lines, "c.pem")
    assert dockerignore_excludes(lines, "build/x") and not dockerignore_excludes(
        lines, "build/keep"
    )
    assert dockerignore_excludes(lines, "logs/today") and not dockerignore_excludes(lines, "src")


def test_iw112_npm_ci_with_lockfile(tmp_path: Path) -> None:
    df = "FROM node:22\nCOPY package*.json ./\nRUN npm install --omit=dev\nRUN npm install left-pad\n"
    ctx = IWContext(context_dir=str(tmp_path), dockerfile_dir=str(tmp_path))
    assert rules_hit(df, ctx, "IW112") == []
    (tmp_path / "package-lock.json").write_text("{}")
    assert rules_hit(df, ctx, "IW112") == ["IW112@3"]


def test_corpus_has_no_false_positives() -> None:
    """Over the official images only the findings we reviewed fire: floating `mainline` bases in
    nginx's module builder and missing HEALTHCHECKs on service images (postgres, redis, nginx)."""
    folder = corpus("dockerfiles")
    files = sorted(p for p in folder.iterdir() if p.is_file() and "Dockerfile" in p.name)
    assert len(files) >= 140
    counts: collections.Counter[str] = collections.Counter()
    for path in files:
        df = parse(path.read_text(encoding="utf-8"), path.name)
        for f in check(df, IWContext()):
            counts[f.rule] += 1
            if f.rule == "IW101":
                assert "nginx:mainline" in f.message, f
            elif f.rule == "IW104":
                assert any(k in path.name for k in ("postgres", "redis", "nginx")), f
            else:
                pytest.fail(f"unexpected {f.rule} in {path.name}:{f.location.line}: {f.message}")
    assert counts["IW104"] >= 20


def test_iw_rules_run_in_the_lint_engine_with_pragmas_and_config() -> None:
    from imagewise.dockerfile.config import LintConfig
    from imagewise.dockerfile.lint import lint

    text = "FROM alpine:3.20\nARG NPM_TOKEN\n# imagewise ignore=IW109\nARG GITHUB_TOKEN\n"
    found = lint(text, "-", only=["IW109"])
    assert [(f.rule, f.location.line, str(f.severity)) for f in found] == [("IW109", 2, "error")]
    assert found[0].fix.startswith("Use a build secret")
    assert lint(text, "-", LintConfig(ignored=frozenset({"IW109"})), only=["IW109"]) == []
    cfg = LintConfig().replace(override={"IW109": Severity.WARNING})
    assert str(lint(text, "-", cfg, only=["IW109"])[0].severity) == "warning"
    # a configured allow-list is DL3026's job; IW102 only applies the default list
    text = "FROM registry.corp.example/base:1.0\n"
    assert [f.rule for f in lint(text, "-", only=["IW102", "DL3026"])] == ["IW102"]
    cfg = LintConfig().replace(trusted_registries=("docker.io",))
    assert [f.rule for f in lint(text, "-", cfg, only=["IW102", "DL3026"])] == ["DL3026"]


def test_iw107_only_when_a_directory_or_glob_is_copied(tmp_path: Path) -> None:
    ctx = IWContext(context_dir=str(tmp_path), dockerfile_dir=str(tmp_path))
    (tmp_path / "src").mkdir()
    single = "FROM alpine:3.20\nCOPY app.py /app/\nADD https://example.com/x /x\n"
    assert rules_hit(single, ctx, "IW107") == []
    for src in ("src", "src/", "*.py", "./"):
        assert rules_hit(f"FROM alpine:3.20\nCOPY {src} /app/\n", ctx, "IW107") == ["IW107@1"]


def test_secret_values_skip_only_patterns_that_cannot_match() -> None:
    """IW109's value patterns are compiled only when a value holds a literal the pattern needs:
    the answer is the one every pattern searched in turn gives."""
    import re

    from imagewise.dockerfile.iw_rules.secrets import _SECRET_VALUES, secret_value

    def every_pattern(value: str) -> str | None:
        return next((what for what, _, p in _SECRET_VALUES if re.search(p, value)), None)

    values = [
        "AKIA" + "A" * 16,
        "x ASIA" + "B2" * 8,
        "ghp_" + "a" * 36,
        "github_pat_" + "b" * 40,
        "glpat-" + "c" * 20,
        "xoxb-1234567890",
        "npm_" + "d" * 36,
        "sk_live_" + "e" * 16,
        "AIza" + "f" * 35,
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
        "eyJ" + "g" * 10 + ".eyJ" + "h" * 10 + ".",
        "https://user:pass@host/x",
        "3600",
        "",
        "https://example.com/a_b",
        "plain value",
        "akia" + "a" * 16,
    ]
    for path in sorted(corpus("dockerfiles").iterdir()):
        if path.is_file() and "Dockerfile" in path.name:
            df = parse(path.read_text(encoding="utf-8", errors="replace"), path.name)
            values += [
                v or ""
                for ins in df.instructions
                if ins.keyword in ("ARG", "ENV")
                for _, v in ins.pairs
            ]
    assert sum(map(bool, map(every_pattern, values))) >= 12
    for value in values:
        assert secret_value(value) == every_pattern(value), value
