from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from imagewise.release import tagging as t


def test_release_tags_full_minor_major():
    assert t.release_tags("1.4.2") == ["1.4.2", "1.4", "1"]
    assert t.release_tags("1.5.0-rc.1") == ["1.5.0-rc.1"]


@pytest.mark.parametrize("bad", ["1.4", "01.2.3", "x", "1.2.3-", ""])
def test_bad_semver(bad):
    with pytest.raises(t.TagError, match="not a semantic version"):
        t.parse_semver(bad)


def test_forward_only():
    assert t.moving_tags_allowed("1.4.2", ["1.4.3", "1.5.0"]) == []
    assert t.moving_tags_allowed("1.4.4", ["1.4.3", "1.5.0"]) == ["1.4"]
    assert t.moving_tags_allowed("1.6.0", ["1.4.3", "1.5.0", "2.0.0"]) == ["1.6", "1"]
    assert t.moving_tags_allowed("1.6.0-rc.1", []) == []
    # pre-releases and junk do not hold a moving tag back
    assert t.moving_tags_allowed("1.4.2", ["1.4.9-rc.1", "latest"]) == ["1.4", "1"]


vers = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))


@given(vers, st.lists(vers, max_size=8))
def test_forward_only_property(v, others):
    version = "%d.%d.%d" % v
    allowed = t.moving_tags_allowed(version, ["%d.%d.%d" % o for o in others])
    same_minor = [o for o in others if o[:2] == v[:2]]
    same_major = [o for o in others if o[0] == v[0]]
    assert (f"{v[0]}.{v[1]}" in allowed) == all(o <= v for o in same_minor)
    assert (f"{v[0]}" in allowed) == all(o <= v for o in same_major)


def test_plan_and_timestamp():
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    plan = t.plan_tags(
        ["1.4.1"], semver="1.4.2", env="staging", timestamp=ts, git_sha="a" * 40, extra=("x", "1.4")
    )
    assert plan == ["1.4.2", "1.4", "1", "staging", "20260102-030405", "sha-aaaaaaa", "x"]


def test_git_head_loose_and_packed(tmp_path):
    g = tmp_path / ".git"
    (g / "refs/heads").mkdir(parents=True)
    (g / "HEAD").write_text("ref: refs/heads/main\n")
    (g / "packed-refs").write_text("# pack-refs\n" + "b" * 40 + " refs/heads/main\n")
    assert t.git_head_sha(t.find_git_dir(tmp_path)) == "b" * 40
    (g / "refs/heads/main").write_text("c" * 40 + "\n")
    assert t.git_head_sha(g) == "c" * 40
    (g / "HEAD").write_text("d" * 40 + "\n")
    assert t.git_head_sha(g) == "d" * 40
    with pytest.raises(t.TagError):
        t.git_head_sha(tmp_path / "nope")
