"""Sink capabilities are declared on ``Sink`` (with the answer of a sink that lacks them), and
copy asks the sink instead of probing it with getattr/hasattr."""

from __future__ import annotations

import ast
from pathlib import Path

import imagewise.copy
from imagewise.reference import ImageReference
from imagewise.sources.docker_archive import DockerArchiveSink
from imagewise.sources.oci_layout import OCILayoutSink, OCILayoutSource
from imagewise.sources.registry import RegistrySink, RegistrySource


def _ref(text: str) -> ImageReference:
    return ImageReference.parse(text)


def test_a_layout_sink_takes_indexes_and_mounts_nothing(tmp_path: Path) -> None:
    sink = OCILayoutSink(str(tmp_path / "out"))
    try:
        assert sink.accepts_index is True
        assert sink.oci_media_types is True
        src = RegistrySource(_ref("localhost:5000/app:1"))
        assert sink.mount_from(src) is None
        assert sink.mount_blob(None, "app") is False  # type: ignore[arg-type]
    finally:
        sink.close()


def test_a_docker_archive_sink_declares_it_takes_no_index(tmp_path: Path) -> None:
    assert DockerArchiveSink.accepts_index is False
    assert RegistrySink.oci_media_types is False  # a registry stores Docker manifests as they are


def test_a_registry_sink_mounts_from_another_repository_of_its_registry() -> None:
    sink = RegistrySink(_ref("localhost:5000/dst:1"))
    assert sink.mount_from(RegistrySource(_ref("localhost:5000/src:1"))) == "src"
    assert sink.mount_from(RegistrySource(_ref("localhost:5000/dst:2"))) is None  # same repo
    assert sink.mount_from(RegistrySource(_ref("localhost:5001/src:1"))) is None  # other registry


def test_a_registry_sink_mounts_nothing_from_a_local_source(tmp_path: Path) -> None:
    sink = RegistrySink(_ref("localhost:5000/dst:1"))
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    assert sink.mount_from(OCILayoutSource(str(layout))) is None


def test_copy_asks_the_sink_instead_of_probing_it() -> None:
    tree = ast.parse(Path(imagewise.copy.__file__).read_text())
    probes = [
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id in ("sink", "source")
    ]
    assert probes == []


def test_a_source_declares_whether_it_hashed_a_blob_itself(tmp_path: Path) -> None:
    import imagewise.layers.passes
    from imagewise.oci.digest import Digest

    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    assert OCILayoutSource(str(layout)).hashed_here(Digest.of(b"")) is False
    tree = ast.parse(Path(imagewise.layers.passes.__file__).read_text())
    probes = [
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in ("getattr", "hasattr")
        and "source" in ast.unparse(n.args[0])
    ]
    assert probes == []


def test_stream_capabilities_are_read_in_one_place() -> None:
    import io

    from imagewise.oci.digest import Digest
    from imagewise.sources.blobio import VerifyingReader
    from imagewise.streams import restarter, verified_digest

    digest = Digest.of(b"abc")
    assert verified_digest(VerifyingReader(io.BytesIO(b"abc"), digest)) == digest
    assert verified_digest(io.BytesIO(b"abc")) is None
    assert restarter(io.BytesIO(b"abc")) is None
    src = Path(imagewise.copy.__file__).parent
    for rel in ("registry/upload.py", "sources/oci_layout.py", "layers/passes.py"):
        text = (src / rel).read_text()
        assert 'getattr(stream, "verifies"' not in text and '"restart", None' not in text, rel
