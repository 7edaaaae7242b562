"""The merged file tree: overlay rules, layer changes, real images, memory on 200k files."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

from conftest import corpus
from layers_support import make_tar, member

from imagewise.archive.walk import walk
from imagewise.layers.model import Entry, Kind
from imagewise.layers.tree import FileTree, classify, layer_changes


def _tree(*layers: bytes) -> FileTree:
    tree = FileTree()
    for i, data in enumerate(layers):
        for e in walk(io.BytesIO(data)):
            tree.apply(e, i)
    return tree


def _paths(tree: FileTree) -> list[str]:
    return [p for p, _ in tree.walk()]


def test_whiteout_removes_file_and_directory_recursively() -> None:
    base = make_tar(
        [
            member("a", "dir"),
            member("a/b", "dir"),
            member("a/b/c", data=b"1"),
            member("a/d", data=b"2"),
            member("e", data=b"3"),
        ]
    )
    upper = make_tar([member("a/.wh.b"), member(".wh.e")])
    tree = _tree(base, upper)
    assert _paths(tree) == ["a", "a/d"]
    assert tree.get("a/b/c") is None and "a/b" not in tree


def test_opaque_hides_lower_but_keeps_same_layer_entries() -> None:
    base = make_tar(
        [
            member("d", "dir"),
            member("d/old", data=b"1"),
            member("d/sub", "dir"),
            member("d/sub/deep", data=b"2"),
        ]
    )
    # the new entries come before and after the opaque marker in the same layer
    upper = make_tar(
        [
            member("d", "dir", mode=0o700),
            member("d/new1", data=b"n"),
            member("d/sub", "dir"),
            member("d/.wh..wh..opq"),
            member("d/new2", data=b"m"),
        ]
    )
    tree = _tree(base, upper)
    assert _paths(tree) == ["d", "d/new1", "d/new2", "d/sub"]
    d = tree.get("d")
    assert d is not None and d.mode == 0o700 and d.layer == 1


def test_replacements_between_kinds() -> None:
    base = make_tar(
        [
            member("x", "dir"),
            member("x/inner", data=b"1"),
            member("y", data=b"2"),
            member("lnk", "symlink", link="x"),
        ]
    )
    upper = make_tar(
        [
            member("x", data=b"now a file"),
            member("y", "dir"),
            member("y/z", data=b"3"),
            member("lnk/through", data=b"4"),
        ]
    )
    tree = _tree(base, upper)
    x, y, lnk = tree.get("x"), tree.get("y"), tree.get("lnk")
    assert x is not None and x.kind is Kind.FILE and x.size == 10 and "x/inner" not in tree
    assert y is not None and y.kind is Kind.DIR and "y/z" in tree
    # a path under what was a symlink: the symlink node becomes a directory in the tree
    assert lnk is not None and lnk.kind is Kind.DIR and "lnk/through" in tree


def test_dir_over_dir_keeps_children_and_implicit_parents() -> None:
    tree = _tree(
        make_tar([member("p/q/r", data=b"1")]), make_tar([member("p", "dir", mode=0o711, uid=5)])
    )
    p = tree.get("p")
    assert p is not None and (p.mode, p.uid, p.layer) == (0o711, 5, 1)
    assert _paths(tree) == ["p", "p/q", "p/q/r"]
    assert len(tree) == 3 and tree.total_size() == 1


def test_classify_changes() -> None:
    tree = _tree(
        make_tar(
            [
                member("d", "dir"),
                member("d/f", data=b"1"),
                member("d/g", data=b"2"),
                member("k", data=b"3"),
            ]
        )
    )

    def ch(e: Entry) -> list[tuple[str, str]]:
        return [(c.change, c.path) for c in classify(tree, e, 1)]

    assert ch(Entry("d/f", Kind.FILE, 5, 0o644)) == [("modified", "d/f")]
    assert ch(Entry("n", Kind.FILE, 1, 0o644)) == [("added", "n")]
    assert ch(Entry("k", Kind.WHITEOUT)) == [("deleted", "k")]
    assert ch(Entry("gone", Kind.WHITEOUT)) == []
    assert ch(Entry("d", Kind.OPAQUE)) == [("deleted", "d/f"), ("deleted", "d/g")]
    d = tree.get("d")
    assert d is not None
    assert ch(Entry("d", Kind.DIR, 0, d.mode)) == []  # unchanged directory re-listed
    assert ch(Entry("", Kind.DIR, 0, 0o700)) == []  # the root's own "./" entry


def test_dive_image_merged_tree_and_layer_changes() -> None:
    from imagewise.layers.passes import run_pass
    from imagewise.layers.tree import TreeVisitor
    from imagewise.sources import open_source

    with open_source(f"docker-archive:{corpus('dive', 'test-docker-image.tar')}") as src:
        img = src.image()
        v = TreeVisitor()
        run_pass(img, [v])
        tree = v.tree
        assert "root/example" not in tree  # whited out in layer 9
        saved = tree.get("root/saved.txt")
        assert saved is not None and saved.mode == 0o755 and saved.layer == 13
        assert tree.get("bin/busybox") is not None or tree.get("bin/[") is not None
        summary = {i: sorted((c.change, c.path) for c in layer_changes(img, i)) for i in (4, 7, 9)}
    assert summary[4] == [("modified", "root/example/somefile1.txt")]
    assert summary[7] == [("added", "root/saved.txt"), ("deleted", "root/example/somefile3.txt")]
    assert summary[9] == [("deleted", "root/example")]


def test_two_hundred_thousand_files_memory() -> None:
    code = textwrap.dedent("""
        from imagewise.layers.model import Entry, Kind
        from imagewise.layers.tree import FileTree

        def peak_kb():
            # VmHWM is this process's own peak; ru_maxrss would carry the forking parent's
            # (the pytest worker's) peak across exec
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

        before = peak_kb()
        tree = FileTree()
        for i in range(200_000):
            tree.apply(Entry(f"usr/lib/pkg{i // 400:04d}/sub{i % 9}/module_{i:06d}.py",
                             Kind.FILE, i % 70000, 0o644, 0, 0, "", 1_700_000_000 + i), 0)
        after = peak_kb()
        print(len(tree), after // 1024, (after - before) // 1024)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    count, rss_mb, grown_mb = map(int, out)
    assert count == 200_000 + 500 + 500 * 9 + 2
    assert rss_mb < 300 and grown_mb < 120, (rss_mb, grown_mb)
