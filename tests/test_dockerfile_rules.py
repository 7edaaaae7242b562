"""Lint engine and the hadolint-compatible rules on our own examples (BuildKit syntax included)."""

from __future__ import annotations

import pytest
from conftest import corpus

from imagewise.dockerfile.config import LintConfig
from imagewise.dockerfile.lint import lint
from imagewise.dockerfile.rules import Hit, Rule, all_rules, get_rule, register
from imagewise.errors import DockerfileSyntaxError
from imagewise.findings import Finding, RuleInfo, Severity


def dl(findings: list[Finding]) -> list[Finding]:
    """Only the hadolint-compatible findings (the IW rules are tested elsewhere)."""
    return [f for f in findings if f.rule.startswith("DL")]


def ids(text: str, config: LintConfig | None = None, keep_ignored: bool = False) -> list[str]:
    return [f.rule for f in dl(lint(text, "Dockerfile", config, keep_ignored=keep_ignored))]


def hits(rule: str, text: str, config: LintConfig | None = None) -> list[int]:
    return [
        f.location.line
        for f in lint(text, "Dockerfile", config, keep_ignored=True)
        if f.rule == rule
    ]


def test_table_has_every_hadolint_rule_with_its_severity() -> None:
    table = {r.id: r for r in all_rules()}
    expected = {
        "DL1001",
        *(f"DL{n}" for n in range(3000, 3068) if n not in (3005, 3017, 3031, 3039)),
        "DL4000",
        "DL4001",
        "DL4003",
        "DL4004",
        "DL4005",
        "DL4006",
    }
    assert expected <= set(table)
    sev = {k: table[k].info.severity for k in expected}
    assert sev["DL3008"] == Severity.WARNING and sev["DL3009"] == Severity.INFO
    assert sev["DL3000"] == Severity.ERROR and sev["DL3048"] == Severity.STYLE
    assert sev["DL1001"] == Severity.IGNORE and sev["DL3057"] == Severity.IGNORE
    for rid in expected:
        info = table[rid].info
        assert info.title and info.rationale and info.fix and info.source == "hadolint", rid


@pytest.mark.parametrize(
    ("rule", "bad", "good"),
    [
        ("DL3008", "RUN apt-get install -y curl", "RUN apt-get install -y curl=7.88.1-10"),
        (
            "DL3009",
            "FROM debian:12\nRUN apt-get update && apt-get install -y x=1",
            "FROM debian:12\nRUN apt-get update && apt-get install -y x=1 && rm -rf /var/lib/apt/lists/*",
        ),
        (
            "DL3009",
            "FROM debian:12\nRUN apt-get update && apt-get install -y x=1",
            "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update",
        ),
        ("DL3013", "RUN pip install requests", "RUN pip install requests==2.32.3"),
        ("DL3013", "RUN python3 -m pip install requests", "RUN pip install -r requirements.txt"),
        ("DL3014", "RUN apt-get install curl=1", "RUN apt-get install -y curl=1"),
        (
            "DL3015",
            "RUN apt-get install -y curl=1",
            "RUN apt-get install -y --no-install-recommends curl=1",
        ),
        ("DL3016", "RUN npm install -g typescript", "RUN npm install -g typescript@5.4.5"),
        ("DL3018", "RUN apk add --no-cache git", "RUN apk add --no-cache git=2.45.2-r0"),
        (
            "DL3019",
            "RUN apk add git=2",
            "RUN --mount=type=cache,target=/var/cache/apk apk add git=2",
        ),
        ("DL3028", "RUN gem install rails", "RUN gem install rails -v 7.1.0"),
        (
            "DL3033",
            "RUN yum install -y httpd && yum clean all",
            "RUN yum install -y httpd-2.4.57 && yum clean all",
        ),
        (
            "DL3041",
            "RUN dnf install -y rpm-sign && dnf clean all",
            "RUN dnf install -y rpm-sign-4.16.1 && dnf clean all",
        ),
        ("DL3040", "RUN dnf install -y a-1 && echo", "RUN dnf install -y a-1 && dnf clean all"),
        ("DL3042", "RUN pip install x==1", "ENV PIP_NO_CACHE_DIR=1\nRUN pip install x==1"),
        (
            "DL3060",
            "FROM node:20\nRUN yarn install",
            "FROM node:20\nRUN yarn install && yarn cache clean",
        ),
        (
            "DL3062",
            "RUN go install golang.org/x/tools/gopls@latest",
            "RUN go install golang.org/x/tools/gopls@v0.16.1",
        ),
        ("DL3003", "RUN cd /src && make", "WORKDIR /src\nRUN make"),
        ("DL3004", "RUN sudo make install", "RUN make install"),
        ("DL3020", "ADD app.py /app/", "ADD https://example.com/a.tgz /tmp/"),
        ("DL3021", "COPY a b /dst", "COPY a b /dst/"),
        ("DL3025", "CMD python app.py", 'CMD ["python", "app.py"]'),
        ("DL3027", "RUN apt install -y x", "RUN apt-get install -y x"),
        ("DL3000", "WORKDIR app", "WORKDIR /app"),
        ("DL3002", "FROM alpine:3\nUSER root", "FROM alpine:3\nUSER root\nRUN x\nUSER 10001"),
        ("DL3006", "FROM alpine", "FROM alpine:3.20"),
        ("DL3007", "FROM alpine:latest", "FROM alpine:latest@sha256:" + "a" * 64),
        ("DL3011", "EXPOSE 70000", "EXPOSE 8080/tcp"),
        (
            "DL3022",
            "FROM a:1\nCOPY --from=builder /x /y\nFROM b:1 AS builder",
            "FROM b:1 AS builder\nFROM a:1\nCOPY --from=builder /x /y",
        ),
        ("DL3024", "FROM a:1 AS x\nFROM b:1 AS x", "FROM a:1 AS x\nFROM b:1 AS y"),
        ("DL3029", "FROM --platform=linux/amd64 a:1", "FROM --platform=$BUILDPLATFORM a:1"),
        ("DL3043", "ONBUILD ONBUILD RUN x", "ONBUILD RUN x"),
        ("DL3044", "ENV A=1 B=$A", "ENV A=1\nENV B=$A"),
        ("DL3045", "FROM a:1\nCOPY x y", "FROM a:1\nWORKDIR /app\nCOPY x y"),
        ("DL3046", "RUN useradd -u 1000000 app", "RUN useradd -l -u 1000000 app"),
        ("DL3047", "RUN wget https://x/y", "RUN wget -q https://x/y"),
        ("DL3048", "LABEL Foo=bar", "LABEL org.example.foo=bar"),
        ("DL3059", "RUN a\nRUN b", "RUN a\nUSER x\nRUN b"),
        ("DL3061", "RUN x\nFROM a:1", "ARG V=1\nFROM a:$V"),
        ("DL3064", "ARG GITHUB_TOKEN", "ARG VERSION"),
        ("DL3066", "USER app", "USER 10001:10001"),
        ("DL3067", "COPY --from=build / /", "COPY --from=build /out /app"),
        ("DL4000", "MAINTAINER me", 'LABEL maintainer="me@example.com"'),
        ("DL4001", "RUN wget a && curl b", "RUN curl a && curl b"),
        ("DL4003", "FROM a:1\nCMD a\nCMD b", "FROM a:1\nCMD a\nFROM b:1\nCMD b"),
        ("DL4004", "FROM a:1\nENTRYPOINT a\nENTRYPOINT b", "FROM a:1\nENTRYPOINT a"),
        ("DL4005", "RUN ln -sf /bin/bash /bin/sh", 'SHELL ["/bin/bash", "-c"]'),
        (
            "DL4006",
            "RUN curl -s x | sh",
            'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN curl x | sh',
        ),
    ],
)
def test_rule_fires_on_bad_and_not_on_good(rule: str, bad: str, good: str) -> None:
    assert hits(rule, bad), f"{rule} should fire on {bad!r}"
    assert not hits(rule, good), f"{rule} should not fire on {good!r}"


def test_rules_apply_inside_onbuild_and_exec_form_and_sh_c() -> None:
    assert hits("DL3008", "FROM a:1\nONBUILD RUN apt-get install -y curl") == [2]
    assert hits("DL3008", 'RUN ["apt-get", "install", "-y", "curl"]') == [1]
    assert hits("DL3008", "RUN sh -c 'apt-get install -y curl'") == [1]


def test_heredoc_run_is_linted_as_its_script() -> None:
    text = "FROM debian:12\nRUN <<EOF\nset -e\napt-get update\napt-get install -y curl\nEOF\n"
    assert hits("DL3008", text) == [2] and hits("DL3009", text) == [2]
    merged = "FROM a:1\nRUN <<EOF\necho a\nEOF\nRUN <<EOF\necho b\nEOF\n"
    assert hits("DL3059", merged) == []
    piped = "FROM a:1\nRUN <<EOF\nset -eo pipefail\ncurl x | sh\nEOF\n"
    assert hits("DL4006", piped) == []


def test_buildkit_syntax_gives_no_false_positives() -> None:
    """The hadolint complaints of peers.md 1.2: heredoc after a continuation, cache mounts
    instead of cleanup, COPY --link/--chmod with a heredoc."""
    text = (
        "# syntax=docker/dockerfile:1.7\nFROM debian:12\n"
        "RUN --mount=type=cache,target=/var/cache/apt \\\n"
        "    --mount=type=cache,target=/var/lib/apt \\\n    <<EOF\nset -eux\napt-get update\n"
        "apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u8\nEOF\n"
        'COPY --link --chmod=755 <<-"EOT" /usr/local/bin/run\n\t#!/bin/sh\n\texec "$@"\n'
        "\tEOT\nCOPY --link a b /opt/\nUSER 10001\n"
    )
    assert ids(text) == []


def test_variables_in_package_lists_are_not_unpinned() -> None:
    assert hits("DL3008", "RUN apt-get install -y $PACKAGES") == []
    env = "FROM f:42\nENV V=2.51.0-2.fc42\nRUN dnf -y install git-core-${V} && dnf clean all\n"
    assert hits("DL3041", env) == []
    other_stage = "FROM f:42 AS a\nENV V=2.51.0\nFROM f:42\nRUN dnf -y install git-core-${V}\n"
    assert hits("DL3041", other_stage) == [4]


def test_non_posix_shell_skips_shell_rules() -> None:
    text = (
        'FROM mcr.microsoft.com/windows/servercore:ltsc2022\nSHELL ["powershell", "-Command"]\n'
        "RUN Invoke-WebRequest $u | Out-File x; cd C:\\\\x\n"
    )
    assert hits("DL4006", text) == [] and hits("DL3003", text) == []


def test_inline_pragmas() -> None:
    text = "FROM a:1\n# hadolint ignore=DL3008,DL3015 # pinned upstream\nRUN apt-get install -y x\n"
    assert ids(text) == []
    assert hits("DL1001", text) == [2]
    ours = "FROM a:1\n# imagewise ignore=DL3008\nRUN apt-get install -y --no-install-recommends x\n"
    assert ids(ours) == []
    far = "FROM a:1\n# hadolint ignore=DL3008\n\nRUN apt-get install -y --no-install-recommends x\n"
    assert ids(far) == ["DL3008"]  # only the line directly before counts
    invalid = "FROM a:1\n# hadolint ignore=nonsense,DL3008\nRUN apt-get install -y x\n"
    assert "DL3008" in ids(invalid)
    disabled = LintConfig(disable_ignore_pragma=True)
    assert "DL3008" in ids(text, disabled)


def test_global_and_stage_pragmas() -> None:
    text = (
        "# hadolint global ignore=DL3006\nFROM a\n# hadolint stage ignore=DL3011\nEXPOSE 99999\n"
        "FROM b\nEXPOSE 99999\n"
    )
    assert [(f.rule, f.location.line) for f in dl(lint(text))] == [("DL3011", 6)]


def test_config_ignore_override_and_severity_ignore() -> None:
    text = "FROM a:1\nRUN apt-get install -y --no-install-recommends x\n"
    assert ids(text, LintConfig(ignored=frozenset({"DL3008"}))) == []
    cfg = LintConfig().merged({"override": {"error": ["DL3008"]}})
    [finding] = dl(lint(text, "Dockerfile", cfg))
    assert finding.severity == Severity.ERROR
    assert "DL3057" not in ids("FROM a:1\n")  # severity ignore: not reported by default
    assert "DL3057" in ids("FROM a:1\n", keep_ignored=True)
    cfg = LintConfig().merged({"override": {"warning": ["DL3057"]}})
    assert "DL3057" in ids("FROM a:1\n", cfg)


def test_trusted_registries_and_label_schema_from_config() -> None:
    cfg = LintConfig().merged(
        {
            "trustedRegistries": ["*.corp.example", "docker.io"],
            "label-schema": {"org.opencontainers.image.source": "url"},
            "strict-labels": True,
        }
    )
    text = (
        "FROM ghcr.io/x/y:1\nFROM registry.corp.example/base:1\nFROM alpine:3\n"
        'LABEL org.opencontainers.image.source="not a url" extra=1\n'
    )
    assert hits("DL3026", text, cfg) == [1]
    assert hits("DL3052", text, cfg) == [4]
    assert hits("DL3050", text, cfg) == [4]
    assert hits("DL3049", text, cfg) == [1, 2]


def test_findings_carry_location_title_fix() -> None:
    [f] = dl(
        lint(
            "FROM a:1\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends x"
            " && rm -rf /var/lib/apt/lists/*\n",
            "sub/Dockerfile",
        )
    )
    assert (f.rule, f.location.file, f.location.line, f.location.end_line) == (
        "DL3008",
        "sub/Dockerfile",
        2,
        3,
    )
    assert f.severity == Severity.WARNING and f.fix and f.title


def test_register_custom_rule() -> None:
    info = RuleInfo(
        "XT999",
        Severity.WARNING,
        "No EXPOSE 22",
        "ssh in a container",
        "remove it",
        "security",
        "test",
    )

    def check(ctx):  # type: ignore[no-untyped-def]
        for ins in ctx.dockerfile.instructions:
            if ins.keyword == "EXPOSE" and "22" in ins.args.split():
                yield Hit(ins.start_line, "port 22 exposed")

    register(Rule(info, check))
    try:
        [f] = [f for f in lint("FROM a:1\nEXPOSE 22\n") if f.rule == "XT999"]
        assert f.message == "port 22 exposed" and get_rule("xt999") is not None
        with pytest.raises(ValueError):
            register(Rule(info, check))
    finally:
        from imagewise.dockerfile.rules import REGISTRY

        REGISTRY.pop("XT999")


def test_syntax_error_is_raised_not_reported() -> None:
    with pytest.raises(DockerfileSyntaxError):
        lint("FROM a:1\nNOPE x\n")


def test_corpus_lints_without_crashing() -> None:
    root = corpus("dockerfiles")
    files = [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix not in (".tsv", ".md")]
    total = 0
    for path in files:
        findings = lint(path.read_text(encoding="utf-8"), path.name)
        total += len(findings)
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        assert all(1 <= f.location.line <= n_lines for f in findings), path.name
    assert total > 0


def test_dl3009_accepts_apt_get_dist_clean() -> None:
    from imagewise.dockerfile.config import LintConfig
    from imagewise.dockerfile.lint import lint

    text = (
        "FROM debian:13\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends curl=8 "
        "&& apt-get dist-clean\n"
    )
    assert "DL3009" not in {f.rule for f in lint(text, "Dockerfile", LintConfig())}
    kept = text.replace(" && apt-get dist-clean", "")
    assert "DL3009" in {f.rule for f in lint(kept, "Dockerfile", LintConfig())}
