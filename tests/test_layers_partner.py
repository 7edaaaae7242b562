"""The pass's partner process (``layers/partner``): the content visitors (the secret scan) read
each layer in a forked process and hand their results back; everything a check derives and
stores must be exactly what a single-process pass gives, and any failure of the partner must
cost only time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from fixtures_images import build_image, tar_bytes, write_oci_layout
from sbom_images import apps_image
from secret_samples import AWS_ID, AWS_SECRET, GH

from imagewise.archive import forking
from imagewise.check.run import CheckOptions, run_check
from imagewise.layers import partner
from imagewise.layers.passes import run_pass
from imagewise.oci.model import Platform
from imagewise.sbom.visitor import CatalogVisitor
from imagewise.secrets.visitor import SecretsVisitor
from imagewise.sources import detect_local


def _secret_layers() -> list[bytes]:
    creds = f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    return [
        tar_bytes({"root/.aws/credentials": creds.encode(), "etc/app.env": f"T={GH}\n".encode()}),
        tar_bytes({"root/.aws/.wh.credentials": b""}),  # deleted later: marked removed_later
    ]


def _image(tmp_path: Path, compression: str) -> str:
    """The SBOM tests' apps image (packages of five ecosystems, a deletion layer), then a layer
    with secrets and one deleting a file of them: eight layers, as plain tars or gzipped."""
    import json

    base = apps_image(compression="")
    history = [*json.loads(base.config)["history"]]
    history += [{"created_by": f"RUN secret step {i}"} for i in range(2)]
    img = build_image(
        [*base.layer_tars, *_secret_layers()], compression=compression, history=history
    )
    return write_oci_layout(img, tmp_path / f"img-{compression or 'plain'}", "latest")


def _check(ref: str, cache: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> object:
    monkeypatch.setenv("IMAGEWISE_PARTNER", setting)
    return run_check(CheckOptions(image=ref, cache_dir=cache, db=cache.parent / "no-db.sqlite"))


def _view(result: object) -> tuple[object, ...]:
    r: object = result
    return (
        r.packages,  # type: ignore[attr-defined]
        r.secrets,  # type: ignore[attr-defined]
        r.audit,  # type: ignore[attr-defined]
        r.analysis.to_json(),  # type: ignore[attr-defined]
        r.verdict,  # type: ignore[attr-defined]
    )


def _records(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


class _Spy:
    """Counts what the pass took from a partner, and what it had to do itself."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.given = self.failed = self.images = self.images_failed = 0
        real, real_image = partner.Partner.results, partner.Partner.image_results

        def results(p: partner.Partner, index: int) -> object:
            value = real(p, index)
            if value is None:
                self.failed += 1
            else:
                self.given += 1
            return value

        def image_results(p: partner.Partner) -> object:
            value = real_image(p)
            if value is None:
                self.images_failed += 1
            else:
                self.images += 1
            return value

        monkeypatch.setattr(partner.Partner, "results", results)
        monkeypatch.setattr(partner.Partner, "image_results", image_results)


@pytest.mark.parametrize("compression", ["", "gzip"])
def test_check_is_the_same_with_a_partner_and_stores_the_same_records(
    tmp_path, monkeypatch, compression
):
    ref = _image(tmp_path, compression)
    alone = _check(ref, tmp_path / "cache-alone", monkeypatch, "0")
    spy = _Spy(monkeypatch)
    paired = _check(ref, tmp_path / "cache-paired", monkeypatch, "1")
    assert spy.given == 8 and spy.failed == 0  # every layer's results came from the partner
    assert _view(paired) == _view(alone)
    assert paired.secrets and paired.packages  # type: ignore[attr-defined]
    assert any(f.extra.get("removed_later") for f in paired.secrets)  # type: ignore[attr-defined]
    # the cache holds byte for byte what a single-process pass stores
    assert _records(tmp_path / "cache-paired") == _records(tmp_path / "cache-alone")
    # and a warm check from the partner's records is the same check again
    spy.given = 0
    warm = _check(ref, tmp_path / "cache-paired", monkeypatch, "1")
    assert spy.given == 0  # every layer from the cache: no secret scan in the partner
    # dive runs whole in the partner over layers read in place; over compressed ones the
    # cache's entries are replayed to it here instead (cheaper than decompressing them there)
    assert spy.images == (0 if compression else 1)
    assert _view(warm) == _view(alone)


def test_a_partner_reads_only_the_layers_the_cache_lacks(tmp_path, monkeypatch):
    ref = _image(tmp_path, "")
    cache = tmp_path / "cache"
    _check(ref, cache, monkeypatch, "0")
    # forget the results of two layers: only those are read again, and only those by the partner
    from imagewise.cache import LayerCache

    layer_cache = LayerCache(cache)
    img = _open(ref)
    gone = [str(img.layers[i].digest) for i in (2, 6)]
    for digest in gone:
        bound = layer_cache.bound(digest)
        assert bound is not None
        for f in layer_cache.root.glob(f"results/secrets-*/{bound.replace(':', '_')}"):
            f.unlink()
    spy = _Spy(monkeypatch)
    again = _check(ref, cache, monkeypatch, "1")
    assert spy.given == 2
    assert _view(again) == _view(_check(ref, tmp_path / "fresh", monkeypatch, "0"))


def _open(ref: str) -> object:
    from imagewise.reference import parse_transport
    from imagewise.sources import source_for

    src = source_for(detect_local(ref) or parse_transport(ref))
    return src.image(Platform.parse("linux/amd64"))


def _pass(
    ref: str, setting: str, monkeypatch: pytest.MonkeyPatch, content: bool = True
) -> tuple[object, ...]:
    """One pass with the analysis visitors, and (``content``) the catalog and secrets ones."""
    monkeypatch.setenv("IMAGEWISE_PARTNER", setting)
    from imagewise.analysis.run import EfficiencyVisitors

    eff = EfficiencyVisitors()
    cat, sec = CatalogVisitor(), SecretsVisitor()
    image = _open(ref)
    run_pass(image, [*eff.all, cat, sec] if content else eff.all)  # type: ignore[arg-type]
    return (
        sorted(cat.evidence),
        {p: [(v.layer, v.cataloger) for v in vs] for p, vs in cat.evidence.items()},
        sec.findings,
        eff.result(image).to_json(),  # type: ignore[arg-type]
        list(eff.dive.result().inefficient_files),
    )


def test_dive_runs_whole_in_the_partner_when_no_content_visitor_does(tmp_path, monkeypatch):
    ref = _image(tmp_path, "")
    expected = _pass(ref, "0", monkeypatch, content=False)
    assert expected[4]  # rewritten paths: dive's inefficient files are part of what crosses
    spy = _Spy(monkeypatch)
    assert _pass(ref, "1", monkeypatch, content=False) == expected
    assert (spy.images, spy.given) == (1, 0)  # analyze: dive's figures came from the partner
    # with the content visitors the partner takes those, and dive stays here
    spy.images = 0
    assert _pass(ref, "1", monkeypatch)[3:] == expected[3:]
    assert (spy.images, spy.given) == (0, 8)


BREAKAGES = ["dies at once", "fails on layer 3", "sends garbage", "sends layers out of order"]


@pytest.mark.parametrize(
    ("breakage", "content"),
    [(b, True) for b in BREAKAGES] + [(b, False) for b in BREAKAGES[:3]],
)
def test_a_failing_partner_costs_only_time(tmp_path, monkeypatch, breakage, content):
    ref = _image(tmp_path, "gzip")
    expected = _pass(ref, "0", monkeypatch, content)
    parent = os.getpid()
    real_serve = partner._serve

    def broken(fd, image, layers, each, reads, whole, read):  # runs in the partner
        assert os.getpid() != parent
        if breakage == "dies at once":
            os._exit(3)
        if breakage == "sends garbage":
            os.write(fd, forking.frame(b"junk!"))
            return 0
        if breakage == "sends layers out of order":
            return real_serve(fd, image, list(reversed(layers)), each, reads, whole, read)

        def read_or_fail(layer, vs):
            if layer.index == 3:
                raise RuntimeError("planted")
            read(layer, vs)

        return real_serve(fd, image, layers, each, reads, whole, read_or_fail)

    monkeypatch.setattr(partner, "_serve", broken)
    spy = _Spy(monkeypatch)
    assert _pass(ref, "1", monkeypatch, content) == expected
    if content:  # the first failure ends the partner: the rest is read here
        assert spy.failed == 1
        assert spy.given == (3 if breakage == "fails on layer 3" else 0)
    else:  # dive ran here, over every layer
        assert (spy.images, spy.images_failed) == (0, 1)


def test_an_image_the_pass_cannot_read_fails_the_same_with_a_partner(tmp_path, monkeypatch):
    ref = _image(tmp_path, "gzip")
    blobs = Path(ref.removeprefix("oci:").rsplit(":", 1)[0]) / "blobs" / "sha256"
    img = _open(ref)
    victim = blobs / img.layers[4].digest.hex  # type: ignore[attr-defined]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    errors = []
    for setting in ("0", "1"):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the same error both ways
            _pass(ref, setting, monkeypatch)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def test_when_a_partner_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGEWISE_PARTNER", raising=False)
    small = _open(_image(tmp_path, ""))
    layers = small.layers  # type: ignore[attr-defined]
    monkeypatch.setattr(forking, "cores", lambda: 2)
    assert not partner.usable(layers)  # too small to pay for the fork
    monkeypatch.setattr(forking, "MIN_BYTES", 0)
    assert partner.usable(layers)
    monkeypatch.setattr(forking, "cores", lambda: 1)
    assert not partner.usable(layers)  # one core: nothing to share
    monkeypatch.setenv("IMAGEWISE_PARTNER", "1")
    assert partner.usable(layers)  # forced (the suite's second run)
    monkeypatch.setenv("IMAGEWISE_PARTNER", "0")
    assert not partner.usable(layers)
    monkeypatch.setenv("IMAGEWISE_PARTNER", "1")
    # never from a thread (the service's workers), never for a blob that is not a local file
    seen = []
    t = threading.Thread(target=lambda: seen.append(partner.usable(layers)))
    t.start()
    t.join()
    assert seen == [False]
    monkeypatch.setattr(type(layers[0]), "region", lambda layer: None)
    assert not partner.usable(layers)


def test_no_process_to_fork_leaves_the_pass_to_do_it_all(tmp_path, monkeypatch):
    ref = _image(tmp_path, "")
    expected = _pass(ref, "0", monkeypatch)

    def no_fork(run, close=()):
        raise BlockingIOError("fork: resource temporarily unavailable")

    monkeypatch.setattr(partner, "fork_child", no_fork)
    spy = _Spy(monkeypatch)
    assert _pass(ref, "1", monkeypatch) == expected
    assert (spy.given, spy.failed, spy.images) == (0, 0, 0)  # no partner was there to ask


@pytest.mark.parametrize("setting", ["0", "1"])
def test_check_is_the_same_in_batches_and_stores_the_same_records(tmp_path, monkeypatch, setting):
    """Mapped layers walked in batches (``archive.batch``: whole to every visitor of a check
    and to the cache's records) give the check and the cache records of an entry-by-entry
    walk, with or without the partner."""
    from imagewise.archive import walk as walk_mod
    from imagewise.layers import passes

    ref = _image(tmp_path, "")
    monkeypatch.setattr(passes, "BATCHES", False)
    alone = _check(ref, tmp_path / "cache-entries", monkeypatch, setting)
    monkeypatch.setattr(passes, "BATCHES", True)
    monkeypatch.setattr(walk_mod, "BATCH", 3)
    calls = []
    real = passes.visit_entries

    def spy(entries, visitors, *args, **kwargs):
        calls.append([type(v).__name__ for v in visitors])
        return real(entries, visitors, *args, **kwargs)

    monkeypatch.setattr(passes, "visit_entries", spy)
    batched = _check(ref, tmp_path / "cache-batches", monkeypatch, setting)
    assert _view(batched) == _view(alone)
    assert _records(tmp_path / "cache-batches") == _records(tmp_path / "cache-entries")
    if walk_mod.NATIVE_SCAN is not None:  # every visitor of a check takes batches: no entries
        assert calls and all("DiveEfficiency" in c for c in calls)  # made for any of them
