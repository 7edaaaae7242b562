"""promote / history / rollback against the real distribution registry: moves by digest, the
history kept in the registry, the policy gate, concurrency (8 processes) and a property test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import USERNAME, RegistryServer, build_image, push_image, unique_repo
from hypothesis import HealthCheck, given, settings, strategies as st

from imagewise.cli.main import cli
from imagewise.oci import media
from imagewise.policy.model import default_policy
from imagewise.registry.client import RegistryClient
from imagewise.release.history import PREFIX, read_history, record_tags
from imagewise.release.promote import promote, rollback

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _client(registry: RegistryServer) -> RegistryClient:
    return RegistryClient(registry.host, registry.url, insecure=True)


def _on(client: RegistryClient, repo: str, tag: str) -> str:
    return str(client.head_manifest(repo, tag).digest)


def test_promote_through_the_order_then_roll_back(registry: RegistryServer) -> None:
    repo = unique_repo("promote")
    a = push_image(registry, repo, "1.0.0", build_image((10,), seed=5301)).manifest_digest
    b = push_image(registry, repo, "1.1.0", build_image((11,), seed=5302)).manifest_digest
    client = _client(registry)
    img = f"{registry.host}/{repo}"
    for tag in ("1.0.0", "1.1.0"):
        for env in ("dev", "staging", "prod"):
            code, out = _run("promote", f"{img}:{tag}", "--to", env, "--by", "ci", "--reason", tag)
            assert code == 0, out
    assert _on(client, repo, "prod") == b
    # the gate: prod takes only what staging has
    code, out = _run("promote", f"{img}:1.0.0", "--to", "prod")
    assert code == 1 and "promote to staging first" in out, out
    assert _on(client, repo, "prod") == b
    code, out = _run("history", img, "--env", "prod", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/history/v1"
    moves = doc["moves"]
    assert [(m["from"], m["to"], m["by"], m["reason"]) for m in moves] == [
        (None, a, "ci", "1.0.0"),
        (a, b, "ci", "1.1.0"),
    ]
    assert [m["seq"] for m in moves] == [1, 2]
    # rollback is a recorded move; a second one undoes the first
    code, out = _run("rollback", img, "--env", "prod", "--by", "oncall", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["to"] == a and _on(client, repo, "prod") == a
    code, out = _run("rollback", img, "--env", "prod")
    assert code == 0 and _on(client, repo, "prod") == b, out
    code, out = _run("history", img, "--env", "prod")
    assert code == 0 and out.count("rollback") == 2, out
    # a digest the registry no longer has is refused
    client.delete_manifest(repo, a)
    code, out = _run("rollback", img, "--env", "prod", "--to", a)
    assert code == 2 and "no longer exists" in out, out
    assert _on(client, repo, "prod") == b
    # all history, every env
    code, out = _run("history", img, "--format", "json")
    assert {m["env"] for m in json.loads(out)["moves"]} == {"dev", "staging", "prod"}


def test_records_are_oci_artifacts_with_the_promoted_subject(registry: RegistryServer) -> None:
    repo = unique_repo("promote")
    img = push_image(registry, repo, "v1", build_image((9,), seed=5303))
    client = _client(registry)
    result = promote(f"{registry.host}/{repo}:v1", "qa", policy=default_policy(), by="me")
    record = client.get_manifest(repo, result.move.tag)
    doc = json.loads(record.raw)
    assert doc["artifactType"] == "application/vnd.imagewise.promotion.v1+json"
    assert doc["subject"]["digest"] == img.manifest_digest
    assert doc["annotations"]["io.imagewise.move.to"] == img.manifest_digest
    assert result.move.tag.startswith(PREFIX + "qa.00000001.")


def test_an_index_is_promoted_by_its_own_digest(registry: RegistryServer) -> None:
    repo = unique_repo("promote")
    amd = push_image(registry, repo, "amd", build_image((8,), seed=5304))
    arm = push_image(registry, repo, "arm", build_image((8,), seed=5305))
    index = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [
            {
                "mediaType": media.OCI_MANIFEST,
                "digest": img.manifest_digest,
                "size": len(img.manifest_raw),
                "platform": {"os": "linux", "architecture": arch},
            }
            for img, arch in ((amd, "amd64"), (arm, "arm64"))
        ],
    }
    client = _client(registry)
    digest = str(client.put_manifest(repo, "multi", json.dumps(index).encode(), media.OCI_INDEX))
    code, out = _run("promote", f"{registry.host}/{repo}:multi", "--to", "qa")
    assert code == 0, out
    assert _on(client, repo, "qa") == digest
    assert client.get_manifest(repo, "qa").media_type == media.OCI_INDEX


def test_promote_into_another_repository_copies_first(registry: RegistryServer) -> None:
    src, dst = unique_repo("promote-src"), unique_repo("promote-dst")
    img = push_image(registry, src, "v1", build_image((9, 3), seed=5306))
    code, out = _run(
        "promote",
        f"{registry.host}/{src}:v1",
        "--to",
        "qa",
        "--into",
        f"{registry.host}/{dst}",
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["copied_from"].endswith(f"{src}:v1") and doc["to"] == img.manifest_digest
    assert _on(_client(registry), dst, "qa") == img.manifest_digest


@pytest.mark.usefixtures("registry_login")
def test_who_is_the_registry_user_with_auth(registry_basic: RegistryServer) -> None:
    repo = unique_repo("promote")
    push_image(registry_basic, repo, "v1", build_image((7,), seed=5307))
    code, out = _run("promote", f"{registry_basic.host}/{repo}:v1", "--to", "qa")
    assert code == 0, out
    code, out = _run("history", f"{registry_basic.host}/{repo}", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["moves"][0]["by"] == USERNAME


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "oci:/nowhere:1", "--to", "qa"], "needs a registry image"),
        (["promote", "{host}/x:1", "--to", "Bad Env"], "bad environment name"),
        (["promote", "{host}/x:1"], "needs --to ENV"),
        (["rollback", "{host}/{repo}", "--env", "qa"], "0 move(s) of the env recorded"),
        (["promote", "{host}/{repo}:missing", "--to", "qa"], "not found"),
        (["promote", "127.0.0.1:1/x:1", "--to", "qa"], "127.0.0.1:1"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    registry: RegistryServer, args: list[str], message: str
) -> None:
    repo = unique_repo("promote-bad")
    push_image(registry, repo, "v1", build_image((5,), seed=5308))
    argv = [a.format(host=registry.host, repo=repo) for a in args]
    code, out = _run(*argv)
    assert code == 2, out
    assert message in out and out.count("\n") == 1, out


def test_eight_processes_promoting_at_once_lose_no_record(registry: RegistryServer) -> None:
    repo = unique_repo("promote-race")
    digests = [
        push_image(registry, repo, f"b{i}", build_image((6,), seed=5400 + i)).manifest_digest
        for i in range(8)
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "imagewise", "promote", f"{registry.host}/{repo}:b{i}"]
            + ["--to", "load", "--by", f"job{i}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(8)
    ]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    failed = [(i, p.returncode, o) for i, (p, o) in enumerate(zip(procs, outs)) if p.returncode]
    assert not failed, failed
    client = _client(registry)
    moves = read_history(client, repo, "load")
    assert sorted(m.new for m in moves) == sorted(digests)  # every record kept
    assert sorted(m.by for m in moves) == [f"job{i}" for i in range(8)]
    assert _on(client, repo, "load") == moves[-1].new  # the tag names the last record


# -- property: for any sequence of promote/rollback, history is the sequence --------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("promote"), st.integers(0, 2)),
        st.tuples(st.just("rollback"), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def seeded(registry: RegistryServer) -> tuple[str, list[str]]:
    repo = unique_repo("promote-prop")
    return repo, [
        push_image(registry, repo, f"p{i}", build_image((4,), seed=5500 + i)).manifest_digest
        for i in range(3)
    ]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
def test_history_equals_the_sequence(
    registry: RegistryServer, seeded: tuple[str, list[str]], ops: list[tuple[str, int]]
) -> None:
    repo, digests = seeded
    env = f"p{abs(hash(tuple(ops))) % 10**8}"
    client = _client(registry)
    for tag in [t for *_, t in record_tags(client.list_tags(repo), env)]:
        client.delete_manifest(repo, str(client.head_manifest(repo, tag).digest))
    expected: list[str] = []
    image = f"{registry.host}/{repo}"
    for op, n in ops:
        if op == "promote":
            promote(f"{image}:p{n}", env, policy=default_policy(), by="prop")
            expected.append(digests[n])
        elif len(expected) > n:
            rollback(image, env, steps=n, by="prop")
            expected.append(expected[-1 - n])
        else:
            with pytest.raises(Exception, match="cannot go back"):
                rollback(image, env, steps=n, by="prop")
        moves = read_history(client, repo, env)
        assert [m.new for m in moves] == expected
        assert [m.seq for m in moves] == list(range(1, len(expected) + 1))
        if expected:
            assert _on(client, repo, env) == expected[-1]


def test_history_table_lines_up_its_columns() -> None:
    from imagewise.release.history import Move
    from imagewise.release.promote import History, history_table

    d1, d2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    moves = [
        Move("prod", 1, "n1", None, d1, "ci@build-host", "2026-12-05T09:00:00Z", "first"),
        Move("staging", 12, "n2", d1, d2, "me", "2026-12-05T10:00:00Z", "", "rollback"),
    ]
    lines = history_table(History("reg/app", None, moves)).splitlines()
    assert lines[0].split() == ["SEQ", "ENV", "ACTION", "FROM", "TO", "BY", "AT", "REASON"]
    for col in ("ENV", "ACTION", "FROM", "TO", "BY", "AT"):
        at = lines[0].index(col)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines), col
    assert lines[1].split()[:4] == ["1", "prod", "promote", "-"]
    assert lines[2].endswith("2026-12-05T10:00:00") and not lines[2].endswith(" ")
    assert lines[1].endswith("  first")


def test_history_and_move_tables_escape_control_characters() -> None:
    """A move's fields are annotations anyone who can push may write: a terminal never gets
    their escape sequences."""
    from imagewise.release.history import Move
    from imagewise.release.promote import History, MoveResult, history_table, move_table

    evil = "ok\x1b]0;pwned\x07\x1b[2J"
    move = Move("prod", 1, "n1", None, "sha256:" + "a" * 64, evil, "2026", evil)
    for text in (
        history_table(History("reg/app", None, [move])),
        move_table(MoveResult("reg/app", move)),
    ):
        assert "\x1b" not in text and "\x07" not in text
        assert "ok\\x1b]0;pwned\\x07\\x1b[2J" in text
