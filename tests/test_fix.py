"""Autofix: each rewrite, what it must leave alone, and properties over the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from fix_support import corpus_dockerfiles, variants

from imagewise.dockerfile.fix import FIXABLE, fix
from imagewise.dockerfile.iw_rules import IWContext, check
from imagewise.dockerfile.parser import parse
from imagewise.errors import DockerfileSyntaxError


def fixed(text: str, **kw: object) -> str:
    return fix(text, **kw).fixed  # type: ignore[arg-type]


def test_apk_no_cache() -> None:
    assert (
        fixed("FROM alpine:3.20\nRUN apk add curl git\n")
        == "FROM alpine:3.20\nRUN apk add --no-cache curl git\n"
    )
    assert (
        fixed("FROM alpine:3.20\nRUN apk --update add curl && apk add --no-cache git\n")
        == "FROM alpine:3.20\nRUN apk --update add --no-cache curl && apk add --no-cache git\n"
    )
    # --no-network reads the local index: --no-cache would break it
    same = "FROM alpine:3.20\nRUN apk add --no-network --virtual .rundeps so:libc.so\n"
    assert fixed(same) == same


def test_apt_recommends_and_lists() -> None:
    src = (
        "FROM debian:12\n# tools\nRUN apt-get update && \\\n    apt-get install -y curl\n"
        'CMD ["bash"]\n'
    )
    assert fixed(src) == (
        "FROM debian:12\n# tools\nRUN apt-get update && \\\n"
        "    apt-get install --no-install-recommends -y curl && "
        'rm -rf /var/lib/apt/lists/*\nCMD ["bash"]\n'
    )
    # official-image style `; \` lists get `;` joined cleanup; nothing else moves
    src = "FROM debian:12\nRUN set -eux; \\\n\tapt-get update; \\\n\tapt-get install -y --no-install-recommends x;\n"
    assert (
        fixed(src).splitlines()[-1] == "\tapt-get install -y --no-install-recommends x; "
        "rm -rf /var/lib/apt/lists/*"
    )
    # a later RUN installs from the same lists without updating: removing them would break it
    src = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends a\n"
        "ENV X=1\nRUN apt-get install -y --no-install-recommends b\n"
    )
    assert "lists" not in fixed(src)
    # a cache mount for apt keeps the lists out of the image already
    src = (
        "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt apt-get update && "
        "apt-get install -y --no-install-recommends a\n"
    )
    assert fixed(src) == src


def test_pip_no_cache_dir() -> None:
    assert fixed("FROM python:3.12\nRUN pip install -r req.txt && python3 -m pip install x\n") == (
        "FROM python:3.12\nRUN pip install --no-cache-dir -r req.txt && "
        "python3 -m pip install --no-cache-dir x\n"
    )
    same = "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install x\n"
    assert fixed(same) == same


def test_npm_ci_only_with_lockfile(tmp_path: Path) -> None:
    src = (
        "FROM node:22\nCOPY package*.json ./\nRUN npm install --omit=dev && npm install left-pad\n"
    )
    assert fixed(src, dockerfile_dir=str(tmp_path)) == src
    (tmp_path / "package-lock.json").write_text("{}")
    out = fixed(src, dockerfile_dir=str(tmp_path))
    assert out.splitlines()[-1] == "RUN npm ci --omit=dev && npm install left-pad"
    ctx = IWContext(context_dir=str(tmp_path), dockerfile_dir=str(tmp_path))
    assert check(parse(src), ctx, ["IW112"]) and not check(parse(out), ctx, ["IW112"])


def test_add_to_copy() -> None:
    src = (
        "FROM alpine:3.20\nADD --chown=1:1 app.py /app/\nADD site.tar.gz /srv/\n"
        "ADD https://example.com/x /x\nadd conf /etc/conf\n"
    )
    assert fixed(src) == (
        "FROM alpine:3.20\nCOPY --chown=1:1 app.py /app/\n"
        "ADD site.tar.gz /srv/\nADD https://example.com/x /x\n"
        "copy conf /etc/conf\n"
    )


def test_exec_form() -> None:
    src = "FROM python:3.12\nCMD python -m http.server 8000\n"
    assert fixed(src) == 'FROM python:3.12\nCMD ["python", "-m", "http.server", "8000"]\n'
    # shell features stay in shell form
    for cmd in ("CMD nginx -g 'daemon off;'", "CMD echo $HOME", "CMD a && b", "CMD A=1 prog"):
        assert fixed(f"FROM alpine:3.20\n{cmd}\n") == f"FROM alpine:3.20\n{cmd}\n"
    # a shell-form ENTRYPOINT ignores CMD; JSON form would pass CMD to it
    src = 'FROM alpine:3.20\nENTRYPOINT run-app --fast\nCMD ["x"]\n'
    assert fixed(src) == src
    assert (
        fixed("FROM alpine:3.20\nENTRYPOINT run-app --fast\n")
        == 'FROM alpine:3.20\nENTRYPOINT ["run-app", "--fast"]\n'
    )


def test_cd_to_workdir() -> None:
    src = "FROM golang:1.22 AS build\nWORKDIR /src\nCOPY . .\nRUN cd cmd/app && \\\n    go build -o /out/app\nRUN ls\n"
    assert fixed(src) == (
        "FROM golang:1.22 AS build\nWORKDIR /src\nCOPY . .\n"
        "WORKDIR /src/cmd/app\nRUN go build -o /out/app\nWORKDIR /src\nRUN ls\n"
    )
    # without a known previous directory (set by the base image) nothing can be restored
    same = "FROM golang:1.22\nRUN cd /src && make\n"
    assert fixed(same) == same


def test_merge_consecutive_runs_keeps_comments() -> None:
    src = (
        "FROM debian:12\nRUN apt-get update\n\n# the tools we need\n"
        "RUN apt-get install -y --no-install-recommends curl \\\n        git\nUSER 1000\n"
    )
    out = fixed(src)
    assert out == (
        "FROM debian:12\nRUN apt-get update && \\\n# the tools we need\n"
        "    apt-get install -y --no-install-recommends curl \\\n        git && "
        "rm -rf /var/lib/apt/lists/*\nUSER 1000\n"
    )
    assert not check(parse(out), None, ["IW105"])
    # three in a row become one
    out = fixed(
        "FROM alpine:3.20\nRUN apk add --no-cache a\nRUN apk add --no-cache b\n"
        "RUN apk add --no-cache c\n"
    )
    assert out.count("RUN") == 1 and parse(out).stages[0].instructions[0].end_line == 4


def test_untouched_lines_are_byte_identical() -> None:
    src = (
        "# syntax=docker/dockerfile:1\nFROM alpine:3.20   \n\t# comment\n"
        'LABEL a="b"   \\\n      c=d\t\nRUN apk add curl\n\n\n# end\n'
    )
    out = fixed(src)
    a, b = src.split("\n"), out.split("\n")
    assert len(a) == len(b)
    assert [x for x, y in zip(a, b) if x != y] == ["RUN apk add curl"]


def test_crlf_files_stay_crlf() -> None:
    src = "FROM alpine:3.20\r\nRUN apk add curl\r\n"
    assert fixed(src) == "FROM alpine:3.20\r\nRUN apk add --no-cache curl\r\n"


def test_windows_files_are_left_alone() -> None:
    src = "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nCMD cmd /c echo hi\n"
    assert fixed(src) == src


def test_rules_filter_and_diff() -> None:
    src = "FROM alpine:3.20\nRUN apk add curl\nADD a /a\n"
    r = fix(src, "Dockerfile", rules=["DL3020"])
    assert r.rules == {"DL3020"} and "apk add curl" in r.fixed
    assert r.diff().startswith("--- a/Dockerfile\n+++ b/Dockerfile\n")
    assert "-ADD a /a\n+COPY a /a\n" in r.diff()
    assert fix(r.fixed, rules=["DL3020"]).diff() == ""
    assert r.rules <= FIXABLE


def test_syntax_error_raises() -> None:
    with pytest.raises(DockerfileSyntaxError):
        fix("FROM\n")


# -- properties over the corpus -------------------------------------------------------------------


def test_fix_properties_over_corpus() -> None:
    changed = 0
    for path in corpus_dockerfiles():
        for text in variants(path.read_text(encoding="utf-8")):
            once = fix(text, path.name)
            twice = fix(once.fixed, path.name)
            assert twice.fixed == once.fixed, f"not idempotent: {path.name}"
            before, after = parse(text, path.name), parse(once.fixed, path.name)
            assert [(s.base_image, s.alias) for s in before.stages] == [
                (s.base_image, s.alias) for s in after.stages
            ], path.name
            assert len(after.lines) >= len(before.lines) - 2 * len(once.edits)
            changed += once.changed
    assert changed >= 60  # the degraded copies really exercised the fixers


def test_heredoc_scripts_get_flag_fixes() -> None:
    src = "FROM alpine:3.20\nRUN <<EOF\nset -e\napk add curl\nEOF\n"
    assert fixed(src) == "FROM alpine:3.20\nRUN <<EOF\nset -e\napk add --no-cache curl\nEOF\n"
    for other in (
        "RUN python3 <<EOF\nimport os  # apk add curl\nEOF\n",
        "RUN <<EOF\n#!/usr/bin/env python3\nprint('apk add curl')\nEOF\n",
    ):
        assert fixed("FROM alpine:3.20\n" + other) == "FROM alpine:3.20\n" + other
    assert (
        fixed("FROM alpine:3.20\nRUN <<EOF\n#!/bin/bash -e\napk add x\nEOF\n").count("--no-cache")
        == 1
    )
