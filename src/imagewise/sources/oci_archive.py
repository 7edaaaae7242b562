"""OCI archives (``oci-archive:FILE[:TAG]``): an OCI layout packed in a tar file.

Reading indexes the tar's headers and streams blobs straight from their offsets in the archive
(no extraction; a gzip-compressed archive is the exception and is unpacked to a temporary
directory). Writing builds a layout in a temporary directory next to FILE and packs it into
FILE on commit, so a failed copy never leaves a half-written archive behind; the staging
directory of a killed copy is removed by the next copy into the same directory.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
import tempfile
from contextlib import suppress

from imagewise.errors import ImageFormatError
from imagewise.fileio import TMP_PREFIX, atomic_write
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


STAGING = ".imagewise-"  # staging directories are named .imagewise-<transport>-<random>


def staging_dir(path: str, transport: str) -> tuple[str, int]:
    """A new temporary directory beside the archive ``path`` will become (same filesystem, so
    packing ends in a rename), after checking ``path`` can be a file there; with a descriptor
    holding an exclusive lock on it for as long as the sink lives (``release_staging``).

    Staging directories a killed copy left beside it (their lock died with their process) are
    removed first. A new one is made under another name and renamed once locked, so a
    concurrent copy never sees it unlocked."""
    if os.path.isdir(path):
        article = "an" if transport[0] in "aeiou" else "a"
        raise ImageFormatError(
            f"{path} is a directory; {article} {transport} destination is a file"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ImageFormatError(f"{parent}: no such directory")
    _remove_stale_staging(parent)
    new = tempfile.mkdtemp(prefix=f"{STAGING}new-", dir=parent)
    fd = os.open(new, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    final = os.path.join(
        parent, os.path.basename(new).replace(f"{STAGING}new-", f"{STAGING}{transport}-", 1)
    )
    os.rename(new, final)
    return final, fd


def release_staging(tmp: str, fd: int) -> None:
    """Remove a staging directory and drop its lock."""
    shutil.rmtree(tmp, ignore_errors=True)
    with suppress(OSError):
        os.close(fd)


def _remove_stale_staging(parent: str) -> None:
    prefixes = tuple(f"{STAGING}{t}-" for t in ("oci-archive", "docker-archive"))
    for name in os.listdir(parent):
        if not name.startswith(prefixes):
            continue
        full = os.path.join(parent, name)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # a live copy's
        else:
            shutil.rmtree(full, ignore_errors=True)
        finally:
            os.close(fd)


def pack_layout(
    layout_dir: str, dest: str, first: tuple[str, ...] = (LAYOUT_FILE, "index.json")
) -> None:
    """Write ``layout_dir`` as an uncompressed tar at ``dest`` (atomically, via a temp file).

    The ``first`` files (``oci-layout`` and ``index.json``) come first so readers that stream the archive find them
    early; entries carry fixed metadata so the archive bytes depend only on the content.
    """
    # the temporary archive is made inside the staging directory: a killed copy leaves it there
    with (
        atomic_write(dest, tmp_dir=layout_dir) as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):

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
                if rel in first or f.startswith(TMP_PREFIX):
                    continue
                add(rel)


class OCIArchiveSink(OCILayoutSink):
    """Builds the layout in a temporary directory; ``commit`` packs it into the archive file."""

    def __init__(self, path: str, tag: str | None = None) -> None:
        self._archive = path
        self._tmp, self._staging_lock = staging_dir(path, "oci-archive")
        try:
            super().__init__(self._tmp, tag, shared=False)
        except BaseException:
            release_staging(self._tmp, self._staging_lock)
            raise
        self.name = f"oci-archive:{path}" + (f":{tag}" if tag else "")

    def commit(self) -> None:
        super().commit()
        pack_layout(self._tmp, self._archive)

    def close(self) -> None:
        release_staging(self._tmp, self._staging_lock)
