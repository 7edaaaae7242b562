"""The secret scan's native literal prefilter (``secrets/_literals.c``): a rule whose literals do
not occur in a file is not run, which must never change a hit. Held here against the pure scan
(every rule's regex over the text) on random texts made of real secrets, near misses and noise,
and each rule's literals against its pattern."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from secret_samples import CASES, DB_PASS, GH, JWT, NPM, PYPI, SLACK, STRIPE

from imagewise.secrets import detect
from imagewise.secrets.native import literal_finder
from imagewise.secrets.rules import RULES

native = literal_finder()
PURE = bool(os.environ.get("IMAGEWISE_PURE"))  # the suite's second run: the prefilter is off


def test_the_extension_is_built_and_chosen():
    assert (native is None) == PURE  # scripts/test installs with a compiler


PIECES = [
    *(text for _rule, _path, text, _value, _line in CASES),
    GH, JWT, NPM, PYPI, SLACK, STRIPE, DB_PASS,
    "AKIA", "ASIA", "AKIAIOSFODNN7EXAMPLE", "ACCA" + "Q" * 16, "akia" + "Q" * 16,
    "AwS_SeCrEt_AcCeSs_KeY = ", "aWs private: ", "A" * 40, "x/+" * 14,
    "ghp_", "github_pat_", "gh_", "glpat-", "xoxb-", "xoxq-", "sk_live_", "rk_test_", "sk_LIVE_",
    "https://hooks.slack.com/services/T1234ABCD/B5678EFGH/" + "a1" * 12,
    "https://hooks.slack.com/service/", "://", "postgres://u:", "@db ", ":pw@", "://a:b@c",
    "-----BEGIN", "-----BEGIN RSA PRIVATE KEY-----\n", "PRIVATE KEY-----", '"private_key"',
    '"private_key": "', "npm_", "_authToken=", "_authtoken = ", "pypi-AgEIcHlwaS5vcmc", "eyJ",
    "eyJabcdefghij.eyJabcdefghij.", "password = ", "token: ", "\n", " ", "\t", "=", "'", '"',
    "\xe9\xff", "key", "secret",
    # one of every spelling each literal stands for
    *(f"gh{c}_" + "Ab1" * 12 for c in "pousr"), "github_pat_" + "a_1" * 28,
    *(f"A{b}{c}A" + "QZ2X" * 4 for b in "KSBC" for c in "IC"),
    *(f"{a}{w}{s_} secret = " + "Kq9/" * 10 for a in "aA" for w in "wW" for s_ in "sS"),
    "rk_live_" + "a1B2" * 6, "sk_test_" + "Z9y8" * 6, "xoxp-1234567890-abcd",
    *(f"{n}{q} = {q}Zq8mP2xLw9kB{q}\n" for n in (
        "password", "PASSWD", "pwd", "Secret", "api-key", "API_KEY", "apikey", "accessKey",
        "ACCESS-TOKEN", "access_token", "Auth-Token", "authtoken", "client_secret",
        "PrivateKey", "private-key", "credentials", "db.credential", "keywords",
    ) for q in ("", "'")),
    "https://user:longpassword@example.com/x", "http://a:bc:de@h", "ftp://x:y@z",
]  # fmt: skip


def _text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        piece = rng.choice(PIECES)
        if rng.random() < 0.3:  # cut or glue pieces: near misses and matches across seams
            a, b = sorted(rng.randint(0, len(piece)) for _ in range(2))
            piece = piece[a:b]
        parts.append(piece)
        if rng.random() < 0.3:
            parts.append("".join(rng.choice("ab=:/_-\n AZ09") for _ in range(rng.randint(0, 8))))
    return "".join(parts)


def test_every_match_of_a_rule_holds_one_of_its_literals():
    rng = random.Random(11)
    texts = [text for _r, _p, text, _v, _l in CASES] + [_text(rng) for _ in range(4000)]
    matched = set()
    for rule in RULES:
        if not rule.literals:
            continue
        for text in texts:
            for m in rule.pattern.finditer(text):
                matched.add(rule.id)
                assert any(x in m.group(0) for x in rule.literals), (rule.id, m.group(0))
    # ... and of a rule with keywords, one of those in its lower-cased match
    for rule in RULES:
        for text in texts if rule.keywords else ():
            for m in rule.pattern.finditer(text):
                matched.add(rule.id)
                low = m.group(0).lower()
                assert any(k in low for k in rule.keywords), (rule.id, m.group(0))
    # every rule was seen matching (the samples hold one secret per rule)
    assert matched == {r.id for r in RULES}


@pytest.mark.parametrize("path", ["app/main.js", "etc/app/app.conf"])
def test_the_prefilter_never_changes_a_hit(path):
    if PURE:
        assert detect._plan(False).candidates(b"AKIA") is None
        return
    rng = random.Random(hash(path) & 0xFFFF)
    config_like = detect.is_config_like(path)
    hits = 0
    for _ in range(4000):
        text = _text(rng)
        data = text.encode("latin-1", "replace")
        expected = detect.scan_text(data.decode("latin-1"), config_like=config_like)
        assert detect.scan_bytes(data, path) == expected, text
        hits += len(expected)
    assert hits > 1000
    # long texts too (past the short-text regex prefilter, and past 1 MiB: the GIL is let go)
    for size in (300, 5000, (1 << 20) + 7):
        text = "".join(_text(rng) for _ in range(size // 40 + 1))[:size]
        data = text.encode("latin-1", "replace")
        expected = detect.scan_text(data.decode("latin-1"), config_like=config_like)
        assert detect.scan_bytes(data, path) == expected


def test_the_literal_set_itself():
    from imagewise.secrets import _literals as native  # built (see above), even when PURE

    s = native.compile([(b"AKIA", 0), (b"eyJ", 1), (b"://", 2), (b"aw", 63)])
    assert native.find(s, b"") == 0
    assert native.find(s, b"a") == 0
    assert native.find(s, b"xx AKIA") == 1
    assert native.find(s, b"AKI") == 0  # a literal cut by the end of the text
    assert native.find(s, memoryview(b"eyJ://")) == 0b110
    assert native.find(s, bytearray(b"aw")) == 1 << 63
    assert native.find(s, b"\0" * 100 + b"AKIA" + b"\xff" * (1 << 20)) == 1
    for bad in ([(b"a", 0)], [("ab", 0)], [(b"ab", 64)], [(b"ab", -1)], [b"ab"], [(b"x" * 256, 0)]):
        with pytest.raises(ValueError, match="each literal is"):
            native.compile(bad)
    with pytest.raises(TypeError):
        native.compile(5)
    with pytest.raises(ValueError):  # not a literal set
        native.find(object(), b"x")
    with pytest.raises(TypeError):
        native.find(s, "text, not bytes")


def test_probe_searches_one_file_in_a_larger_buffer():
    """probe(set, data, start, size, sniff) is find() over data[start:start + size] without a
    copy, or -1 when the first ``sniff`` bytes of it hold a NUL; nothing outside the file
    counts, not even a literal cut by its end."""
    from imagewise.secrets import _literals as native  # built (see above), even when PURE

    s = native.compile([(b"AKIA", 0), (b"eyJ", 1), (b"://", 2)])
    rng = random.Random(5)
    alphabet = [b"AKIA", b"AKI", b"eyJ", b"://", b"\0", b"A", b"x", b":", b"/"]
    for _ in range(3000):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        start = rng.randint(0, len(data))
        size = rng.randint(0, len(data) - start)
        sniff = rng.randint(0, 12)
        body = data[start : start + size]
        expected = -1 if b"\0" in body[:sniff] else native.find(s, body)
        assert native.probe(s, data, start, size, sniff) == expected, (data, start, size, sniff)
        assert native.probe(s, memoryview(data), start, size, sniff) == expected
    assert native.probe(s, b"xAKIAx", 1, 3, 10) == 0  # "AKI": cut by the file's end
    assert native.probe(s, b"xAKIAx", 1, 4, 10) == 1
    for start, size, sniff in ((-1, 1, 1), (0, 7, 1), (6, 1, 1), (2, -1, 1), (0, 1, -1)):
        with pytest.raises(ValueError, match="within data"):
            native.probe(s, b"xAKIAx", start, size, sniff)
    with pytest.raises(TypeError):
        native.probe(s, b"x", 0, 1)


@pytest.mark.parametrize("config_like", [False, True])
def test_a_file_scanned_in_place_has_the_hits_of_its_bytes(config_like):
    """The batch's in-place scan (a file's content where it lies in the layer) gives what
    scan_content gives the file's bytes, and None for a binary file."""
    scan = detect.in_place_scanner()
    if PURE:
        assert scan is None
        return
    rng = random.Random(11 + config_like)
    hits = binaries = 0
    for _ in range(1500):
        texts = [_text(rng).encode("latin-1", "replace") for _ in range(3)]
        if rng.random() < 0.1:
            at = rng.randint(0, len(texts[1]))
            texts[1] = texts[1][:at] + b"\0" + texts[1][at:]
        buffer = b"".join(texts)
        start, size = len(texts[0]), len(texts[1])
        found = scan(buffer, start, size, config_like)
        body = texts[1]
        if b"\0" in body[: detect.SNIFF_BYTES]:
            assert found is None
            binaries += 1
        else:
            assert found == detect.scan_content(body, config_like), body
            hits += len(found)
    assert hits > 300 and binaries > 50


def test_version_says_which_secret_scan_runs():
    env = {k: v for k, v in os.environ.items() if k != "IMAGEWISE_PURE"}
    out = subprocess.run(
        [sys.executable, "-m", "imagewise", "--version"], env=env, capture_output=True, text=True
    ).stdout
    assert "secret scan: native (C literal prefilter)" in out  # scripts/test builds it
    out = subprocess.run(
        [sys.executable, "-m", "imagewise", "--version"],
        env={**env, "IMAGEWISE_PURE": "1"},
        capture_output=True,
        text=True,
    ).stdout
    assert "secret scan: pure Python (IMAGEWISE_PURE is set)" in out


def test_a_rules_reach_covers_every_match_and_anchored_search_finds_the_same():
    """A rule with a ``reach`` is searched only at the starts its keywords allow (Latin-1 text):
    every match must begin within ``reach`` characters before an anchor's occurrence, and the
    anchored search must give finditer's matches, text after text."""
    rng = random.Random(23)
    spice = ["\u00e9", "\u00c4", "\u00b5", "\u00ff", "\u00a0", "\u00df", "\n", "\t", "  ", "."]
    texts = [text for _r, _p, text, _v, _l in CASES]
    for _ in range(3000):
        text = _text(rng)
        for _ in range(rng.randint(0, 4)):  # Latin-1 letters and spaces around the names
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(spice) + text[at:]
        texts.append(text)
    reaching = [rule for rule in RULES if rule.reach is not None]
    assert {r.id for r in reaching} >= {"password-assignment", "aws-secret-access-key"}
    matched = 0
    for rule in reaching:
        for text in texts:
            low = text.lower()
            found = list(rule.pattern.finditer(text))
            for m in found:
                assert any(
                    m.start() <= k <= m.start() + rule.reach
                    for anchor in rule.anchors
                    for k in range(len(low))
                    if low.startswith(anchor, k)
                ), (rule.id, m.group(0))
            spans = [m.span() for m in detect._anchored(rule, text, low)]
            assert spans == [m.span() for m in found], text
            matched += len(found)
    assert matched > 1000
    # whole scans: the anchored one (Latin-1) and the plain one agree finding by finding
    for text in texts[:800]:
        assert detect._hits(text, reaching_rules := tuple(reaching), latin1=True) == detect._hits(
            text, reaching_rules
        )
