"""Dockerfile parser: BuildKit syntax, exact lines, expansion, errors, and the real corpus."""

from __future__ import annotations

import pytest
from conftest import corpus

from imagewise.dockerfile import parse
from imagewise.dockerfile.expand import expand
from imagewise.errors import DockerfileSyntaxError


def test_directives_and_backtick_escape() -> None:
    df = parse(
        "# syntax=docker/dockerfile:1.7\n# escape=`\nFROM mcr.microsoft.com/windows:ltsc\n"
        "RUN echo a `\n    && echo b\nCOPY C:\\src C:\\dst\n"
    )
    assert df.directives == {"syntax": "docker/dockerfile:1.7", "escape": "`"}
    assert df.escape == "`"
    run = df.instructions[1]
    assert (run.keyword, run.start_line, run.end_line) == ("RUN", 4, 5)
    assert run.args == "echo a     && echo b"
    assert df.instructions[2].args == "C:\\src C:\\dst"


def test_continuations_skip_comments_and_blank_lines() -> None:
    text = "FROM alpine\nRUN apk add \\\n  # a comment inside\n\n  curl \\\n  git\nUSER app\n"
    df = parse(text)
    run = df.instructions[1]
    assert (run.start_line, run.end_line) == (2, 6)
    assert run.args.split() == ["apk", "add", "curl", "git"]
    assert run.original.splitlines()[0] == "RUN apk add \\"
    assert df.instructions[2].start_line == 7


def test_flags_repeated_and_exec_form() -> None:
    df = parse(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
        "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npm "
        '--network=none ["go", "build"]\n'
        "COPY --link --chmod=755 --from=build /out /bin/\n"
    )
    stage = df.stages[0]
    assert (stage.alias, stage.platform, stage.base_image) == (
        "build",
        "$BUILDPLATFORM",
        "golang:1.22",
    )
    run = df.instructions[1]
    assert run.flags["--mount"] == ("type=cache,target=/root/.cache", "type=secret,id=npm")
    assert run.flag("network") == "none"
    assert run.is_exec_form and run.arguments == ("go", "build")
    copy = df.instructions[2]
    assert copy.has_flag("--link") and copy.flag("--chmod") == "755"
    assert copy.flag("from") == "build" and copy.arguments == "/out /bin/"


def test_heredocs_several_per_line_and_strip_tabs() -> None:
    text = (
        "FROM alpine\nRUN <<EOF1 cat >/a && <<-'EOF2' cat >/b\nline one\nEOF1\n\tline two\n"
        "\tEOF2\nCOPY <<EOT /etc/x\nhello\nEOT\nRUN echo done\n"
    )
    df = parse(text)
    run = df.instructions[1]
    assert [h.name for h in run.heredocs] == ["EOF1", "EOF2"]
    assert run.heredocs[0].body == "line one\n" and run.heredocs[0].expand
    assert run.heredocs[1].body == "line two\n" and run.heredocs[1].strip_tabs
    assert not run.heredocs[1].expand
    assert (run.start_line, run.end_line) == (2, 6)
    copy = df.instructions[2]
    assert (copy.start_line, copy.end_line, copy.heredocs[0].body) == (7, 9, "hello\n")
    assert df.instructions[3].start_line == 10
    script = parse("FROM a\nRUN <<EOF\nset -e\napt-get update\nEOF\n").instructions[1]
    assert script.shell_script == "set -e\napt-get update\n"


def test_heredoc_words_only_as_buildkit_finds_them() -> None:
    df = parse("FROM a\nRUN echo $((1<<3)) && cat <<EOF >x\nhi\nEOF\nRUN echo '<<NOT'\n")
    assert [h.name for h in df.instructions[1].heredocs] == ["EOF"]
    assert df.instructions[2].heredocs == () and df.instructions[2].start_line == 5


@pytest.mark.parametrize(
    ("run", "script"),
    [
        ("RUN <<EOF\napt-get update\nEOF\n", "apt-get update\n"),
        ("RUN bash -e <<EOF\napt-get update\nEOF\n", "apt-get update\n"),
        ("RUN <<EOF\n#!/bin/bash\napt-get update\nEOF\n", "#!/bin/bash\napt-get update\n"),
        ("RUN <<EOF\n#!/usr/bin/env python3\nimport os\nEOF\n", ""),
        ("RUN python3 <<EOF\nimport os\nEOF\n", "python3 <<EOF"),
    ],
)
def test_shell_script_of_heredoc_runs(run: str, script: str) -> None:
    assert parse("FROM a\n" + run).instructions[1].shell_script == script


def test_heredoc_unterminated_is_syntax_error() -> None:
    with pytest.raises(DockerfileSyntaxError) as err:
        parse("FROM a\nRUN <<EOF\necho\n")
    assert err.value.line == 3 or err.value.line == 2


def test_onbuild_wraps_inner_instruction() -> None:
    df = parse("FROM a\nONBUILD RUN --mount=type=cache,target=/c apt-get update\n")
    ob = df.instructions[1]
    assert ob.keyword == "ONBUILD" and ob.inner is not None
    assert ob.inner.keyword == "RUN" and ob.inner.args == "apt-get update"
    assert ob.inner.flag("mount") == "type=cache,target=/c"
    assert ob.effective is ob.inner


def test_pairs_env_label_arg() -> None:
    df = parse(
        'ARG A B=2\nFROM x\nENV X="a b" Y=c\\ d\nENV LEGACY some value\n'
        "LABEL org.opencontainers.image.title='t' v=1\n"
    )
    assert df.instructions[0].pairs == (("A", None), ("B", "2"))
    assert df.instructions[2].pairs == (("X", "a b"), ("Y", "c d"))
    assert df.instructions[3].pairs == (("LEGACY", "some value"),)
    assert df.instructions[4].pairs == (("org.opencontainers.image.title", "t"), ("v", "1"))


def test_global_args_expand_into_from() -> None:
    df = parse(
        "ARG REG=docker.io\nARG TAG\nARG IMG=${REG}/library/python\n"
        "FROM ${IMG}:${TAG:-3.12} AS a\nFROM a\nRUN x\n"
    )
    assert df.stages[0].base_image == "docker.io/library/python:3.12"
    assert df.stages[0].base_image_raw == "${IMG}:${TAG:-3.12}"
    assert df.global_args == {"REG": "docker.io", "TAG": None, "IMG": "docker.io/library/python"}
    assert [s.index for s in df.stages] == [0, 1]
    assert df.stages[1].instructions[0].keyword == "RUN"
    assert df.stages[1].from_line == 5
    assert df.stage_by_name("A") is df.stages[0]


@pytest.mark.parametrize(
    ("word", "env", "want"),
    [
        ("$A", {"A": "1"}, "1"),
        ("${A}x", {"A": "1"}, "1x"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:+alt}", {"A": "1"}, "alt"),
        ("${A:+alt}", {}, ""),
        ("${A#*.}", {"A": "a.b.c"}, "b.c"),
        ("${A%%.*}", {"A": "a.b.c"}, "a"),
        ("'$A'", {"A": "1"}, "'$A'"),
        ("\\$A", {"A": "1"}, "$A"),
        ("$UNSET-x", {}, "-x"),
    ],
)
def test_expand_like_buildkit(word: str, env: dict[str, str], want: str) -> None:
    assert expand(word, env) == want


def test_comments_attached_to_next_instruction() -> None:
    df = parse("FROM a\n# hadolint ignore=DL3008\n# why\nRUN apt-get install x\n")
    run = df.instructions[1]
    assert run.comments == ("hadolint ignore=DL3008", "why")
    assert run.comment_lines == (2, 3)


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\nFROBNICATE x\n",
        "FROM\n",
        "FROM a b\n",
        "ONBUILD\n",
    ],
)
def test_syntax_errors_have_line(text: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as err:
        parse(text, "bad.Dockerfile")
    assert err.value.line >= 1 and "bad.Dockerfile" in str(err.value)


def test_every_corpus_dockerfile_parses() -> None:
    root = corpus("dockerfiles")
    files = [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix not in (".tsv", ".md")]
    assert len(files) >= 140
    for path in files:
        df = parse(path.read_text(encoding="utf-8"), path.name)
        assert df.stages, path.name
        lines = path.read_text(encoding="utf-8").splitlines()
        for ins in df.instructions:
            first = lines[ins.start_line - 1].lstrip()
            assert first.upper().startswith(ins.keyword), (path.name, ins.start_line)
            assert ins.end_line >= ins.start_line


def test_template_in_corpus_is_rejected_with_a_line() -> None:
    path = corpus("dockerfiles", "_templates", "docker-library__mysql__Dockerfile.oracle")
    with pytest.raises(DockerfileSyntaxError) as err:
        parse(path.read_text(encoding="utf-8"), path.name)
    assert err.value.line >= 1


@pytest.mark.parametrize(
    "line,message",
    [
        ("COPY", "COPY requires at least 2 arguments"),
        ("ADD only-one", "ADD requires at least 2 arguments"),
        ("RUN", "RUN requires at least one argument"),
        ("RUN []", "RUN requires at least one argument"),
        ("ONBUILD COPY x", "COPY requires at least 2 arguments"),
    ],
)
def test_missing_arguments_are_syntax_errors(line: str, message: str) -> None:
    from imagewise.dockerfile.parser import parse
    from imagewise.errors import DockerfileSyntaxError

    with pytest.raises(DockerfileSyntaxError) as e:
        parse(f"FROM alpine:3.20\n{line}\n", "Dockerfile")
    assert message in str(e.value) and e.value.line == 2
