"""Secrets: every rule on generated secrets, masking, allowlists, layers and config, and no false
positives on the corpus Dockerfiles and real Alpine root filesystems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import corpus
from fixtures_images import (
    ALPINE_VERSIONS,
    CREATED,
    TarFile,
    alpine_image,
    build_image,
    tar_bytes,
    write_oci_layout,
)
from secret_samples import AWS_ID, CASES, DB_PASS, GH, GL, STRIPE, pem, rand

from imagewise.layers.passes import run_pass
from imagewise.secrets.detect import mask, plausible, scan_bytes
from imagewise.secrets.visitor import SecretsVisitor, findings_json, scan_config
from imagewise.sources import open_source


@pytest.mark.parametrize(
    ("rule", "path", "content", "secret", "line"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_each_rule_finds_and_masks(
    rule: str, path: str, content: str, secret: str | None, line: int
) -> None:
    hits = scan_bytes(content.encode(), path)
    assert (rule, line) in [(h.rule.id, h.line) for h in hits]
    for h in hits:
        assert "*" in h.masked
        if secret:
            assert secret not in h.masked and secret[4:20] not in h.masked


@pytest.mark.parametrize(
    "content",
    [
        "password = changeme\n",
        "password: ${DB_PASSWORD}\n",
        "password = $(cat /run/secrets/db)\n",
        "password_file = /run/secrets/db_password\n",
        "password = {{ vault_db_password }}\n",
        "api_key: <your-api-key>\n",
        "secret = xxxxxxxxxxxx\n",
        "password: required\n",
        "postgres://postgres:postgres@localhost/db\n",
        "http://user:${PASS}@proxy:3128\n",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        "password = os.environ['DB_PASSWORD']\n",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
        "token = " + "ghp" + "_" + "x" * 36 + "\n",
        "request.seedPhraseSecret: '{__relative_name__}'\n",
    ],
)
def test_placeholders_and_references_are_not_secrets(content: str) -> None:
    assert scan_bytes(content.encode(), "etc/app/app.conf") == []


def test_assignments_only_in_config_files() -> None:
    code = f"password = '{DB_PASS}'\n".encode()
    assert [h.rule.id for h in scan_bytes(code, "app/settings.yaml")] == ["password-assignment"]
    assert scan_bytes(code, "usr/lib/python3/site-packages/lib/module.py") == []


def test_binary_and_allowlisted_paths_are_not_read() -> None:
    assert scan_bytes(b"\0\1\2" + AWS_ID.encode(), "usr/bin/tool") == []
    assert not plausible("usr/share/doc/app/README.conf", 100)
    assert not plausible("usr/lib/python3/site-packages/pkg/tests/data/key.pem", 100)
    assert not plausible("usr/lib/libz.so.1", 100)
    assert not plausible("opt/sdk/third_party/urllib3/dummyserver/certs/server.key", 100)
    assert not plausible("app/src/auth_test/keys/id_rsa", 100)
    assert not plausible("root/big.env", 5 * 1024 * 1024)
    assert plausible("root/.aws/credentials", 100)


def test_mask_keeps_only_a_known_prefix() -> None:
    assert mask(AWS_ID) == "AKIA" + "*" * 8
    assert mask(GL) == "glpat-" + "*" * 8
    assert mask("hunter2hunter2") == "*" * 8  # passwords show nothing, not even their length
    assert mask("x" * 500) == "*" * 8


def _image(tmp: Path, layers: list[dict], config: dict, history: list[dict]) -> object:
    img = build_image([tar_bytes(files) for files in layers], config=config, history=history)
    ref = write_oci_layout(img, tmp / "layout", "t")
    return open_source(ref).image()


def test_layers_and_config_including_deleted_files(tmp_path: Path) -> None:
    layers = [
        {"etc": TarFile(kind="dir"), "etc/os-release": b"ID=demo\n"},
        {
            "root": TarFile(kind="dir"),
            "root/.ssh": TarFile(kind="dir"),
            "root/.ssh/id_rsa": pem("RSA ").encode(),
            "app": TarFile(kind="dir"),
            "app/.env": f"GITHUB_TOKEN={GH}\n".encode(),
        },
        {"root/.ssh/.wh.id_rsa": b"", "app/readme.conf": b"nothing here\n"},
    ]
    history = [
        {"created": CREATED, "created_by": "ADD rootfs.tar /"},
        {
            "created": CREATED,
            "created_by": "/bin/sh -c #(nop)  ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
            "empty_layer": True,
        },
        {"created": CREATED, "created_by": f"|1 DB_PASSWORD={DB_PASS} /bin/sh -c setup.sh"},
        {"created": CREATED, "created_by": "/bin/sh -c rm /root/.ssh/id_rsa"},
    ]
    config = {
        "Env": [
            "PATH=/usr/bin",
            f"AWS_ACCESS_KEY_ID={AWS_ID}",
            f"API_TOKEN={STRIPE}",
            "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
            "PASSWORD_FILE=/run/pw",
        ],
        "Labels": {
            "ci.webhook": "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/" + rand(24)
        },
    }
    image = _image(tmp_path, layers, config, history)
    v = SecretsVisitor()
    run_pass(image, [v])  # type: ignore[arg-type]
    files = sorted(
        (
            f.rule,
            f.location.layer_index,
            f.location.path,
            f.location.line,
            bool(f.extra.get("removed_later")),
        )
        for f in v.findings
    )
    assert files == [
        ("secret/github-token", 1, "app/.env", 1, False),
        ("secret/private-key", 1, "root/.ssh/id_rsa", 1, True),
    ]
    assert all(f.location.layer == str(image.layers[1].diff_id) for f in v.findings)  # type: ignore[attr-defined]

    cfg = scan_config(image.config, image)  # type: ignore[attr-defined]
    got = sorted((f.rule, f.location.path) for f in cfg)
    # one finding per secret: the token rule wins over the generic assignment rule
    assert got == [
        ("secret/aws-access-key-id", "config.Env[1]"),
        ("secret/password-assignment", "history[2].created_by"),
        ("secret/slack-webhook", "config.Labels[ci.webhook]"),
        ("secret/stripe-key", "config.Env[2]"),
    ]
    hist = next(f for f in cfg if f.location.path.startswith("history"))
    assert hist.location.layer_index == 1
    text = json.dumps(findings_json(cfg + v.findings)) + "".join(
        f.message for f in cfg + v.findings
    )
    for secret in (GH, AWS_ID, STRIPE, DB_PASS):
        assert secret not in text


def test_layer_cache_round_trip(tmp_path: Path) -> None:
    image = _image(
        tmp_path,
        [{"app": TarFile(kind="dir"), "app/.env": f"T={GL}\n".encode()}],
        {"Env": []},
        [{"created": CREATED, "created_by": "ADD . /app"}],
    )
    v = SecretsVisitor()
    run_pass(image, [v])  # type: ignore[arg-type]
    layer = image.layers[0]  # type: ignore[attr-defined]
    v2 = SecretsVisitor()
    v2.begin_layer(0, layer)
    v2._layer = v.findings[:]
    stored = json.loads(json.dumps(v2.layer_result(0, layer)))
    v3 = SecretsVisitor()
    v3.begin_layer(0, layer)
    v3.restore_layer(0, layer, stored)
    v3.end_layer(0, layer)
    assert [(f.rule, f.location, f.extra["masked"]) for f in v3.findings] == [
        (f.rule, f.location, f.extra["masked"]) for f in v.findings
    ]


def test_no_findings_in_the_corpus_dockerfiles() -> None:
    root = corpus("dockerfiles")
    files = [p for p in root.rglob("*") if p.is_file() and "Dockerfile" in p.name]
    assert len(files) >= 145
    noisy = {
        str(p.relative_to(root)): [
            (h.rule.id, h.line) for h in scan_bytes(p.read_bytes(), "Dockerfile")
        ]
        for p in files
    }
    assert {k: v for k, v in noisy.items() if v} == {}


@pytest.mark.parametrize("version", ALPINE_VERSIONS)
def test_no_findings_in_alpine_base_images(tmp_path: Path, version: str) -> None:
    img = alpine_image(version)
    image = open_source(write_oci_layout(img, tmp_path / "alpine", "t")).image()
    v = SecretsVisitor()
    run_pass(image, [v])
    assert v.files_read > 50  # the rootfs's text files were really read
    assert v.findings == []
    assert scan_config(image.config, image) == []


def test_no_findings_in_the_hosts_debian_base_files(tmp_path: Path) -> None:
    """The Debian system this runs on (CI machines are Debian): its /etc, perl-base modules and
    dpkg status as one layer, i.e. what a Debian base image ships, give no finding."""
    import io
    import os
    import tarfile

    if not Path("/etc/debian_version").is_file():
        if os.environ.get("CI"):
            pytest.fail("CI machines are Debian; /etc/debian_version is missing")
        pytest.skip("not a Debian host (outside CI)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for root in ("/etc", "/usr/share/perl5", "/usr/share/base-files", "/var/lib/dpkg/status"):
            if not os.path.exists(root):
                continue
            for dirpath, _dirs, names in (
                os.walk(root) if os.path.isdir(root) else [("", [], [root])]
            ):
                for n in names:
                    p = os.path.join(dirpath, n)
                    if os.path.islink(p) or not os.path.isfile(p) or not os.access(p, os.R_OK):
                        continue
                    tf.add(p, arcname=p.lstrip("/"), recursive=False)
    img = build_image(
        [buf.getvalue()],
        compression="",
        history=[{"created": CREATED, "created_by": "ADD rootfs.tar /"}],
    )
    image = open_source(write_oci_layout(img, tmp_path / "debian", "t")).image()
    v = SecretsVisitor()
    run_pass(image, [v])
    assert v.files_read > 300
    assert [(f.rule, f.location.path, f.location.line) for f in v.findings] == []


def test_prefilter_changes_no_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """scan_text skips the rules when one alternation of their patterns finds nothing: every
    sample of every rule, alone and inside other text, in config-like and other files, gives
    the same hits with and without the prefilter (and the prefilter does skip clean text)."""
    from hypothesis import given, settings, strategies as st

    from imagewise.secrets import detect

    samples = [text for _, _, text, *_ in CASES]

    limit = detect.PREFILTER_MAX

    def both(text: str, config_like: bool) -> tuple[list[object], list[object]]:
        monkeypatch.setattr(detect, "PREFILTER_MAX", 1 << 20)
        fast = detect.scan_text(text, config_like=config_like)
        monkeypatch.setattr(detect, "PREFILTER_MAX", -1)
        slow = detect.scan_text(text, config_like=config_like)
        monkeypatch.setattr(detect, "PREFILTER_MAX", limit)
        return fast, slow

    @settings(max_examples=300, deadline=None)
    @given(
        pieces=st.lists(st.one_of(st.sampled_from(samples), st.text(max_size=40)), max_size=4),
        config_like=st.booleans(),
    )
    def check(pieces: list[str], config_like: bool) -> None:
        fast, slow = both("\n".join(pieces), config_like)
        assert [(h.rule.id, h.line, h.masked) for h in fast] == [  # type: ignore[attr-defined]
            (h.rule.id, h.line, h.masked)  # type: ignore[attr-defined]
            for h in slow
        ]

    check()
    assert all(any(both(s, c)[1] for c in (False, True)) for s in samples)  # samples do hit
    plan = detect._plan(False)
    assert plan.prefilter is not None and plan.prefilter.search("just some words\n") is None


def _plausible_plainly(path: str, size: int) -> bool:
    """``plausible`` as first written: every path tested whole."""
    from imagewise.secrets.detect import (
        ALLOW_DIRS,
        DOC_NAMES,
        MAX_FILE_BYTES,
        SKIP_EXT,
        _allowlisted_dir,
    )

    p = path.lstrip("/")
    if size <= 0 or size > MAX_FILE_BYTES or p.startswith(ALLOW_DIRS):
        return False
    if _allowlisted_dir(p.rpartition("/")[0]):
        return False
    name = path.rsplit("/", 1)[-1].lower()
    if name.startswith(DOC_NAMES) or ".so." in name:
        return False
    dot = name.rfind(".")
    return not (dot > 0 and name[dot:] in SKIP_EXT)


def test_plausible_by_directory_and_name_gives_the_whole_paths_answer() -> None:
    """The secret scan asks a batch's directory once (``allowlisted_directory``) and each name
    (``plausible_name``): the same answers as testing every path whole."""
    import random

    from imagewise.secrets.detect import ALLOW_DIRS

    assert all(d.endswith("/") for d in ALLOW_DIRS)  # what makes it the directory's answer
    rng = random.Random(5)
    dirs = [d.rstrip("/") for d in ALLOW_DIRS] + ["", "app", "usr/share", "usr/lib", "x/tests"]
    dirs += ["a/mock_data", "b/unit_test", "c/foo-tests", "node_modules/p/docs", "usr/sharex"]
    names = ["README.md", "readme", "LICENSE", "libz.so.1", "id_rsa", "key.pem", ".env.local"]
    names += ["Dockerfile", "config.yaml", "app.JSON", "x.png", "index.js", "a.b.c", ".hidden"]
    names += ["settings.py", "CHANGES.txt", "s", "x.so", "credentials", "doc"]
    for _ in range(4000):
        d = "/".join(rng.choice(dirs) for _ in range(rng.randint(1, 3))).strip("/")
        path = f"{d}/{rng.choice(names)}" if d else rng.choice(names)
        path = "/" + path if rng.random() < 0.1 else path
        size = rng.choice([0, 1, 100, 5 * 1024 * 1024])
        assert plausible(path, size) == _plausible_plainly(path, size), path
