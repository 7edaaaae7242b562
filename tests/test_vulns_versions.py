"""Version order per ecosystem: known orderings from each ecosystem's own rules."""

from __future__ import annotations

import pytest

from imagewise.vulns.versions import apk_compare, compare, parse

# (a, b, expected sign of a <=> b), from apk-tools' documented order
APK = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0.1", -1),
    ("1.0-r1", "1.0", 1),
    ("1.0_rc1", "1.0", -1),
    ("1.0_p1", "1.0", 1),
    ("1.0a", "1.0", 1),
    ("1.0a", "1.0b", -1),
    ("1.2.3-r0", "1.2.3-r10", -1),
    ("3.0.12-r0", "3.0.8-r0", 1),
    ("1.01", "1.1", -1),
    ("1.0_alpha", "1.0_beta", -1),
    ("1.0_beta", "1.0_pre", -1),
    ("1.0_pre", "1.0_rc", -1),
    ("1.0_git20200101", "1.0", 1),
    ("1.0_cvs", "1.0_svn", -1),
    ("1.0_hg", "1.0_p", -1),
    ("1.36.1-r15", "1.36.1-r2", 1),
    ("1.0_rc1", "1.0_rc2", -1),
    ("1.0_rc1-r1", "1.0_rc1", 1),
    ("2.4.0-r3", "2.4-r3", 1),
    ("1.0~abc", "1.0", 1),
]


@pytest.mark.parametrize(("a", "b", "want"), APK)
def test_apk_order(a: str, b: str, want: int) -> None:
    assert apk_compare(a, b) == want
    assert apk_compare(b, a) == -want
    assert compare("Alpine:v3.19", a, b) == want


@pytest.mark.parametrize("bad", ["", "abc", "1.0-x1", "1.0_foo", "1..0"])
def test_apk_invalid(bad: str) -> None:
    assert parse("Alpine:v3.19", bad) is None


@pytest.mark.parametrize(
    ("eco", "a", "b", "want"),
    [
        # dpkg: epochs dominate, ~ sorts before everything, debian revision compared last
        ("Debian:12", "1:1.0-1", "2.0-1", 1),
        ("Debian:12", "1.0~rc1-1", "1.0-1", -1),
        ("Debian:12", "2.36-9+deb12u4", "2.36-9+deb12u7", -1),
        ("Debian:12", "1.2.3-1", "1.2.3-1", 0),
        ("Ubuntu:22.04", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.9", 1),
        # rpm: tilde before, caret after
        ("Red Hat", "1.0~rc1", "1.0", -1),
        ("Rocky Linux:9", "1.0^git1", "1.0", 1),
        ("AlmaLinux:9", "1.2.3-4.el9", "1.2.3-10.el9", -1),
        # Maven ComparableVersion: qualifiers alpha < beta < milestone < rc < snapshot < "" < sp
        ("Maven", "1.0-alpha-1", "1.0", -1),
        ("Maven", "1.0-SNAPSHOT", "1.0", -1),
        ("Maven", "1.0-rc1", "1.0-SNAPSHOT", -1),
        ("Maven", "1-sp", "1-ga", 1),
        ("Maven", "2.17.0", "2.14.1", 1),
        # PEP 440
        ("PyPI", "5.3.1", "5.4", -1),
        ("PyPI", "2.0.0rc1", "2.0.0", -1),
        ("PyPI", "1.0.post1", "1.0", 1),
        ("PyPI", "1!0.1", "2.0", 1),
        # SemVer (npm) and Go
        ("npm", "1.2.3-beta.2", "1.2.3-beta.11", -1),
        ("npm", "1.2.3-alpha", "1.2.3", -1),
        ("npm", "v1.2.3", "1.2.3", 0),
        ("Go", "v0.0.0-20210101000000-abcdef123456", "0.0.1", -1),
        ("Go", "go1.21.5", "1.21.6", -1),
        ("Go", "go1.22rc2", "1.22.0", -1),
        ("Go", "go1.21", "1.21.0", 0),
        ("Go", "v2.0.0+incompatible", "2.0.0", 0),
    ],
)
def test_ecosystem_order(eco: str, a: str, b: str, want: int) -> None:
    assert compare(eco, a, b) == want
    assert compare(eco, b, a) == -want


def test_unknown_ecosystem_and_bad_versions() -> None:
    assert parse("NoSuchEcosystem", "1.0") is None
    assert parse("PyPI", "not a version at all") is None
    with pytest.raises(ValueError):
        compare("npm", "x.y", "1.0.0")
