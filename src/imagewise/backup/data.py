"""Data backups (``backup run --data PATH``): files cut into content-defined chunks.

Each regular file is cut with FastCDC (the ``fastcdc`` package; chunks of 256 KiB to 4 MiB,
about 1 MiB on average) and every chunk stored as a blob, so a file changed in one place
re-sends only the chunks around the change, and identical chunks of different files or
snapshots are stored once. The snapshot records per file its mode, size, mtime and chunk list;
symbolic links are recorded with their target. A file whose size and mtime equal the previous
snapshot's is taken over without being read (as restic does). ``restore --files-to DIR``
writes the files back (each written whole or not at all) and checks every chunk's digest.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

from imagewise.backup.store import Store
from imagewise.errors import UsageError

MIN, AVG, MAX = 256 << 10, 1 << 20, 4 << 20


def backup_tree(
    store: Store, root: Path, parent: dict[str, Any] | None, stats: dict[str, int]
) -> dict[str, Any]:
    """The record of ``root`` (a file or a directory) with its chunks stored."""
    try:
        from fastcdc import fastcdc
    except ImportError:
        raise UsageError(
            "backup run --data needs fastcdc: pip install 'imagewise[backup]'"
        ) from None

    if not root.exists():
        raise UsageError(f"--data {root}: no such file or directory")
    previous = (parent or {}).get("files", {})
    files: dict[str, Any] = {}
    paths = [root] if not root.is_dir() else sorted(root.rglob("*"))
    for p in paths:
        rel = p.name if p == root else p.relative_to(root).as_posix()
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            files[rel] = {"type": "symlink", "target": os.readlink(p), "mode": st.st_mode & 0o7777}
            continue
        if stat.S_ISDIR(st.st_mode):
            files[rel] = {"type": "dir", "mode": st.st_mode & 0o7777}
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        entry = {
            "type": "file",
            "mode": st.st_mode & 0o7777,
            "size": st.st_size,
            "mtime": st.st_mtime_ns,
        }
        was = previous.get(rel)
        if (
            was
            and was.get("size") == st.st_size
            and was.get("mtime") == st.st_mtime_ns
            and all(store.has_blob(c) for c in was.get("chunks", []))
        ):
            entry["chunks"] = was["chunks"]
            stats["files_unchanged"] += 1
        else:
            chunks = []
            if st.st_size:
                for c in fastcdc(
                    str(p), min_size=MIN, avg_size=AVG, max_size=MAX, fat=True, hf=hashlib.sha256
                ):
                    digest = "sha256:" + c.hash
                    n = store.put_blob(digest, io.BytesIO(c.data), c.length)
                    stats["data_added_bytes"] += n
                    stats["data_chunks_added"] += 1 if n else 0
                    chunks.append(digest)
            entry["chunks"] = chunks
            stats["files_read"] += 1
        files[rel] = entry
    return {"root": str(root.resolve()), "kind": "dir" if root.is_dir() else "file", "files": files}


def restore_tree(store: Store, record: dict[str, Any], dest: Path) -> int:
    """Write a data record under ``dest`` (as ``dest/<its root's name>``); returns the number
    of files written. Every chunk is digest-checked as it is read from the store."""
    from imagewise.fileio import write_file

    name = Path(record["root"]).name or "root"
    base = dest / name if record.get("kind") == "dir" else dest
    written = 0
    files = record["files"]
    for rel in sorted(files, key=lambda r: (r.count("/"), r)):
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise UsageError(f"snapshot data path {rel!r} leaves the restore directory")
        entry = files[rel]
        target = base / rel
        if entry["type"] == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry["type"] == "symlink":
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(entry["target"], target)
            continue
        parts = []
        for c in entry["chunks"]:
            data = store.read_blob(c)
            if "sha256:" + hashlib.sha256(data).hexdigest() != c:
                raise UsageError(f"{rel}: chunk {c} is damaged in the store")
            parts.append(data)
        data = b"".join(parts)
        if len(data) != entry["size"]:
            raise UsageError(f"{rel}: {len(data)} bytes restored, {entry['size']} recorded")
        write_file(str(target), data)
        os.chmod(target, entry["mode"])
        written += 1
    return written
