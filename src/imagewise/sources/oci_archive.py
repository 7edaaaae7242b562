"""OCI archives (``oci-archive:FILE[:TAG]``): an OCI layout packed in a tar file.

Reading indexes the tar's headers and streams blobs straight from their offsets in the archive
(no extraction; a gzip-compressed archive is the exception and is unpacked to a temporary
directory). Writing builds a layout in a temporary directory next to FILE and packs it into
FILE on commit, so a failed copy never leaves a half-written archive behind.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile

from imagewise.errors import ImageFormatError
from imagewise.sources.blobio import open_archive
from imagewise.sources.oci_layout import LAYOUT_FILE, OCILayoutSink, OCIStoreSource


class OCIArchiveSource(OCIStoreSource):
    def __init__(self, path: str, tag: str | None = None, index: int | None = None) -> None:
        view = open_archive(path)
        try:
            super().__init__(view, path, tag, index)
        except BaseException:
            view.close()
            raise
        self.name = f"oci-archive:{path}" + (f":{tag}" if tag else "")


def pack_layout(layout_dir: str, dest: str,
                first: tuple[str, ...] = (LAYOUT_FILE, "index.json")) -> None:
    """Write ``layout_dir`` as an uncompressed tar at ``dest`` (atomically, via a temp file).

    The ``first`` files (``oci-layout`` and ``index.json``) come first so readers that stream the archive find them
    early; entries carry fixed metadata so the archive bytes depend only on the content.
    """
    parent = os.path.dirname(os.path.abspath(dest)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-archive-", dir=parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            def add(rel: str) -> None:
                full = os.path.join(layout_dir, rel)
                ti = tf.gettarinfo(full, arcname=rel)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 0
                if ti.isfile():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)

            for rel in first:
                add(rel)
            for d, dirs, files in os.walk(layout_dir):
                dirs.sort()
                rel_d = os.path.relpath(d, layout_dir)
                if rel_d != ".":
                    add(rel_d)
                for f in sorted(files):
                    rel = f if rel_d == "." else f"{rel_d}/{f}"
                    if rel in first or f.startswith(".tmp-"):
                        continue
                    add(rel)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class OCIArchiveSink(OCILayoutSink):
    """Builds the layout in a temporary directory; ``commit`` packs it into the archive file."""

    def __init__(self, path: str, tag: str | None = None) -> None:
        if os.path.isdir(path):
            raise ImageFormatError(f"{path} is a directory; an oci-archive destination is a file")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ImageFormatError(f"{parent}: no such directory")
        self._archive = path
        self._tmp = tempfile.mkdtemp(prefix=".imagewise-oci-", dir=parent)
        super().__init__(self._tmp, tag)
        self.name = f"oci-archive:{path}" + (f":{tag}" if tag else "")

    def commit(self) -> None:
        super().commit()
        pack_layout(self._tmp, self._archive)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
