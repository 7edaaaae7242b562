"""Audit checks on final-filesystem facts and image configs (synthetic entries, real config JSON)."""

import json

from imagewise.audit import AuditContext, AuditVisitor, run_checks
from imagewise.layers.model import Entry, Kind
from imagewise.oci.model import ImageConfig


def config(**cfg):
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": cfg.pop("config", {}),
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": cfg.pop("history", []),
    }
    return ImageConfig.parse(json.dumps(doc).encode())


def entry(path, kind=Kind.FILE, mode=0o644, size=1, content=b""):
    return Entry(
        path=path,
        kind=kind,
        mode=mode,
        size=size or len(content),
        _opener=(lambda: __import__("io").BytesIO(content)) if content else None,
    )


def run(layers, cfg=None, tag=None):
    v = AuditVisitor()
    for i, entries in enumerate(layers):
        v.begin_layer(i, None)
        for e in entries:
            v.visit(e)
        v.end_layer(i, None)
    ctx = AuditContext(
        cfg or config(config={"User": "app", "Healthcheck": {"Test": ["CMD", "true"]}}),
        v,
        tag=tag,
        layer_ids=tuple(f"sha256:{i:064x}" for i in range(len(layers))),
    )
    return {f.rule: f for f in run_checks(ctx)}, run_checks(ctx)


def test_setuid_found_and_removed_by_whiteout():
    hits, _ = run(
        [
            [entry("usr/bin/passwd", mode=0o4755), entry("usr/bin/su", mode=0o4755)],
            [entry("usr/bin/su", Kind.WHITEOUT)],
        ]
    )
    msgs = [f.message for f in _ if f.rule == "CIS-DI-0008"]
    assert len(msgs) == 1 and "/usr/bin/passwd" in msgs[0] and "setuid" in msgs[0]
    assert hits["CIS-DI-0008"].location.layer_index == 0


def test_opaque_whiteout_hides_lower_layers_only():
    _, all_ = run(
        [
            [entry("opt/app/.git", Kind.DIR, mode=0o755)],
            [entry("opt/app", Kind.OPAQUE), entry("opt/app/.vscode", Kind.DIR)],
        ]
    )
    paths = [f.location.path for f in all_ if f.rule == "DKL-LI-0003"]
    assert paths == ["/opt/app/.vscode"]


def test_accounts_empty_password_and_duplicate_uid():
    shadow = b"root:*:19000:0:99999:7:::\nbob::19000:0:99999:7:::\n"
    passwd = b"root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"
    hits, _ = run(
        [[entry("etc/shadow", content=shadow, mode=0o640), entry("etc/passwd", content=passwd)]]
    )
    assert "bob" in hits["DKL-LI-0001"].message
    assert "duplicate UID 0" in hits["DKL-LI-0002"].message


def test_caches_counted_from_files_present():
    hits, _ = run(
        [
            [
                entry("var/lib/apt/lists/deb.debian.org_dists_main", size=5000),
                entry("var/lib/apt/lists/lock", size=0),
                entry("var/cache/apk/APKINDEX.abc.tar.gz", size=700),
            ],
            [entry("var/cache/apk", Kind.WHITEOUT)],
        ]
    )
    assert hits["DKL-DI-0005"].bytes_saved == 5000
    assert "DKL-DI-0004" not in hits  # removed in layer 1


def test_config_checks_root_env_secret_volume_ports_history():
    cfg = config(
        config={
            "Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter22", "GPG_KEY=ABCDEF"],
            "Volumes": {"/proc": {}},
            "ExposedPorts": {"80/tcp": {}, "8080/tcp": {}},
        },
        history=[
            {"created_by": "/bin/sh -c apt-get update"},
            {"created_by": "/bin/sh -c sudo apt-get dist-upgrade -y"},
            {"created_by": "ADD https://x/y.tgz /opt", "empty_layer": False},
        ],
    )
    v = AuditVisitor()
    ctx = AuditContext(cfg, v, tag="latest", layer_ids=("a", "b", "c"))
    found = run_checks(ctx)
    rules = {f.rule for f in found}
    assert {
        "CIS-DI-0001",
        "CIS-DI-0006",
        "CIS-DI-0007",
        "CIS-DI-0009",
        "CIS-DI-0010",
        "DKL-DI-0001",
        "DKL-DI-0002",
        "DKL-DI-0003",
        "DKL-DI-0006",
        "IW-IMG-002",
        "IW-IMG-003",
        "IW-IMG-004",
    } <= rules
    secret = next(f for f in found if f.rule == "CIS-DI-0010")
    assert "hunter22" not in secret.message and "DB_PASSWORD" in secret.message
    assert not any("GPG_KEY" in f.message for f in found)
    assert not any(f.rule == "IW-IMG-002" and "8080" in f.message for f in found)


def test_clean_image_passes_user_and_healthcheck():
    hits, _ = run([[entry("bin/sh", mode=0o755)]])
    assert "CIS-DI-0001" not in hits and "CIS-DI-0006" not in hits


def test_base_rootfs_add_is_not_flagged():
    cfg = config(history=[{"created_by": "/bin/sh -c #(nop) ADD file:" + "a" * 64 + " in / "}])
    ctx = AuditContext(cfg, AuditVisitor(), layer_ids=("x",))
    assert not [f for f in run_checks(ctx) if f.rule == "CIS-DI-0009"]


def test_layer_cache_replay_restores_accounts():
    v = AuditVisitor()
    v.begin_layer(0, None)
    v.restore_layer(0, None, {"etc/shadow": "eve::1:0:::::\n"})
    v.visit(entry("etc/shadow", size=14))  # replayed: no content
    assert v.accounts["etc/shadow"] == (0, "eve::1:0:::::\n")
