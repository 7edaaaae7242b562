"""Hardening of the layer walk and mapped access: archives cut on a block boundary, archives
truncated while they are read in place, sparse tar members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures_images import random_image, write_docker_archive
from imagewise.errors import ImagewiseError, NotAnImage
from imagewise.layers.model import Visitor
from imagewise.layers.passes import run_pass
from imagewise.sources import open_source


class _Reads(Visitor):
    name = "reads"

    def wants_content(self, entry: Any) -> bool:
        return True

    def visit(self, entry: Any) -> None:
        entry.read()


@pytest.mark.parametrize("style", ["legacy", "oci"])
def test_docker_archive_cut_on_a_block_boundary_says_truncated(tmp_path: Path, style: str) -> None:
    """Every cut at a multiple of 512 bytes: the image either still opens whole (only trailing
    members such as ``repositories`` were lost) or the error says the archive looks truncated,
    never that it is a plain tar made with tar."""
    img = random_image(seed=3, layers=2, compression="")
    full = tmp_path / "full.tar"
    write_docker_archive(img, full, style=style)
    data = full.read_bytes()
    cut = tmp_path / "cut.tar"
    refused = 0
    for n in range(512, len(data), 512):
        cut.write_bytes(data[:n])
        try:
            with open_source(f"docker-archive:{cut}") as src:
                run_pass(src.image(), [_Reads()])
        except NotAnImage as e:
            raise AssertionError(f"cut at {n}: {e}") from e
        except ImagewiseError as e:
            assert "truncated" in str(e), (n, str(e))
            assert "plain tar" not in str(e) and "\n" not in str(e)
            refused += 1
    assert refused > len(data) // 512 // 2
