"""Hypothesis: random Dockerfiles built from tricky fragments keep fix's promises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from imagewise.dockerfile.fix import fix
from imagewise.dockerfile.model import Dockerfile
from imagewise.dockerfile.parser import parse

FROMS = [
    "FROM alpine:3.20",
    "FROM debian:12 AS build",
    "FROM build",
    "FROM scratch",
    "FROM --platform=$BUILDPLATFORM golang:1.22 AS b2",
]
BODY = [
    "RUN apk add curl",
    "RUN apk --update add git && apk add --no-network x",
    "RUN apt-get update",
    "RUN apt-get install -y curl",
    "RUN apt-get update && apt-get install -y a",
    "RUN set -eux; apt-get update; apt-get install -y b;",
    "RUN apt-get install -y \\\n    c \\\n    d",
    "RUN pip install flask",
    "RUN pip3 install -r r.txt",
    "RUN npm install",
    "RUN cd /src && make",
    "RUN cd sub && \\\n    make install",
    "RUN rm -rf /tmp/x",
    "RUN apt-get clean",
    "RUN echo hi # trailing",
    "RUN echo a &",
    "RUN --mount=type=cache,target=/var/cache/apk apk add x",
    'RUN ["apk", "add", "y"]',
    "RUN <<EOF\napk add z\nEOF",
    "RUN python3 <<EOF\nprint(1)\nEOF",
    "ADD a.py /a/",
    "ADD x.tar.gz /x/",
    "ADD https://example.com/f /f",
    "ADD $V /v",
    "COPY . .",
    "WORKDIR /app",
    "WORKDIR rel",
    "USER 1000",
    "ENV A=1",
    "ARG B",
    "CMD python app.py",
    'CMD ["x"]',
    "ENTRYPOINT run --fast",
    "CMD echo $HOME",
    'SHELL ["/bin/bash", "-c"]',
    "# a comment",
    "",
    "ONBUILD RUN apk add q",
    "HEALTHCHECK CMD wget -q localhost",
    "EXPOSE 80",
]

dockerfiles = st.lists(
    st.tuples(st.sampled_from(FROMS), st.lists(st.sampled_from(BODY), max_size=8)),
    min_size=1,
    max_size=3,
).map(lambda stages: "\n".join(f + "\n" + "\n".join(body) for f, body in stages) + "\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles, st.booleans())
def test_fix_is_idempotent_and_keeps_stages(text: str, crlf: bool) -> None:
    if crlf:
        text = text.replace("\n", "\r\n")
    once = fix(text)
    assert fix(once.fixed).fixed == once.fixed
    before, after = parse(text), parse(once.fixed)
    assert [(s.base_image, s.alias) for s in before.stages] == [
        (s.base_image, s.alias) for s in after.stages
    ]

    def kinds(df: Dockerfile) -> list[str]:
        return [i.keyword for i in df.instructions if i.keyword not in ("RUN", "WORKDIR")]

    assert [k.replace("ADD", "COPY") for k in kinds(before)] == [
        k.replace("ADD", "COPY") for k in kinds(after)
    ]
    if crlf:
        assert "\n" not in once.fixed.replace("\r\n", "")
