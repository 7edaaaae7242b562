import json

import pytest

from imagewise.errors import DigestMismatch, ImageFormatError, PlatformNotFound, TooLarge
from imagewise.oci import Digest, Index, Manifest, Platform, media, parse_manifest


def test_digest_parse_and_verify():
    d = Digest.of(b"hello")
    assert Digest.parse(str(d)) == d
    d.verify(b"hello")
    with pytest.raises(DigestMismatch):
        d.verify(b"hellO")
    for bad in ["sha256:abc", "md5:" + "0" * 32, "nocolon", "sha256:" + "G" * 64]:
        with pytest.raises(ImageFormatError):
            Digest.parse(bad)


def test_manifest_not_json_and_too_large():
    with pytest.raises(ImageFormatError, match="not valid JSON"):
        parse_manifest(b"{not json")
    with pytest.raises(TooLarge):
        parse_manifest(b" " * (media.MAX_METADATA_BYTES + 1))


def test_index_select_lists_platforms():
    d = "sha256:" + "a" * 64
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media.OCI_MANIFEST,
                    "digest": d,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": media.OCI_MANIFEST,
                    "digest": d,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
                },
            ],
        }
    ).encode()
    idx = parse_manifest(raw)
    assert isinstance(idx, Index)
    assert idx.select(Platform.parse("linux/arm/v7")).platform == Platform("linux", "arm", "v7")
    with pytest.raises(PlatformNotFound) as e:
        idx.select(Platform.parse("linux/s390x"))
    assert "linux/amd64" in str(e.value) and "linux/arm/v7" in str(e.value)


def test_manifest_keeps_raw_bytes():
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.DOCKER_MANIFEST,
            "config": {"mediaType": media.DOCKER_CONFIG, "digest": "sha256:" + "b" * 64, "size": 3},
            "layers": [],
        },
        indent=3,
    ).encode()
    m = parse_manifest(raw)
    assert isinstance(m, Manifest) and m.raw == raw and m.digest == Digest.of(raw)


def test_record_fields_equality_order_repr_and_replace() -> None:
    from imagewise.record import Record

    class Point(Record):
        __slots__ = ("x", "y", "note")  # noqa: RUF023 - in field order
        _uncompared = ("note",)
        _unshown = ("note",)

        def __init__(self, x: int, y: int = 0, note: str = "") -> None:
            if x < 0:
                raise ValueError("x")
            self.x, self.y, self.note = x, y, note

    class Point3(Point):
        __slots__ = ("z",)

        def __init__(self, x: int, y: int = 0, note: str = "", z: int = 0) -> None:
            super().__init__(x, y, note)
            self.z = z

    a, b = Point(1, 2, "a"), Point(1, 2, "b")
    assert a == b and hash(a) == hash(b) and (a != b) is False  # note is not compared
    assert Point(1, 3) != a and Point(1, 1) < a and max([Point(2), Point(1)]).x == 2
    assert a != (1, 2) and Point3(1, 2) != Point(1, 2)  # other classes never equal
    assert repr(a) == "Point(x=1, y=2)"
    assert (
        Point3._fields == ("x", "y", "note", "z")
        and repr(Point3(1, z=5)) == "Point3(x=1, y=0, z=5)"
    )
    c = a.replace(y=9)
    assert (c.x, c.y, c.note, a.y) == (1, 9, "a", 2)
    with pytest.raises(ValueError):
        a.replace(x=-1)  # through __init__: validated again
    assert {a: 1}[Point(1, 2)] == 1


def test_documents_are_hashed_like_blobs_without_hashlib():
    import hashlib

    from imagewise.oci.digest import SMALL, _builtin, new_hash

    for algorithm in ("sha256", "sha512"):
        for data in (b"", b"{}", bytes(range(256)) * 300):
            want = hashlib.new(algorithm, data).hexdigest()
            builtin = _builtin(algorithm)
            assert builtin is not None  # CPython's own SHA-2 is there
            assert builtin(data).hexdigest() == want and builtin(data).name == algorithm
            for small in (False, True):
                h = new_hash(algorithm, data, small=small)
                assert h.hexdigest() == want and h.name == algorithm
            assert Digest.of(data, algorithm) == Digest(algorithm, want)
    big = b"x" * (SMALL + 1)
    assert Digest.of(big).hex == hashlib.sha256(big).hexdigest()
