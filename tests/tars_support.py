"""Random tar streams for the walk tests (native, pure, batched): every header form the walk
reads, then corrupted; and a stream that hands them out in odd-sized chunks. No tests here."""

from __future__ import annotations

import io
import tarfile

from hypothesis import strategies as st


class Chunked(io.RawIOBase):
    """A stream giving odd-sized chunks, so headers straddle chunk boundaries."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read_chunk(self, hint: int | None = None) -> bytes:
        n = 700 + (self._pos // 7) % 900
        part = self._data[self._pos : self._pos + n]
        self._pos += len(part)
        return part


NAMES = st.one_of(
    st.sampled_from(
        [
            "etc/passwd",
            "./usr/bin/sh",
            "usr//lib/x",
            "/abs/path",
            "a/./b",
            "../escape",
            "x/../../y",
            ".hidden",
            "dir/.wh.gone",
            "dir/.wh..wh..opq",
            ".wh..wh.plnk/1",
            "v7dir/",
            "caf\u00e9/\u00fcber",
            "trailing//",
        ]
    ),
    st.text(alphabet="ab./\u00e9-", min_size=1, max_size=30),
    st.text(alphabet="abc/", min_size=101, max_size=240),  # prefix or GNU long name
)


@st.composite
def tars(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(0, 6))):
            name = draw(NAMES)
            kind = draw(
                st.sampled_from(
                    [
                        tarfile.REGTYPE,
                        tarfile.DIRTYPE,
                        tarfile.SYMTYPE,
                        tarfile.LNKTYPE,
                        tarfile.FIFOTYPE,
                    ]
                )
            )
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = draw(st.integers(0, 0o7777))
            info.uid = draw(st.sampled_from([0, 1000, 2**21 - 1, 2**21 + 5]))  # 8**7: base-256
            info.mtime = draw(st.sampled_from([0, 1_700_000_000, 8**11 + 3]))
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = draw(NAMES)
            body = b""
            if kind == tarfile.REGTYPE:
                body = draw(st.binary(max_size=1500))
                info.size = len(body)
            try:
                tar.addfile(info, io.BytesIO(body))
            except ValueError:  # not representable in this format
                continue
    data = bytearray(buf.getvalue())
    if draw(st.booleans()) and len(data) > 600:
        # rewrite a checksum field in another spelling, or corrupt random bytes
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.sampled_from([0, 0x20, ord("7"), ord("8"), 0x80, 0xFF, ord("/")]))
    return bytes(data)
