"""Retention against the real distribution registry (delete enabled, its garbage collector run to
prove the freed bytes), the safety rules one by one, and a property test over random
registries and rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cli_runner import CliRunner
from fixtures_registry import (
    RegistryServer,
    blob_bytes,
    garbage_collect,
    push_image,
    start_registry,
    stop_registry,
    unique_repo,
)
from hypothesis import HealthCheck, given, settings, strategies as st
from storage_support import image, index_bytes

from imagewise.cli.main import cli
from imagewise.errors import NotFound
from imagewise.oci import media
from imagewise.policy.model import parse_policy
from imagewise.registry.client import RegistryClient
from imagewise.storage.inventory import read_registry
from imagewise.storage.retention import apply_plan, make_plan, plan_for

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _client(server: RegistryServer) -> RegistryClient:
    return RegistryClient(server.host, server.url, insecure=True)


def _policy(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path / "reg")
    yield server
    stop_registry(server)


def _day(n: int) -> str:
    return f"2026-11-{n:02d}T00:00:00Z"


def test_plan_keeps_what_rules_and_protections_say(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    reg = own_registry
    imgs = {n: image([7000, 7000 + n], created=_day(n), label=str(n)) for n in range(1, 7)}
    push_image(reg, "app", "b1", imgs[1])
    push_image(reg, "app", "1.0.0", imgs[2])  # immutable release tag: kept
    push_image(reg, "app", "b3", imgs[3])
    push_image(reg, "app", "prod", imgs[3])  # env tag: kept, and so is b3's digest
    push_image(reg, "app", "b4", imgs[4])
    push_image(reg, "app", "b5", imgs[5])
    push_image(reg, "app", "b6", imgs[6])
    policy = _policy(
        tmp_path,
        "storage_management:\n  retention:\n    rules:\n"
        "      - {repositories: ['app'], tags: ['b*'], keep_latest: 2}\n",
    )
    code, out = _run("retention", "plan", reg.host, "--policy", str(policy), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["schema"] == "imagewise/retention-plan/v1"
    actions = {t["tag"]: (t["action"], t["reason"]) for t in doc["tags"]}
    assert actions["b6"][0] == actions["b5"][0] == "keep"
    assert actions["b6"][1] == "rules[0] (keep_latest 2)"
    assert actions["1.0.0"] == ("keep", "immutable tag (version_management.tagging.immutable)")
    assert actions["prod"] == ("keep", "env tag")
    assert actions["b3"][0] == "keep" and "shares its digest with kept tag prod" in actions["b3"][1]
    assert actions["b1"] == ("delete", "no rule keeps it")
    assert actions["b4"] == ("delete", "no rule keeps it")
    gone = {d["digest"] for d in doc["deletions"]}
    assert gone == {imgs[1].manifest_digest, imgs[4].manifest_digest}
    # freed after GC: the two images' own blobs; the shared base layer stays
    own = lambda i: len(i.manifest_raw) + i.config.size + i.layers[1].size  # noqa: E731
    assert doc["freed_bytes"] == own(imgs[1]) + own(imgs[4])


def test_apply_deletes_exactly_the_plan_and_gc_frees_the_bytes(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    reg = own_registry
    for n in range(1, 6):
        push_image(reg, "svc", f"v{n}", image([7100, 7100 + n], created=_day(n)))
    push_image(reg, "other", "x", image([7100, 7199], created=_day(1)))  # shares the base
    policy = _policy(
        tmp_path, "storage_management:\n  retention:\n    rules:\n      - {keep_latest: 2}\n"
    )
    plan_file = tmp_path / "plan.json"
    code, out = _run(
        "retention", "plan", reg.host, "--policy", str(policy), "--format", "json",
        "-o", str(plan_file),
    )  # fmt: skip
    assert code == 0, out
    plan = json.loads(plan_file.read_text())
    planned = {(d["repository"], d["digest"]) for d in plan["deletions"]}
    assert len(planned) == 3  # svc v1..v3; other:x is the newest of its repository
    before = read_registry(_client(reg))
    code, out = _run("retention", "apply", "--plan", str(plan_file), "--format", "json")
    assert code == 0, out
    assert {(d["repository"], d["digest"]) for d in json.loads(out)["deleted"]} == planned
    after = read_registry(_client(reg))
    assert set(after.manifests) == set(before.manifests) - planned
    # a second plan after apply deletes nothing
    again = plan_for([reg.host], parse_policy(policy.read_text()))
    assert again.deletions == []
    # the registry's own garbage collector frees exactly the bytes the plan said
    stop_registry(reg)
    size_before = blob_bytes(reg)
    garbage_collect(reg)
    assert size_before - blob_bytes(reg) == plan["freed_bytes"] > 0


def test_indexes_platforms_and_referrers(own_registry: RegistryServer, tmp_path: Path) -> None:
    reg = own_registry
    client = _client(reg)
    amd, arm = image([7200], created=_day(1)), image([7201], created=_day(1))
    push_image(reg, "multi", "amd-old", amd)  # its tag is deleted, but the kept index needs it
    push_image(reg, "multi", "arm-only", arm)
    index_digest = str(
        client.put_manifest("multi", "1.0", index_bytes([amd, arm]), media.OCI_INDEX)
    )
    old = image([7202, 7203], created=_day(1))
    push_image(reg, "multi", "old", old)
    code, out = _run("deprecate", f"{reg.host}/multi:old", "--reason", "gone soon")
    assert code == 0, out
    policy = parse_policy(
        "storage_management:\n  retention:\n    rules:\n      - {tags: ['1.*'], always: true}\n"
    )
    plan = make_plan(
        [read_registry(client, configs=True)], policy.storage_management.retention, now=NOW
    )
    kinds = {d.digest: d.kind for d in plan.deletions}
    assert index_digest not in kinds and amd.manifest_digest not in kinds  # the index needs amd
    assert arm.manifest_digest not in kinds
    assert kinds[old.manifest_digest] == "image"
    referrers = [d for d in plan.deletions if d.kind == "referrer"]
    assert len(referrers) == 2  # the deprecation record and its fallback index (sha256-<hex>)
    assert any(d.tags == ("sha256-" + old.manifest_digest.split(":")[1],) for d in referrers)
    decisions = {d.tag: d for d in plan.decisions}
    assert (
        decisions["amd-old"].keep
        and "a kept manifest needs its digest" in decisions["amd-old"].reason
    )
    result = apply_plan(plan, {reg.host: client})
    assert len(result.deleted) == 3 and not result.skipped
    assert "old" not in client.list_tags("multi")
    assert client.get_manifest("multi", "1.0").digest is not None


def test_apply_skips_what_changed_since_the_plan(
    own_registry: RegistryServer,
) -> None:
    reg = own_registry
    client = _client(reg)
    a, b = image([7300], created=_day(1)), image([7301], created=_day(2))
    push_image(reg, "chg", "a", a)
    push_image(reg, "chg", "b", b)
    policy = parse_policy(
        "storage_management:\n  retention:\n    rules:\n      - {keep_latest: 1}\n"
    )
    plan = make_plan(
        [read_registry(client, configs=True)], policy.storage_management.retention, now=NOW
    )
    assert [d.digest for d in plan.deletions] == [a.manifest_digest]
    push_image(reg, "chg", "hotfix", a)  # a new tag on the planned digest
    result = apply_plan(plan, {reg.host: client})
    assert not result.deleted and "tag hotfix names it now" in result.skipped[0][1]
    assert str(client.head_manifest("chg", "a").digest) == a.manifest_digest


def test_guards_max_delete_and_no_delete_support(tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "nodelete", delete=False)
    try:
        client = _client(reg)
        for n in range(1, 4):
            push_image(reg, "nd", f"v{n}", image([7400 + n], created=_day(n)))
        policy = _policy(
            tmp_path, "storage_management:\n  retention:\n    rules:\n      - {keep_latest: 1}\n"
        )
        code, out = _run(
            "retention", "apply", reg.host, "--policy", str(policy), "--max-delete", "1"
        )
        assert code == 2 and "over --max-delete 1: nothing deleted" in out, out
        code, out = _run("retention", "apply", reg.host, "--policy", str(policy))
        assert code == 2 and "does not allow deleting manifests" in out, out
        assert sorted(client.list_tags("nd")) == ["v1", "v2", "v3"]
    finally:
        stop_registry(reg)


def test_no_rules_deletes_nothing_and_bad_rules_are_one_line(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = unique_repo("ret")
    push_image(registry, repo, "v1", image([7500]))
    code, out = _run("retention", "plan", f"{registry.host}/{repo}")
    assert code == 0 and "no retention rules" in out and "deletes 0 manifest(s)" in out, out
    bad = _policy(
        tmp_path,
        "storage_management:\n  retention:\n    rules:\n      - {keep_latest: 1, always: true}\n",
    )
    code, out = _run("retention", "plan", f"{registry.host}/{repo}", "--policy", str(bad))
    assert code == 2 and "exactly one of" in out and out.count("\n") == 1, out
    code, out = _run("retention", "apply")
    assert code == 2 and "needs REFs or --plan" in out, out


# -- property: apply(plan) deletes exactly the plan; protected digests survive; then empty ------

SCENARIO = st.fixed_dictionaries(
    {
        "images": st.lists(
            st.tuples(
                st.integers(1, 28),
                st.lists(
                    st.sampled_from(["a", "b", "c", "d", "prod", "2.0.0"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                ),
            ),
            min_size=1,
            max_size=5,
        ),
        "rule": st.sampled_from(
            [
                "{keep_latest: 1}",
                "{keep_latest: 2, tags: ['a', 'b']}",
                "{keep_days: 10}",
                "{always: true, tags: ['re:^[ab]$']}",
                "{keep_latest: 0}",
            ]
        ),
    }
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenario=SCENARIO)
def test_property_apply_is_exactly_the_plan(
    tmp_path_factory: pytest.TempPathFactory, scenario: dict
) -> None:  # type: ignore[type-arg]
    reg = start_registry(tmp_path_factory.mktemp("prop"))
    try:
        client = _client(reg)
        for i, (day, tags) in enumerate(scenario["images"]):
            img = image([7600, 7601 + i], created=_day(day))
            for tag in tags:
                push_image(reg, "p", tag, img)
        policy = parse_policy(
            f"storage_management:\n  retention:\n    rules:\n      - {scenario['rule']}\n"
        )
        retention = policy.storage_management.retention
        tagging = policy.version_management.tagging
        before = read_registry(client, configs=True)
        plan = make_plan(
            [before], retention, env_tags=tagging.env_tags, immutable=tagging.immutable, now=NOW
        )
        protected = {
            before.repositories["p"].tags[t]
            for t in ("prod", "2.0.0")
            if t in before.repositories["p"].tags
        }
        planned = {("p", d.digest) for d in plan.deletions}
        assert not protected & {d for _, d in planned}
        apply_plan(plan, {reg.host: client})
        after = read_registry(client, configs=True)
        assert set(after.manifests) == set(before.manifests) - planned
        assert protected <= {d for _, d in after.manifests}
        again = make_plan(
            [after], retention, env_tags=tagging.env_tags, immutable=tagging.immutable, now=NOW
        )
        assert again.deletions == []
    finally:
        stop_registry(reg)


def _age(reg: RegistryServer, repo: str, digest: str, hours: float) -> None:
    """Make the registry's revision link of ``digest`` look pushed ``hours`` ago."""
    import os
    import time

    link = (
        reg.storage_dir / "docker/registry/v2/repositories" / repo / "_manifests/revisions"
        / "sha256" / digest.split(":")[1] / "link"
    )  # fmt: skip
    assert link.is_file(), link
    then = time.time() - hours * 3600
    os.utime(link, (then, then))


def test_untagged_manifests_go_after_the_hours_given_with_the_storage_dir(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    """delete_untagged_after_hours, found through the registry's storage directory: an old
    untagged image goes, a young one stays, an old one a young untagged index needs stays,
    an old untagged index goes without the tagged image it lists; GC frees what was said."""
    reg = own_registry
    client = _client(reg)
    a, b, y, c = (image([7300, 7300 + n], created=_day(n)) for n in (1, 2, 3, 4))
    push_image(reg, "svc", "v1", a)
    push_image(reg, "svc", "v1", b)  # v1 moves on: a is untagged
    push_image(reg, "svc", "tmp", y)
    push_image(reg, "svc", "tmp", b)  # y untagged, and young
    push_image(reg, "svc", "c", c)
    push_image(reg, "svc", "c", b)  # c untagged ...
    young_index = str(client.put_manifest("svc", "tmp2", index_bytes([c]), media.OCI_INDEX))
    push_image(reg, "svc", "tmp2", b)  # ... but this young untagged index needs it
    old_index = str(client.put_manifest("svc", "tmp3", index_bytes([b]), media.OCI_INDEX))
    push_image(reg, "svc", "tmp3", b)  # an untagged index listing a tagged image
    for digest in (a.manifest_digest, c.manifest_digest, old_index):
        _age(reg, "svc", digest, 100)
    policy = _policy(
        tmp_path,
        "storage_management:\n  retention:\n    delete_untagged_after_hours: 72\n"
        "    rules:\n      - {always: true}\n",
    )
    # without the storage directory the registry API cannot see them: nothing, and a note
    code, out = _run("retention", "plan", reg.host, "--policy", str(policy), "--format", "json")
    assert code == 0, out
    blind = json.loads(out)
    assert blind["deletions"] == [] and blind["untagged"] == []
    assert any("--storage-dir" in n for n in blind["notes"])
    plan_file = tmp_path / "plan.json"
    code, out = _run(
        "retention", "plan", reg.host, "--policy", str(policy), "--storage-dir",
        str(reg.storage_dir), "--format", "json", "-o", str(plan_file),
    )  # fmt: skip
    assert code == 0, out
    plan = json.loads(plan_file.read_text())
    untagged = {u["digest"]: (u["action"], u["reason"]) for u in plan["untagged"]}
    assert untagged[a.manifest_digest][0] == "delete"
    assert untagged[a.manifest_digest][1].startswith("untagged for 100 hours (over 72)")
    assert untagged[y.manifest_digest] == ("keep", "untagged, pushed within 72 hours")
    assert untagged[young_index] == ("keep", "untagged, pushed within 72 hours")
    assert untagged[old_index][0] == "delete"
    assert untagged[c.manifest_digest] == ("keep", "not deleted: a kept manifest needs its digest")
    assert b.manifest_digest not in untagged  # tagged
    gone = {(d["digest"], d["kind"]) for d in plan["deletions"]}
    assert gone == {(a.manifest_digest, "untagged"), (old_index, "untagged")}  # c: needed
    code, text_out = _run(
        "retention", "plan", reg.host, "--policy", str(policy), "--storage-dir",
        str(reg.storage_dir),
    )  # fmt: skip
    assert f"svc@{a.manifest_digest[:19]}:  delete  untagged for 100 hours" in text_out
    code, out = _run("du", reg.host, "--storage-dir", str(reg.storage_dir), "--format", "json")
    assert code == 0, out
    listed = {u["digest"] for u in json.loads(out)["untagged"]}
    assert (
        listed
        == set(untagged)
        == {a.manifest_digest, y.manifest_digest, c.manifest_digest, young_index, old_index}
    )
    code, out = _run("retention", "apply", "--plan", str(plan_file), "--format", "json")
    assert code == 0, out
    assert {d["digest"] for d in json.loads(out)["deleted"]} == {a.manifest_digest, old_index}
    with pytest.raises(NotFound):
        client.get_manifest("svc", a.manifest_digest)
    assert client.get_manifest("svc", c.manifest_digest).digest is not None
    again = plan_for([reg.host], parse_policy(policy.read_text()), storage_dir=str(reg.storage_dir))
    assert again.deletions == []
    stop_registry(reg)
    size_before = blob_bytes(reg)
    garbage_collect(reg)
    assert size_before - blob_bytes(reg) == plan["freed_bytes"] > 0


def test_storage_dir_must_be_a_registry_storage_root(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    code, out = _run("retention", "plan", own_registry.host, "--storage-dir", str(tmp_path))
    assert code == 2
    assert "not a distribution registry's storage directory" in out
    code, out = _run("du", own_registry.host, "--storage-dir", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in out
