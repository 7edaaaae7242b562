"""Shell model of RUN bodies and a bounded fuzz run of the parser."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from imagewise.dockerfile import parse
from imagewise.dockerfile.shell import parse_shell
from imagewise.errors import DockerfileSyntaxError


def test_commands_across_operators_pipes_subshells() -> None:
    s = parse_shell(
        'FOO=1 apt-get install -y "curl" && echo $(id -u) | tee x; (cd /src && make) || true'
    )
    assert [c.name for c in s.commands] == ["apt-get", "echo", "id", "tee", "cd", "make", "true"]
    apt = s.commands[0]
    assert apt.args == ("install", "-y", "curl")
    assert apt.has_flag("y") and apt.subcommand == "install"
    assert apt.args_no_flags == ("install", "curl")
    assert s.has_pipe and s.parsed


def test_sh_c_scripts_are_analysed() -> None:
    s = parse_shell("sh -ec 'apk add --no-cache git && pip install --no-cache-dir x==1'")
    nested = [c for c in s.commands if c.nested]
    assert [c.name for c in nested] == ["apk", "pip"]
    assert nested[0].has_flag("no-cache")
    assert nested[1].has_flag("no-cache-dir") and nested[1].args_no_flags == ("install", "x==1")


def test_flags_split_like_hadolint() -> None:
    c = parse_shell("useradd -lmu 1000 --shell=/bin/sh app").commands[0]
    assert {"l", "m", "u", "shell"} <= c.flags
    assert c.flag_value("shell") == "/bin/sh"
    assert c.flag_value("u") is None  # combined short flags carry no value


def test_syntax_errors_keep_the_commands_around_them() -> None:
    s = parse_shell("apk add foo; if then ( ; apt-get install -y bar | cat")
    assert not s.parsed
    assert {"apk", "apt-get"} <= {c.name for c in s.commands}
    assert s.has_pipe


def test_bash_constructs() -> None:
    text = (
        'case "$arch" in \'amd64\') url=a; wget "$url" ;; arm*|x86) ;; *) exit 1 ;; esac; '
        './configure $(test "${a%%-*}" != x && echo --lto); make -j "$(( $(nproc) + 1 ))"; '
        "if [[ -f x ]]; then gem install y; fi; arr=(a b); "
        "for ((i=0; i<2; i++)); do apk add foo; done"
    )
    s = parse_shell(text)
    assert s.parsed
    names = [c.name for c in s.commands]
    assert names[:2] == ["wget", "exit"]
    assert {"./configure", "test", "echo", "make", "nproc", "[[", "gem", "apk"} <= set(names)
    assert s.commands[0].args == ("$url",)


def test_test_brackets_are_commands() -> None:
    s = parse_shell('[ "$(apk --print-arch)" != ppc64le ] && [[ -n $x ]]')
    assert [(c.name, c.args) for c in s.commands] == [
        ("[", ("$(apk --print-arch)", "!=", "ppc64le", "]")),
        ("apk", ("--print-arch",)),
        ("[[", ("-n", "$x", "]]")),
    ]


def test_words_after_a_redirect_are_arguments() -> None:
    # the grammar reads them as more redirect targets; bash passes them to the command
    s = parse_shell(
        'printf \'%s\' x > /out y && test -z "$f" && echo >&2 "no key $K" && cmd 2>/dev/null arg'
    )
    assert [(c.name, c.args) for c in s.commands] == [
        ("printf", ("%s", "x", "y")),
        ("test", ("-z", "$f")),
        ("echo", ("no key $K",)),
        ("cmd", ("arg",)),
    ]


def test_a_word_is_split_by_blanks_only() -> None:
    s = parse_shell("mk-build-deps --install debuild-$t/nginx-$NGINX_VERSION/debian/control")
    assert s.commands[0].args == ("--install", "debuild-$t/nginx-$NGINX_VERSION/debian/control")


def test_escaped_blank_starting_a_word_is_a_word() -> None:
    s = parse_shell("rm -f x && \\    apt-get update && echo a\\ b")
    assert [(c.name, c.args) for c in s.commands] == [
        ("rm", ("-f", "x")),
        (" ", ("apt-get", "update")),
        ("echo", ("a b",)),
    ]


def test_declarations_and_time() -> None:
    s = parse_shell("export A=1 B=$(id -u); time -p make install; unset Q")
    assert [(c.name, c.args) for c in s.commands] == [
        ("export", ("A=1", "B=$(id -u)")),
        ("id", ("-u",)),
        ("make", ("install",)),
        ("unset", ("Q",)),
    ]


def test_compound_commands() -> None:
    s = parse_shell("if [ -f x ]; then yum install -y a; fi; for p in a b; do gem install $p; done")
    assert {"yum", "gem"} <= {c.name for c in s.commands}


def test_inputs_that_hung_the_old_parser_return_at_once() -> None:
    import time

    start = time.monotonic()
    s = parse_shell("sha='6a41${55' && apk add x")  # bashlex alone never returned on this
    assert [c.name for c in s.commands] == ["apk"]
    deep = "echo " + "$(" * 3000 + "x" + ")" * 3000  # nesting depth is the input's to choose
    assert parse_shell(deep).commands[0].name == "echo"
    assert time.monotonic() - start < 5


def test_a_node_boundary_inside_a_character_does_not_raise() -> None:
    parse_shell("((\udfff'")  # the grammar ends a node inside the 3 bytes of the surrogate
    assert parse_shell("echo \u00e9t\u00e9 \U0001f600").commands[0].args == (
        "\u00e9t\u00e9",
        "\U0001f600",
    )


def test_non_ascii_after_a_brace_does_not_crash_the_process() -> None:
    # tree-sitter-bash 0.25 reads out of bounds on "{" + a 4-byte UTF-8 character (SIGSEGV most
    # runs on Linux): a child process parses a few hundred such scripts
    import subprocess
    import sys

    code = (
        "from imagewise.dockerfile.shell import parse_shell\n"
        "for c in range(0x10000, 0x110000, 0x800):\n"
        "    s = parse_shell('echo {' + chr(c) + ' x && apk add y')\n"
        "    assert [(k.name, k.args) for k in s.commands] == [\n"
        "        ('echo', ('{' + chr(c), 'x')), ('apk', ('add', 'y'))], s\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]


def test_parsing_in_threads_matches_serial_parsing() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from imagewise.dockerfile import shell

    texts = [
        f"apt-get install -y pkg{i} && curl -s https://x/{i} | sh -c 'pip install p{i}'"
        for i in range(400)
    ]
    shell.parse_shell.cache_clear()
    serial = [shell.parse_shell(t) for t in texts]
    shell.parse_shell.cache_clear()
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(shell.parse_shell, texts))
    assert threaded == serial
    assert all(len(s.commands) == 4 and s.has_pipe for s in threaded)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("\\`\"'$#{}[]<>-=:\n\t &|;()abEOFRUNCOPY")), max_size=200)
)
def test_parser_never_crashes_on_noise(text: str) -> None:
    for prefix in ("", "FROM a\n", "FROM a\nRUN ", "# escape=`\nFROM a\nCOPY <<EOF "):
        try:
            parse(prefix + text)
        except DockerfileSyntaxError:
            pass


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "FROM alpine:3.20 AS base",
                "RUN apk add --no-cache curl \\",
                "  && echo hi",
                "# comment",
                "",
                "RUN <<EOF",
                "EOF",
                "COPY --from=base /a /b",
                "ONBUILD RUN x",
                "ARG V=${X:-1}",
                'ENV A=1 B="2 3"',
                "LABEL a=b",
                'CMD ["x"]',
                "HEALTHCHECK --interval=5s CMD true",
                "USER 1000",
                "WORKDIR /app",
                'RUN ["a", ',
                "\\",
                "# escape=`",
                'SHELL ["bash", "-c"]',
            ]
        ),
        max_size=25,
    )
)
def test_parser_never_crashes_on_shuffled_instructions(lines: list[str]) -> None:
    try:
        df = parse("\n".join(lines))
    except DockerfileSyntaxError:
        return
    for ins in df.instructions:
        assert 1 <= ins.start_line <= ins.end_line
        if ins.keyword == "RUN":
            parse_shell(ins.shell_script)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_shell_parser_never_raises(text: str) -> None:
    parse_shell(text)
