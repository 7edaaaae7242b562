"""`lint --fix` is safe with the file it rewrites: lines it does not touch keep their exact bytes
(Latin-1, random bytes, mixed line endings), the rewrite is atomic (a full disk or a kill during
the write leaves the file as it was) and the file keeps its mode; a symbolic link stays a link."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
from cli_child import imagewise
from hypothesis import HealthCheck, given, settings, strategies as st

from imagewise.dockerfile.fix import decode, encode, fix, fix_file
from imagewise.errors import DockerfileSyntaxError

FIXABLE = {  # a line and what fix makes of it (each alone in its place: no merge)
    b"RUN apk add curl": b"RUN apk add --no-cache curl",
    b"RUN pip install flask": b"RUN pip install --no-cache-dir flask",
    b"RUN apt-get install -y vim": b"RUN apt-get install --no-install-recommends -y vim",
}
LATIN1 = (
    b'FROM debian:12\n# caf\xe9 cr\xe8me\nLABEL desc="caf\xe9"\r\nRUN apk add curl\nEXPOSE 80\n'
)


def test_untouched_latin1_lines_come_back_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(LATIN1)
    r = imagewise("lint", "--fix", "--no-fail", str(path))
    assert r.returncode == 0, r.stderr
    assert path.read_bytes() == LATIN1.replace(b"RUN apk add curl", b"RUN apk add --no-cache curl")


def test_stdin_fix_writes_the_same_bytes_to_stdout() -> None:
    r = imagewise("lint", "--fix", "--no-fail", "-", stdin=LATIN1)
    assert r.returncode == 0, r.stderr
    assert r.stdout == LATIN1.replace(b"RUN apk add curl", b"RUN apk add --no-cache curl")


def test_diff_is_a_patch_of_the_exact_bytes() -> None:
    r = imagewise("lint", "--diff", "-", stdin=LATIN1)
    assert r.returncode == 1, r.stderr
    assert b"-RUN apk add curl\n+RUN apk add --no-cache curl\n" in r.stdout
    assert b' LABEL desc="caf\xe9"\r\n' in r.stdout


def test_the_rewrite_keeps_the_mode_and_the_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.Dockerfile"
    real.write_bytes(LATIN1)
    real.chmod(0o640)
    link = tmp_path / "Dockerfile"
    link.symlink_to(real.name)
    result = fix_file(str(link))
    assert result.changed
    assert link.is_symlink() and os.readlink(link) == real.name
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert b"--no-cache" in real.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile", "real.Dockerfile"]


def _big_dockerfile(path: Path) -> bytes:
    body = b"".join(b"RUN echo step %d > /tmp/f%d\n" % (i, i) for i in range(1500))
    data = b"FROM alpine:3.20\n" + body + b"RUN apk add curl\n"
    path.write_bytes(data)
    return data


def test_a_full_disk_during_the_rewrite_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    data = _big_dockerfile(path)
    r = imagewise("lint", "--fix", "--no-fail", str(path), limit=len(data) // 2)
    assert path.read_bytes() == data
    assert r.returncode == 2
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and "as it was" in err[0], err
    assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile"]


def test_a_kill_during_the_rewrite_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    data = _big_dockerfile(path)
    r = imagewise("lint", "--fix", "--no-fail", str(path), die_writing_in=tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr  # killed in the middle of the write
    assert path.read_bytes() == data


# -- properties ------------------------------------------------------------------------------------

junk = st.binary(max_size=40).filter(lambda b: b"\n" not in b)
endings = st.sampled_from([b"\n", b"\r\n"])
segment = st.one_of(
    st.tuples(st.just("comment"), junk, endings),
    st.tuples(
        st.just("heredoc"),
        st.lists(junk.filter(lambda b: b.rstrip(b"\r") != b"EOF"), max_size=3),
        endings,
    ),
    st.tuples(st.just("fix"), st.sampled_from(sorted(FIXABLE)), endings),
)


def _render(segments: list[tuple[str, object, bytes]], fixed: bool) -> bytes:
    out = [b"FROM alpine:3.20\n"]
    for kind, value, end in segments:
        if kind == "comment":
            out.append(b"#" + value + end)  # type: ignore[operator]
        elif kind == "heredoc":
            body = b"".join(line + end for line in value)  # type: ignore[attr-defined]
            out.append(b"COPY <<EOF /x" + end + body + b"EOF" + end)
        else:
            out.append((FIXABLE[value] if fixed else value) + end)  # type: ignore[index]
            out.append(b"WORKDIR /w" + end)  # keeps fixable RUNs apart (no merge)
    return b"".join(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, max_size=12))
def test_lines_fix_does_not_touch_keep_their_bytes(
    segments: list[tuple[str, object, bytes]],
) -> None:
    data = _render(segments, fixed=False)
    result = fix(decode(data))
    assert encode(result.fixed) == _render(segments, fixed=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(sorted(FIXABLE)))
def test_random_bytes_survive_fix(data: bytes, line: bytes) -> None:
    for candidate in (data, b"FROM alpine\n" + data + b"\n" + line + b"\n"):
        try:
            result = fix(decode(candidate))
        except DockerfileSyntaxError:
            continue
        out = encode(result.fixed)
        if not result.changed:
            assert out == candidate
        assert encode(fix(result.fixed).fixed) == out  # a fixed point, bytes included


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\r\nRUN apk add x\r\n",
        "FROM a\nRUN apk add x\r\n# \x0c\x85\n",
        "FROM a\r\r\nRUN apk add x",
        "\ufeffFROM a\nRUN apk add x\n",
    ],
)
def test_line_endings_stay_as_they_were(text: str) -> None:
    fixed = fix(text).fixed
    assert fixed == text.replace("apk add x", "apk add --no-cache x")
