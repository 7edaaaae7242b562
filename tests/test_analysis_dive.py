"""dive-exact efficiency figures: synthetic layers with the cases dive's own code defines, and the
dive corpus image whose values dive's tests assert (../shared/corpora/dive/EXPECTED.md)."""

from __future__ import annotations

import math

import pytest
from analysis_support import D, L, O, S, W, e
from conftest import corpus

from imagewise.analysis.dive import DiveEfficiency, DiveFigures
from imagewise.layers.model import Entry


def run(layers: list[list[Entry]]) -> DiveFigures:
    v = DiveEfficiency()
    for i, entries in enumerate(layers):
        v.begin_layer(i, None)
        for entry in entries:
            v.visit(entry)
        v.end_layer(i, None)
    return v.result()


def test_dive_unit_case_nginx() -> None:
    # dive's efficiency_test: parents implicit, then a whiteout of the (implicit) directory
    fig = run(
        [
            [e("etc/nginx/nginx.conf", size=2000), e("etc/nginx/public", size=3000)],
            [e("etc/nginx/nginx.conf", size=5000), e("etc/athing", size=10000)],
            [e("etc/nginx", W)],
        ]
    )
    assert fig.efficiency == 0.75
    assert [(f.path, f.count, f.wasted_bytes) for f in fig.inefficient_files] == [
        ("/etc/nginx/nginx.conf", 2, 7000)
    ]
    assert fig.wasted_bytes == 7000


def test_scratch_single_empty_file() -> None:
    fig = run([[e("nothing", size=0)]])
    assert fig.efficiency == 1.0
    assert fig.inefficient_files == ()
    assert fig.user_size_bytes == 0 and math.isnan(fig.user_wasted_percent)


def test_explicit_directory_whiteout_counts_contents_once() -> None:
    fig = run(
        [
            [e("a", D), e("a/x", size=100), e("a/sub", D), e("a/sub/y", size=50)],
            [e("a", W)],
        ]
    )
    # /a becomes one node of size 150 (not inefficient); x and y are seen once each
    assert fig.inefficient_files == ()
    assert fig.efficiency == 1.0
    assert fig.size_bytes == 150 and fig.user_size_bytes == 0


def test_file_whiteout_costs_full_size() -> None:
    fig = run([[e("a", D), e("a/x", size=100), e("keep", size=100)], [e("a/x", W)]])
    assert [(f.path, f.count, f.wasted_bytes) for f in fig.inefficient_files] == [("/a/x", 2, 100)]
    assert fig.efficiency == 100 / 200
    assert math.isinf(fig.user_wasted_percent)  # the deleting layer adds no bytes


def test_missing_whiteout_aborts_rest_of_layer_and_lowers_score() -> None:
    # "b" whiteout sorts before "c": dive errors on it and never visits "c" in that layer
    fig = run(
        [
            [e("a", size=10), e("c", size=20)],
            [e("b", W), e("c", size=30)],
        ]
    )
    assert fig.inefficient_files == ()
    # paths: /a 10/10, /c 20/20, /b minimum -1 -> (10 + 20 - 1) / 30
    assert fig.efficiency == 29 / 30
    assert fig.layer_sizes == (30, 30)


def test_entries_sorting_before_the_whiteout_name_are_still_seen() -> None:
    # dive sorts the stored name ".wh.d": "-c" (0x2D) comes before it, "c" after it
    fig = run([[e("-c", size=20), e("c", size=20)], [e("-c", size=30), e("c", size=30), e("d", W)]])
    assert [(f.path, f.count, f.wasted_bytes) for f in fig.inefficient_files] == [("/-c", 2, 50)]


def test_opaque_whiteout_is_invisible_to_dive() -> None:
    fig = run(
        [
            [e("d", D), e("d/old", size=400)],
            [e("d", D), e("d", O), e("d/new", size=100)],
        ]
    )
    assert fig.inefficient_files == ()
    assert fig.efficiency == 1.0
    assert fig.layer_files == (2, 2)  # the marker is no node of the tree


def test_empty_directory_leaves_count_with_zero_bytes() -> None:
    fig = run([[e("x", D)], [e("x", D)]])
    assert [(f.path, f.count, f.wasted_bytes) for f in fig.inefficient_files] == [("/x", 2, 0)]
    assert fig.wasted_bytes == 0 and fig.efficiency == 1.0


def test_modified_file_counts_smaller_copy_as_needed() -> None:
    fig = run([[e("f", size=1000)], [e("f", size=10)]])
    assert fig.efficiency == 10 / 1010
    assert fig.wasted_bytes == 1010
    assert fig.user_wasted_percent == 1010 / 10


def test_implicit_parent_replaces_directory_metadata_in_stack() -> None:
    # layer 1 adds a/f without an "a" entry: dive's stacked "a" loses its directory flag,
    # so deleting "a" in layer 2 counts 0 bytes
    fig = run(
        [
            [e("a", D), e("a/x", size=100)],
            [e("a/f", size=5)],
            [e("a", W)],
        ]
    )
    assert fig.inefficient_files == ()
    assert fig.efficiency == 1.0


def test_inefficient_order_largest_first_ties_latest_found_first() -> None:
    layer0 = [e("p1", size=5), e("p2", size=7), e("p3", size=5)]
    fig = run([layer0, [e("p1", size=5), e("p2", size=7), e("p3", size=5)]])
    assert [f.path for f in fig.inefficient_files] == ["/p2", "/p3", "/p1"]


def test_hardlinks_and_symlinks_have_header_sizes() -> None:
    fig = run(
        [
            [
                e("bin/busybox", size=1000),
                e("bin/sh", L, linkname="bin/busybox"),
                e("bin/ls", S, linkname="busybox"),
            ],
            [e("bin/busybox", size=1000), e("bin/sh", L, linkname="bin/busybox")],
        ]
    )
    assert {(f.path, f.wasted_bytes) for f in fig.inefficient_files} == {
        ("/bin/busybox", 2000),
        ("/bin/sh", 0),
    }
    assert fig.layer_sizes == (1000, 1000)


def test_empty_layers() -> None:
    fig = run([[e("a", size=1)], [], []])
    assert fig.layer_sizes == (1, 0, 0) and fig.efficiency == 1.0


# -- the dive corpus image: numbers asserted by dive's own tests ----------------------------

EXPECTED_LAYER_SIZES = (
    1154361,
    6405,
    0,
    6405,
    6405,
    6405,
    6405,
    6405,
    6405,
    0,
    2187,
    6405,
    6405,
    6405,
)


@pytest.fixture(scope="module")
def dive_corpus_analysis():  # type: ignore[no-untyped-def]
    from imagewise.analysis import analyze
    from imagewise.sources import open_source

    path = corpus("dive", "test-docker-image.tar")
    with open_source(f"docker-archive:{path}") as src:
        return analyze(src.image())


def test_dive_corpus_exact(dive_corpus_analysis) -> None:  # type: ignore[no-untyped-def]
    d = dive_corpus_analysis.dive
    assert d.efficiency == 0.9844212134184309
    assert d.size_bytes == 1220598
    assert d.user_size_bytes == 66237
    assert d.wasted_bytes == 32025
    assert d.user_wasted_percent == 0.4834911001404049
    assert [(f.path, f.count, f.wasted_bytes) for f in d.inefficient_files] == [
        ("/root/saved.txt", 2, 12810),
        ("/root/example/somefile1.txt", 2, 12810),
        ("/root/example/somefile3.txt", 2, 6405),
    ]
    assert d.layer_sizes == EXPECTED_LAYER_SIZES
    assert [layer.dive_files for layer in dive_corpus_analysis.layers] == [
        415,
        1,
        4,
        3,
        3,
        3,
        3,
        4,
        2,
        2,
        4,
        2,
        3,
        2,
    ]
    assert dive_corpus_analysis.layers[9].created_by.endswith("rm -rf /root/example/")


def test_dive_corpus_reclaimable(dive_corpus_analysis) -> None:  # type: ignore[no-untyped-def]
    a = dive_corpus_analysis
    # somefile1 twice (chmod copy, then the directory delete), somefile2 (directory delete),
    # somefile3 (moved away), saved.txt's first copy (chmod +x): five 6405-byte copies
    assert a.reclaimable_bytes == 5 * 6405
    assert a.final_bytes + a.reclaimable_bytes == sum(
        size for size in EXPECTED_LAYER_SIZES
    )  # every byte of this image is a file's content


def test_inefficient_paths_are_masked_as_redact_path_masks_them() -> None:
    # the quick pre-check is asked per directory and per name: every path must come out as
    # redact_path makes it whole, secrets inside one half or spanning the joining "/"
    import random

    from imagewise.analysis.dive import InefficientFile, InefficientFiles
    from imagewise.secrets.mask import redact_path

    key = "AKIA" + "QW7RZ2XK5NP3MV4T"
    parts = [
        "", "usr", "usr/lib", "https:", "x/https:", "proxy:", "a/b:", "user:Pa55w0rdX@host",
        "/u:Pa55w0rdX@h", ":", "ghp", "_" + "a1B2" * 9, "ghp_" + "a1B2" * 9, key, "aws",
        "pypi-", "eyJhbGciOiJIUzI1NiJ9", "node_modules/.bin", "k_live_x", "s",
    ]  # fmt: skip
    rng = random.Random(7)
    rows = []
    for i in range(3000):
        d = "/".join(rng.choice(parts) for _ in range(rng.randint(0, 3))).strip("/")
        d = d.replace("//", "/")
        n = rng.choice([p for p in parts if p and "/" not in p])
        rows.append((-i, -i, d, n, 2))
    files = InefficientFiles(rows)
    expected = [InefficientFile(redact_path(f"{d}/{n}"), c, -w) for w, _o, d, n, c in rows]
    assert list(files) == expected
    assert list(files.json_items()) == [f.to_json() for f in expected]
    assert sum(f.path != f"{d}/{n}" for f, (_w, _o, d, n, _c) in zip(expected, rows)) > 100
