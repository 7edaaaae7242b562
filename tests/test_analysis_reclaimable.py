"""reclaimable_bytes with OCI semantics, leftovers, duplicates, toolchains, attribution and fixes."""

from __future__ import annotations

import io
import random

from analysis_support import D, L, O, S, W, analyse, e
from hypothesis import given, settings, strategies as st

from imagewise.analysis.attribution import short_instruction
from imagewise.analysis.model import ImageAnalysis
from imagewise.encoders import ANALYSIS
from imagewise.layers.model import Kind


def rules(a: ImageAnalysis) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in a.waste:
        out[f.rule] = out.get(f.rule, 0) + f.bytes_saved
    return out


def test_overwrite_counts_old_copy_once() -> None:
    a = analyse([[e("f", size=1000)], [e("f", size=10)], [e("f", size=300)]])
    assert a.reclaimable_bytes == 1010
    assert a.final_bytes == 300
    assert a.dive.wasted_bytes == 1310  # dive counts every copy, the kept one too
    assert [layer.reclaimable_bytes for layer in a.layers] == [1000, 10, 0]
    assert rules(a) == {"IW-WASTE-OVERWRITTEN": 1010}


def test_directory_delete_and_opaque_are_counted() -> None:
    a = analyse(
        [
            [
                e("a", D),
                e("a/x", size=100),
                e("a/sub", D),
                e("a/sub/y", size=50),
                e("d", D),
                e("d/old", size=400),
                e("d/keep", size=1),
            ],
            [e("a", W)],
            [e("d", D), e("d", O), e("d/new", size=7)],
        ]
    )
    assert a.reclaimable_bytes == 150 + 401
    assert a.final_bytes == 7
    assert a.dive.wasted_bytes == 0 and a.dive.efficiency == 1.0  # dive sees none of it
    deleted = [f for f in a.waste if f.rule == "IW-WASTE-DELETED"]
    assert {
        (f.location.layer_index, f.extra["hidden_by_layer"], f.bytes_saved) for f in deleted
    } == {(0, 1, 150), (0, 2, 401)}


def test_same_layer_entries_survive_their_own_whiteouts() -> None:
    # whiteouts only hide lower layers, whatever the order inside the tar
    a = analyse(
        [
            [e("d", D), e("d/old", size=40)],
            [e("d", D), e("d/new", size=5), e("d", O), e("x", size=3), e("x", W)],
        ]
    )
    assert a.final_bytes == 8
    assert a.reclaimable_bytes == 40


def test_whiteout_of_never_created_path_and_empty_layers() -> None:
    a = analyse([[e("a", size=5)], [], [e("ghost", W), e("also/missing", W)], []])
    assert a.reclaimable_bytes == 0 and a.final_bytes == 5
    assert a.missing_whiteouts == 2
    assert [layer.size_bytes for layer in a.layers] == [5, 0, 0, 0]


def test_hard_links_keep_content_alive() -> None:
    a = analyse(
        [
            [
                e("bin", D),
                e("bin/busybox", size=1000),
                e("bin/sh", L, linkname="bin/busybox"),
                e("bin/ls", L, linkname="bin/busybox"),
            ],
            [e("bin/busybox", W)],  # content still reachable as sh and ls
        ]
    )
    assert a.reclaimable_bytes == 0 and a.final_bytes == 1000
    b = analyse(
        [
            [e("bin", D), e("bin/busybox", size=1000), e("bin/sh", L, linkname="bin/busybox")],
            [e("bin/busybox", W), e("bin/sh", W)],
        ]
    )
    assert b.reclaimable_bytes == 1000 and b.final_bytes == 0


def test_chmod_only_copies_are_named_as_such() -> None:
    a = analyse(
        [
            [e("app", D), e("app/run.sh", size=2000, mode=0o644)],
            [e("app/run.sh", size=2000, mode=0o755)],
        ],
        ["COPY run.sh /app/", "/bin/sh -c chmod +x /app/run.sh"],
    )
    (f,) = a.waste
    assert f.rule == "IW-WASTE-METADATA" and f.bytes_saved == 2000
    assert f.location.layer_index == 0 and f.location.layer == "sha256:" + "0" * 64
    assert "COPY --chmod" in f.fix and f.extra["hidden_by"].endswith("chmod +x /app/run.sh")


def test_devices_fifos_symlinks_replace_and_dir_file_swaps() -> None:
    a = analyse(
        [
            [
                e("dev", D),
                e("dev/null", Kind.CHAR),
                e("dev/sda", Kind.BLOCK),
                e("p", Kind.FIFO),
                e("lnk", S, linkname="target"),
                e("x", D),
                e("x/in", size=9),
                e("y", size=4),
            ],
            [e("x", size=2), e("y", D), e("y/z", size=1)],
        ]
    )
    assert a.reclaimable_bytes == 9 + 4
    assert a.final_bytes == 3


def test_apt_lists_left_in_layer_with_fix_and_bytes() -> None:
    cmd = "/bin/sh -c apt-get update && apt-get install -y curl"
    lists = [e(f"var/lib/apt/lists/deb_{i}_Packages", size=1_000_000) for i in range(18)]
    a = analyse(
        [
            [e("etc/os-release", size=100)],
            [e("var/lib/apt/lists/lock", size=0), *lists, e("usr/bin/curl", size=200_000)],
        ],
        ["ADD rootfs.tar /", cmd],
    )
    (f,) = [f for f in a.waste if f.rule == "IW-WASTE-APT-LISTS"]
    assert f.bytes_saved == 18_000_000
    assert "rm -rf /var/lib/apt/lists/*" in f.fix and "saves 18.0 MB" in f.fix
    assert f.location.layer_index == 1 and f.location.layer.endswith("1")
    assert f.extra["created_by"] == cmd and f.extra["files"] == 18


def test_cache_deleted_in_a_later_layer_points_at_the_writing_layer() -> None:
    a = analyse(
        [
            [e("x", size=1)],
            [e("var/cache/apk/APKINDEX.tar.gz", size=5000), e("usr/bin/tool", size=10)],
            [e("var/cache/apk/APKINDEX.tar.gz", W)],
        ],
        ["ADD / /", "/bin/sh -c apk add tool", "/bin/sh -c rm -rf /var/cache/apk/*"],
    )
    (f,) = a.waste
    assert f.rule == "IW-WASTE-APK-CACHE" and f.bytes_saved == 5000
    assert f.location.layer_index == 1 and "apk add --no-cache" in f.fix


def test_leftover_categories() -> None:
    paths = {
        "var/cache/apt/archives/curl.deb": "apt-archives",
        "var/cache/dnf/x.solv": "yum-cache",
        "root/.cache/pip/http/ab": "pip-cache",
        "root/.npm/_cacache/index": "npm-cache",
        "usr/local/share/.cache/yarn/v6/x": "yarn-cache",
        "root/.cache/go-build/00/a": "go-cache",
        "usr/lib/python3/dist-packages/__pycache__/m.cpython-311.pyc": "pycache",
        "tmp/build.log": "temp",
        "var/tmp/x": "temp",
    }
    a = analyse([[e(p, size=100 + i) for i, p in enumerate(paths)]])
    found = {f.extra["category"]: f.location.path for f in a.waste}
    # both temp files fall in one (category, layer) bucket, located at its largest file
    assert found == {cat: "/" + p for p, cat in paths.items() if cat != "temp"} | {
        "temp": "/var/tmp/x"
    }


def test_duplicate_content_hashed_only_for_big_files() -> None:
    rng = random.Random(1)
    blob = rng.randbytes(70_000)
    a = analyse(
        [
            [e("opt/a.jar", data=blob), e("small1", data=b"x" * 10)],
            [e("srv/b.jar", data=blob), e("small2", data=b"x" * 10)],
        ]
    )
    (f,) = [f for f in a.waste if f.rule == "IW-WASTE-DUPLICATE-CONTENT"]
    assert f.bytes_saved == 70_000 and f.location.layer_index == 1
    assert f.location.path == "/srv/b.jar"


def test_big_rewrite_with_same_size_but_new_content_is_not_chmod() -> None:
    one, two = b"a" * 70_000, b"b" * 70_000
    a = analyse([[e("f", data=one)], [e("f", data=two)]])
    assert rules(a) == {"IW-WASTE-OVERWRITTEN": 70_000}


def test_toolchain_suggests_multi_stage() -> None:
    a = analyse(
        [
            [e("etc/x", size=1)],
            [
                e("usr/lib/gcc/x86_64-linux-gnu/12/cc1", size=30_000_000),
                e("usr/include/stdio.h", size=1000),
            ],
        ],
        ["ADD / /", "/bin/sh -c apt-get install -y build-essential"],
    )
    (f,) = [f for f in a.waste if f.rule == "IW-WASTE-TOOLCHAIN"]
    assert f.fix.startswith("use a multi-stage build: the compiler toolchain in layer 1 is 30.0 MB")


def test_files_added_then_deleted_fix_names_both_layers() -> None:
    a = analyse(
        [[e("src", D), e("src/big.tar.gz", size=5_000_000)], [e("src/big.tar.gz", W)]],
        ["/bin/sh -c curl -o /src/big.tar.gz https://x", "/bin/sh -c rm /src/big.tar.gz"],
    )
    (f,) = a.waste
    assert "combine RUN 0 and RUN 1" in f.fix and "saves 5.0 MB" in f.fix
    assert "curl -o /src/big.tar.gz" in f.title


def test_copy_then_delete_suggests_dockerignore() -> None:
    a = analyse(
        [[e("app", D), e("app/.git/pack", size=3000)], [e("app/.git", W)]],
        ["COPY . /app", "/bin/sh -c rm -rf /app/.git"],
    )
    assert ".dockerignore" in a.waste[0].fix


def test_short_instruction() -> None:
    assert short_instruction('/bin/sh -c #(nop)  CMD ["sh"]') == 'CMD ["sh"]'
    assert short_instruction("/bin/sh -c apt-get update") == "RUN apt-get update"
    assert short_instruction("RUN /bin/sh -c apk add x # buildkit") == "RUN apk add x"
    assert short_instruction("RUN |1 V=2 /bin/sh -c make # buildkit") == "RUN make"
    assert short_instruction("COPY app /app # buildkit") == "COPY app /app"
    assert short_instruction("ADD file:ab12 in / ") == "ADD file:ab12 in /"
    assert len(short_instruction("x" * 500)) == 70


def test_tree_and_largest_files_are_bounded() -> None:
    entries = [e(f"usr/share/f{i}", size=10) for i in range(3000)] + [e("big", size=10**6)]
    a = analyse([entries])
    assert a.largest_files[0].path == "big" and len(a.largest_files) == 20

    def count(node) -> int:  # type: ignore[no-untyped-def]
        return 1 + sum(count(c) for c in node.children)

    assert count(a.tree) < 100 and a.tree.size == 10**6 + 30_000
    assert a.tree.files == 3001


def test_json_envelope() -> None:
    a = analyse([[e("a", data=io.BytesIO(b"x").getvalue())], [e("a", size=2)]])
    doc = ANALYSIS.document(a)
    assert doc["schema"] == "imagewise/analysis/v1" and "schema" not in a.to_json()
    for key in (
        "efficiency",
        "wasted_bytes",
        "user_wasted_percent",
        "size_bytes",
        "user_size_bytes",
        "reclaimable_bytes",
        "layers",
        "inefficient_files",
        "leftovers",
    ):
        assert key in doc
    assert doc["leftovers"][0]["bytes_saved"] == 1 and doc["leftovers"][0]["layer_index"] == 0


def test_huge_sparse_looking_sizes() -> None:
    huge = 40 * 1024**3  # a 40 GiB sparse file as a tar header declares it
    a = analyse([[e("var/log/lastlog", size=huge), e("x", size=1)], [e("var/log/lastlog", W)]])
    assert a.reclaimable_bytes == huge and a.dive.wasted_bytes == huge
    assert a.dive.size_bytes == huge + 1


def test_layer_cache_replay_gives_the_same_analysis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fixtures_images import TarFile, build_image, tar_bytes, write_oci_layout

    from imagewise.analysis import EfficiencyVisitors
    from imagewise.cache import LayerCache
    from imagewise.layers.passes import run_pass
    from imagewise.sources import open_source

    blob = random.Random(3).randbytes(80_000)
    layers = [
        {"a/": TarFile(kind="dir"), "a/one.bin": blob, "a/x": b"x" * 10},
        {"b/": TarFile(kind="dir"), "b/two.bin": blob, "a/.wh.x": b""},
    ]
    ref = write_oci_layout(build_image([tar_bytes(x) for x in layers]), tmp_path / "oci")
    cache = LayerCache(tmp_path / "cache")
    docs = []
    for _ in range(2):
        with open_source(ref) as src:
            img = src.image()
            vis = EfficiencyVisitors()
            run_pass(img, vis.all, cache=cache)
            docs.append(vis.result(img).to_json())
    assert cache.misses == 2  # the second run was served from the cache
    assert docs[0] == docs[1]
    assert any(f["rule"] == "IW-WASTE-DUPLICATE-CONTENT" for f in docs[1]["leftovers"])


def test_one_match_answers_category_then_toolchain() -> None:
    """final_facts asks both questions of every file in one regex match: the answer must be
    classify's, else is_toolchain's, for every path, including those both would claim."""
    from imagewise.analysis.categories import (
        TOOLCHAIN,
        classify,
        is_toolchain,
        leftover_or_toolchain,
    )

    heads = [
        "",
        "var/",
        "var/lib/apt/lists/",
        "var/cache/apt/",
        "var/cache/apt/archives/",
        "etc/apk/cache/",
        "root/",
        "root/.cache/",
        "root/.cache/pip/",
        "home/u/.npm/",
        "usr/",
        "usr/local/",
        "usr/lib/gcc/",
        "usr/local/include/",
        "usr/bin/",
        "usr/lib/llvm-15/",
        "usr/local/share/.cache/yarn/",
        "tmp/",
        "var/tmp/",
        "go/pkg/mod/cache/",
        "root/.rustup/",
        "usr/lib/jvm/java-17-openjdk/",
        "app/",
        "usr/lib/x86_64-linux-gnu/",
        "a/__pycache__/",
        "__pycache__/",
        "tmp/include/",
    ]
    names = [
        "lock",
        "partial",
        "x.deb",
        "y.bin",
        "gcc",
        "gcc-12",
        "x86_64-linux-gnu-g++",
        "ld.gold",
        "clang-15",
        "libLLVM-15.so",
        "libasan.so.8",
        "m.pyc",
        "file",
        "tmp",
    ]
    rng = random.Random(7)
    paths = [h + n for h in heads for n in names]
    paths += ["".join(rng.choice(heads) for _ in range(3)) + rng.choice(names) for _ in range(3000)]
    claimed = 0
    for p in paths:
        want = classify(p) or (TOOLCHAIN if is_toolchain(p) else "")
        assert leftover_or_toolchain(p) == want, p
        claimed += want != ""
    assert claimed > 500  # the paths reach both kinds of answer


def _heads_and_names() -> tuple[list[str], list[str]]:
    heads = [
        "var/lib/apt/lists",
        "var/lib/apt/lists/sub",
        "var/cache/apt",
        "var/cache/apt/archives",
        "var/cache/apt/archives/partial",
        "var/cache/apk",
        "etc/apk/cache",
        "root/.cache/pip",
        "home/u/.npm",
        "home/u",
        "usr/bin",
        "usr/lib/gcc/x86_64-linux-gnu/12",
        "usr/local/include",
        "usr/lib/llvm-15/bin",
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/jvm/java-17-openjdk",
        "usr/local/go",
        "tmp",
        "var/tmp",
        "go/pkg/mod/cache",
        "root/.rustup",
        "app/__pycache__",
        "__pycache__",
        "app",
        "",
    ]
    names = ["lock", "partial", "x.deb", "y.bin", "gcc", "gcc-12", "ld.gold", "cc1"]
    names += ["libLLVM-15.so", "libasan.so.8", "m.pyc", "file", "tmp", "include"]
    return heads, names


def test_a_directory_answers_for_all_its_files() -> None:
    """``directory_answer`` (asked once per directory by ``final_facts``) is each file's own
    answer wherever it gives one."""
    from imagewise.analysis.categories import directory_answer, leftover_or_toolchain

    heads, names = _heads_and_names()
    rng = random.Random(11)
    dirs = heads + ["/".join(rng.sample(heads[:-1], 2)) for _ in range(300)]
    answered = 0
    for d in dirs:
        answer = directory_answer(d)
        for name in names:
            path = f"{d}/{name}" if d else name
            if answer is not None:
                answered += 1
                assert answer == leftover_or_toolchain(path), path
    assert answered > 3000


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_a_directory_answers_for_every_path_a_pattern_matches(data: st.DataObject) -> None:
    """The same over strings drawn from the patterns themselves: a directory that answers for
    its files never misses a file the patterns claim."""
    from imagewise.analysis.categories import _either, directory_answer, leftover_or_toolchain

    path = data.draw(st.from_regex("^(?:" + _either().pattern + ")", fullmatch=False))
    directory, _, _ = path.rpartition("/")
    answer = directory_answer(directory)
    assert answer is None or answer == leftover_or_toolchain(path), path
