"""Safe extraction of layers to a directory: nothing is ever written outside the destination.

Rules (the destination ``dest`` is the image root):

* entry paths are normalised by the walk: absolute names become root-relative, and a name whose
  ``..`` leaves the root is unsafe;
* symlinks are created verbatim (they are data) but are only *followed* when a later entry's
  parent path goes through them, and then resolved inside ``dest`` the way the container would
  see them: an absolute target is relative to ``dest``; a relative target that climbs above
  ``dest`` is unsafe. The final component of an entry is never followed: a file written where a
  symlink is replaces the symlink;
* every directory on the way is opened component by component with ``O_NOFOLLOW`` relative to
  the previous one (``dir_fd``), so a symlink swapped in underneath cannot redirect a write;
* hard links must point at an existing non-directory inside ``dest``;
* device nodes are never created (recorded as skipped); FIFOs are; owners are applied only with
  ``same_owner=True`` when running as root; set-id bits only then too; directories keep ``u+rwx``
  so the extraction can continue;
* whiteouts delete, opaque whiteouts empty the directory of what lower layers put there.

An unsafe entry raises :class:`~imagewise.errors.UnsafePath` (``on_unsafe="raise"``, default) or
is skipped and listed in ``ExtractResult.skipped`` (``on_unsafe="skip"``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from imagewise.archive.walk import normalize
from imagewise.errors import UnsafePath
from imagewise.layers.model import Entry, Kind

if TYPE_CHECKING:
    from imagewise.sources.base import Image

_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ExtractResult:
    files: int = 0
    dirs: int = 0
    links: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


class _Dest:
    def __init__(
        self,
        dest: Path,
        same_owner: bool,
        result: ExtractResult,
        on_unsafe: Literal["raise", "skip"],
    ) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.root = os.open(dest, _DIR_FLAGS)
        self.same_owner = same_owner and os.geteuid() == 0
        self.result = result
        self.on_unsafe = on_unsafe
        self.layer_paths: set[str] = set()

    def close(self) -> None:
        os.close(self.root)

    # -- path resolution -----------------------------------------------------------------------
    def resolve(self, parts: list[str], what: str) -> list[str]:
        """Real components inside the root for ``parts``, following symlinks as the image would."""
        done: list[str] = []
        todo = list(reversed(parts))
        links = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise UnsafePath(f"{what}: a symlink on its path leads outside the root")
                done.pop()
                continue
            rel = "/".join(done + [part])
            try:
                st = os.stat(rel, dir_fd=self.root, follow_symlinks=False)
            except FileNotFoundError:
                done.append(part)
                continue
            if not stat.S_ISLNK(st.st_mode):
                done.append(part)
                continue
            links += 1
            if links > _MAX_LINKS:
                raise UnsafePath(f"{what}: too many levels of symbolic links")
            target = os.readlink(rel, dir_fd=self.root)
            if target.startswith("/"):
                done = []
            todo.extend(reversed(target.split("/")))
        return done

    def open_dir(self, parts: list[str], create: bool = True) -> int:
        """An fd of the directory ``parts`` (already resolved), created as needed, no symlinks."""
        fd = os.dup(self.root)
        try:
            for part in parts:
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    if not create:
                        raise
                    self._clear(fd, part)
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno == errno.ELOOP:  # swapped for a symlink after we resolved it
                        raise UnsafePath(f"{part}: changed to a symlink during extraction") from e
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def parent(self, path: str) -> tuple[int, str]:
        parent, _, name = path.rpartition("/")
        parts = self.resolve(parent.split("/"), path) if parent else []
        return self.open_dir(parts), name

    @staticmethod
    def _clear(dfd: int, name: str) -> bool:
        """Remove whatever is at ``name`` (a directory recursively); False if nothing was."""
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)
        return True

    # -- entries -------------------------------------------------------------------------------
    def apply(self, e: Entry) -> None:
        path = normalize(e.path)
        if path is None:
            raise UnsafePath(f"{e.raw_name or e.path}: leaves the destination")
        if e.kind is Kind.OPAQUE:
            return self._opaque(path)
        if not path:
            return  # the root itself
        dfd, name = self.parent(path)
        try:
            if e.kind is Kind.WHITEOUT:
                if self._clear(dfd, name):
                    self.result.removed += 1
                return
            self.layer_paths.add(path)
            self._create(e, dfd, name, path)
        finally:
            os.close(dfd)

    def _create(self, e: Entry, dfd: int, name: str, path: str) -> None:
        kind = e.kind
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        # owners go first: changing the owner clears set-id bits, so modes are set after it
        if kind is Kind.DIR:
            if st is None or not stat.S_ISDIR(st.st_mode):
                if st is not None:
                    os.unlink(name, dir_fd=dfd)
                os.mkdir(name, 0o700, dir_fd=dfd)
            self._owner(e, dfd, name)
            _chmod(dfd, name, self._mode(e) | 0o700)
            self.result.dirs += 1
            return
        if st is not None:
            self._clear(dfd, name)
        if kind is Kind.FILE:
            self._file(e, dfd, name)
        elif kind is Kind.SYMLINK:
            os.symlink(e.linkname, name, dir_fd=dfd)
            self._owner(e, dfd, name)
            self.result.links += 1
        elif kind is Kind.HARDLINK:
            self._hardlink(e, dfd, name, path)  # shares the target's inode, owner and mode
        elif kind is Kind.FIFO:
            os.mkfifo(name, 0o600, dir_fd=dfd)
            self._owner(e, dfd, name)
            _chmod(dfd, name, self._mode(e))
            self.result.files += 1
        else:  # CHAR, BLOCK
            self.result.skipped.append((path, "device nodes are not created"))

    def _file(self, e: Entry, dfd: int, name: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=dfd)
        with os.fdopen(fd, "wb") as out:
            if e.size:
                src: IO[bytes] = e.open()
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            out.flush()
            if self.same_owner:
                os.fchown(out.fileno(), e.uid, e.gid)
            os.fchmod(out.fileno(), self._mode(e))
            if e.mtime:
                os.utime(out.fileno(), (e.mtime, e.mtime))
        self.result.files += 1

    def _hardlink(self, e: Entry, dfd: int, name: str, path: str) -> None:
        target = normalize(e.linkname)
        if not target:
            raise UnsafePath(f"{path}: hard link to {e.linkname!r} leaves the destination")
        tparent, _, tname = target.rpartition("/")
        tparts = self.resolve(tparent.split("/"), path) if tparent else []
        tfd = self.open_dir(tparts, create=False)
        try:
            st = os.stat(tname, dir_fd=tfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"{path}: hard link to a directory {e.linkname!r}")
            os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            self.result.skipped.append((path, f"hard link target {e.linkname!r} missing"))
            return
        finally:
            os.close(tfd)
        self.result.links += 1

    def _opaque(self, path: str) -> None:
        parts = self.resolve(path.split("/"), path) if path else []
        try:
            dfd = self.open_dir(parts, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            prefix = f"{path}/" if path else ""
            for name in os.listdir(dfd):
                if prefix + name not in self.layer_paths and self._clear(dfd, name):
                    self.result.removed += 1
        finally:
            os.close(dfd)

    def _mode(self, e: Entry) -> int:
        return e.mode & (0o7777 if self.same_owner else 0o777)

    def _owner(self, e: Entry, dfd: int, name: str) -> None:
        if self.same_owner:
            os.chown(name, e.uid, e.gid, dir_fd=dfd, follow_symlinks=False)


def _chmod(dfd: int, name: str, mode: int) -> None:
    """chmod without following a symlink where the platform can; the entry was just created."""
    try:
        os.chmod(name, mode, dir_fd=dfd, follow_symlinks=False)
    except (NotImplementedError, OSError) as e:
        if isinstance(e, OSError) and e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.chmod(name, mode, dir_fd=dfd)


def extract_entries(
    entries: Iterable[Entry],
    dest: Path | str,
    *,
    on_unsafe: Literal["raise", "skip"] = "raise",
    same_owner: bool = False,
    result: ExtractResult | None = None,
) -> ExtractResult:
    """Write walked entries of one layer under ``dest`` (see the module rules)."""
    result = result if result is not None else ExtractResult()
    d = _Dest(Path(dest), same_owner, result, on_unsafe)
    try:
        for e in entries:
            try:
                d.apply(e)
            except UnsafePath as err:
                if on_unsafe == "raise":
                    raise
                result.skipped.append((e.path, str(err)))
    finally:
        d.close()
    return result


def extract_layer(
    stream: IO[bytes],
    dest: Path | str,
    *,
    media_type: str = "",
    digest: str = "",
    on_unsafe: Literal["raise", "skip"] = "raise",
    same_owner: bool = False,
    result: ExtractResult | None = None,
) -> ExtractResult:
    """Decompress, walk and extract one layer blob onto ``dest`` (over what is already there)."""
    from imagewise.archive.walk import walk_layer

    result = result if result is not None else ExtractResult()

    def skipped(name: str, offset: int) -> None:
        result.skipped.append((name, f"leaves the destination (offset {offset})"))

    entries = walk_layer(stream, media_type, digest, None if on_unsafe == "raise" else skipped)
    return extract_entries(entries, dest, on_unsafe=on_unsafe, same_owner=same_owner, result=result)


def extract_image(
    image: Image,
    dest: Path | str,
    *,
    on_unsafe: Literal["raise", "skip"] = "raise",
    same_owner: bool = False,
) -> ExtractResult:
    """Extract every layer in order: the image's root filesystem under ``dest``."""
    result = ExtractResult()
    for layer in image.layers:
        with layer.open_compressed() as blob:
            extract_layer(
                blob,
                dest,
                media_type=layer.media_type,
                digest=str(layer.digest),
                on_unsafe=on_unsafe,
                same_owner=same_owner,
                result=result,
            )
    return result
