"""The offline vulnerability database: OSV records imported into SQLite, indexed for matching.

``db import`` reads OSV JSON/YAML files, directories of them and osv.dev ``all.zip`` exports.
Re-import is incremental: a record is rewritten only when its ``modified`` time is newer. Nothing
here touches the network.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from imagewise.errors import VulnDBError
from imagewise.progress import NULL, Reporter
from imagewise.record import Record as RecordBase
from imagewise.vulns.osv import Affected, Record, normalize_time, parse_record
from imagewise.vulns.severity import Rating

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vulns (
  id TEXT PRIMARY KEY, modified TEXT NOT NULL, published TEXT, withdrawn TEXT,
  aliases TEXT NOT NULL, summary TEXT, rating TEXT, source TEXT
);
CREATE TABLE IF NOT EXISTS affected (
  vuln_id TEXT NOT NULL, ecosystem TEXT NOT NULL, release TEXT NOT NULL, name TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_pkg ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_vuln ON affected (vuln_id);
CREATE TABLE IF NOT EXISTS sources (
  path TEXT PRIMARY KEY, imported_at TEXT NOT NULL, records INTEGER NOT NULL
);
"""
#: what 'db update' fetched per ecosystem (validators for conditional requests), and when
_FEEDS = """
CREATE TABLE IF NOT EXISTS feeds (
  ecosystem TEXT PRIMARY KEY, url TEXT NOT NULL, etag TEXT NOT NULL, last_modified TEXT NOT NULL,
  checked_at TEXT NOT NULL, updated_at TEXT NOT NULL, records INTEGER NOT NULL
)
"""


def default_path() -> Path:
    """``$IMAGEWISE_DB`` or ``<user cache dir>/imagewise/osv.sqlite``."""
    env = os.environ.get("IMAGEWISE_DB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagewise")) / "osv.sqlite"


def _utc(ts: str) -> str:
    """An OSV timestamp normalised to ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` so strings order by time;
    "" when it is not one (older than every real time, so a valid record replaces it)."""
    try:
        return normalize_time(ts)
    except ValueError:
        return ""


#: a record document larger than this is skipped (the largest real OSV records are ~2 MiB)
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: a zip member expanding more than this many times its compressed size is skipped (a zip bomb);
#: real OSV JSON compresses 5 to 30 times
MAX_RATIO = 200
#: how long a writer waits for another writer to finish (seconds; IMAGEWISE_DB_LOCK_TIMEOUT)
LOCK_TIMEOUT = 600.0
#: how long a reader waits on a lock (only a checkpoint or a recovery holds one in WAL mode)
READ_TIMEOUT = 10.0


def lock_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("IMAGEWISE_DB_LOCK_TIMEOUT") or LOCK_TIMEOUT))
    except ValueError:
        return LOCK_TIMEOUT


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ImportStats(RecordBase):
    __slots__ = (  # noqa: RUF023 - in field order
        "added",
        "updated",
        "unchanged",
        "skipped",  # (where, reason)
    )

    def __init__(
        self,
        added: int = 0,
        updated: int = 0,
        unchanged: int = 0,
        skipped: list[tuple[str, str]] | None = None,
    ) -> None:
        self.added = added
        self.updated = updated
        self.unchanged = unchanged
        self.skipped = [] if skipped is None else skipped

    @property
    def seen(self) -> int:
        return self.added + self.updated + self.unchanged


class DBStatus(RecordBase):
    __slots__ = (  # noqa: RUF023 - in field order
        "path",
        "records",
        "withdrawn",
        "per_ecosystem",
        "sources",  # (path, imported_at, records)
        "newest_modified",
        "last_import",
    )

    def __init__(
        self,
        path: Path,
        records: int,
        withdrawn: int,
        per_ecosystem: dict[str, int],
        sources: list[tuple[str, str, int]],
        newest_modified: str,
        last_import: str,
    ) -> None:
        self.path = path
        self.records = records
        self.withdrawn = withdrawn
        self.per_ecosystem = per_ecosystem
        self.sources = sources
        self.newest_modified = newest_modified
        self.last_import = last_import

    def age_days(self, now: datetime | None = None) -> float | None:
        """Age of the data: time since the newest record was modified (None when empty)."""
        if not self.newest_modified:
            return None
        now = now or datetime.now(UTC)
        try:
            newest = datetime.fromisoformat(normalize_time(self.newest_modified))
        except ValueError:
            return None
        return (now - newest).total_seconds() / 86400

    def to_json(self) -> dict[str, Any]:
        age = self.age_days()
        return {
            "path": str(self.path),
            "records": self.records,
            "withdrawn": self.withdrawn,
            "ecosystems": self.per_ecosystem,
            "sources": [{"path": p, "imported_at": t, "records": n} for p, t, n in self.sources],
            "newest_modified": self.newest_modified,
            "last_import": self.last_import,
            "age_days": round(age, 2) if age is not None else None,
        }


class RecordInfo(RecordBase):
    __slots__ = (  # noqa: RUF023 - in field order
        "id",
        "aliases",
        "summary",
        "rating",
        "modified",
        "published",
    )

    def __init__(
        self,
        id: str,
        aliases: tuple[str, ...],
        summary: str,
        rating: Rating | None,
        modified: str,
        published: str,
    ) -> None:
        self.id = id
        self.aliases = aliases
        self.summary = summary
        self.rating = rating
        self.modified = modified
        self.published = published


_YAML_LOADER: Any = None


def _yaml_loader() -> Any:
    """A safe YAML loader that keeps numbers and dates as the strings they are written as, so an
    unquoted ``fixed: 1.10`` stays "1.10" (not the float 1.1) and timestamps stay text."""
    global _YAML_LOADER
    if _YAML_LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        keep = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
        resolvers = {
            first: [(tag, rx) for tag, rx in items if tag not in keep]
            for first, items in base.yaml_implicit_resolvers.items()
        }
        _YAML_LOADER = type("OSVLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    return _YAML_LOADER


def _load_text(name: str, data: bytes) -> Iterator[dict[str, Any]]:
    if name.lower().endswith((".yaml", ".yml")):
        import yaml

        doc = yaml.load(data, Loader=_yaml_loader())
    else:
        doc = json.loads(data)
    if isinstance(doc, list):
        yield from doc
    else:
        yield doc


_RECORD_EXT = (".json", ".yaml", ".yml")
_YAML_ID = re.compile(rb"^id:[ \t]*['\"]?([^'\"\s]+)", re.MULTILINE)
_YAML_MOD = re.compile(rb"^modified:[ \t]*['\"]?([^'\"\s]+)", re.MULTILINE)
_JSON_ID = re.compile(rb'"id"\s*:\s*"([^"]+)"')
_JSON_MOD = re.compile(rb'"modified"\s*:\s*"([^"]+)"')


def _quick_id_modified(name: str, data: bytes) -> tuple[str, str] | None:
    """(id, modified) of a single-record document read without parsing it, when unambiguous:
    top-level keys sit at column 0 in YAML; in JSON each key must occur exactly once."""
    yaml_doc = name.lower().endswith((".yaml", ".yml"))
    rid, rmod = (_YAML_ID, _YAML_MOD) if yaml_doc else (_JSON_ID, _JSON_MOD)
    if not yaml_doc and data.lstrip()[:1] != b"{":
        return None
    ids, mods = rid.findall(data), rmod.findall(data)
    if len(ids) != 1 or len(mods) != 1:
        return None
    return ids[0].decode("utf-8", "replace"), mods[0].decode("utf-8", "replace")


#: (where, document bytes, "") or (where, b"", why it is skipped)
Document = tuple[str, bytes, str]


def _zip_damaged(path: Path, member: str, e: BaseException) -> VulnDBError:
    if isinstance(e, EOFError):
        why = "it ends in the middle of the member"
    elif isinstance(e, zipfile.BadZipFile):
        why = str(e).split(" for file")[0].lower() or "bad data"
    elif isinstance(e, RuntimeError | NotImplementedError):
        why = str(e).lower() or "unsupported member"
    else:  # zlib.error and friends
        why = "its compressed data is corrupt"
    return VulnDBError(
        f"{path}: the zip archive is damaged at {member} ({why}); nothing imported from it"
    )


def _read_member(
    z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limit: int, ratio: int
) -> tuple[bytes, str]:
    """A member's bytes, read as a stream that stops at ``limit`` bytes or at ``ratio`` times
    the compressed size (declared sizes can lie); (b"", why) when it is skipped."""
    import zlib

    from imagewise.units import format_size

    if info.file_size > limit:
        return b"", (
            f"expands to {format_size(info.file_size)}; a record is at most {format_size(limit)}"
        )
    allowed = max(ratio * max(info.compress_size, 1), 1024 * 1024)
    chunks: list[bytes] = []
    total = 0
    try:
        with z.open(info) as f:
            while True:
                chunk = f.read(1024 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    return b"", (
                        f"expands to more than {format_size(limit)}; a record is at "
                        f"most {format_size(limit)}"
                    )
                if total > allowed:
                    return b"", (
                        f"expands more than {ratio} times its compressed size "
                        f"({info.compress_size} bytes): not an OSV record"
                    )
                chunks.append(chunk)
    except (
        zlib.error,
        zipfile.BadZipFile,
        EOFError,
        RuntimeError,
        NotImplementedError,
        OSError,
    ) as e:
        raise _zip_damaged(path, info.filename, e) from e
    return b"".join(chunks), ""


def iter_documents(
    path: Path, limit: int = MAX_RECORD_BYTES, ratio: int = MAX_RATIO
) -> Iterator[Document]:
    """Every OSV document under ``path`` (file, directory or ``.zip``), streamed: a document
    over ``limit`` bytes, or a zip member expanding over ``ratio`` times, is skipped."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and (p.suffix.lower() in _RECORD_EXT or p.suffix.lower() == ".zip"):
                yield from iter_documents(p, limit, ratio)
        return
    if not path.exists():
        raise VulnDBError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            z = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise VulnDBError(f"{path}: not a valid zip archive: {e}") from e
        with z:
            for info in z.infolist():
                if not info.is_dir() and info.filename.lower().endswith(_RECORD_EXT):
                    data, why = _read_member(z, info, path, limit, ratio)
                    yield f"{path}!{info.filename}", data, why
        return
    size = path.stat().st_size
    if size > limit:
        from imagewise.units import format_size

        yield str(path), b"", (f"{format_size(size)}; a record is at most {format_size(limit)}")
        return
    yield str(path), path.read_bytes(), ""


def _sqlite_message(path: Path, e: sqlite3.Error, writing: bool) -> str:
    """What really happened, in words, for a SQLite error on ``path``."""
    text = str(e)
    if "locked" in text or "busy" in text:
        if writing:
            return (
                f"{path}: another process is writing to this vulnerability database; gave "
                f"up after waiting {lock_timeout():g} s (IMAGEWISE_DB_LOCK_TIMEOUT)"
            )
        return (
            f"{path}: the vulnerability database stayed locked by another process for "
            f"{READ_TIMEOUT:g} s; try again"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        if writing:
            return (
                f"{path}: cannot write to the vulnerability database (read-only file or directory)"
            )
        if Path(f"{path}-journal").exists() or Path(f"{path}-wal").exists():
            return (
                f"{path}: an import into this database was interrupted and left it to be "
                "recovered, which a reader cannot do; run 'imagewise db import' or "
                "'imagewise db update' once to recover it"
            )
        return f"{path}: cannot open the vulnerability database for reading ({text})"
    if "disk is full" in text or "disk I/O" in text:
        return f"{path}: {text}"
    if "malformed" in text or "not a database" in text or "encrypted" in text:
        return f"{path}: not a vulnerability database (the file is damaged: {text})"
    return f"{path}: vulnerability database error: {text}"


class VulnDB:
    """An OSV database in one SQLite file (WAL mode). Use as a context manager or call
    ``close()``. Readers open it read-only and never write; a writer waits for another writer
    (``IMAGEWISE_DB_LOCK_TIMEOUT`` seconds) and writes each import in one transaction, so a
    reader sees the data before the import or after it, never half of it."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        """Open for reading (scans never write), or with ``create`` for importing."""
        self.path = Path(path)
        self.writable = create
        if not create and not self.path.is_file():
            raise VulnDBError(
                f"no vulnerability database at {self.path}; run 'imagewise db update' or import "
                f"OSV data with 'imagewise db import PATH' (or point --db / IMAGEWISE_DB at one)"
            )
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VulnDBError(
                    f"{self.path.parent}: cannot create the directory: {e.strerror or e}"
                ) from e
        self.conn: sqlite3.Connection | None = None
        try:
            if create:
                self.conn = sqlite3.connect(
                    str(self.path),
                    timeout=lock_timeout(),
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._prepare()
            else:
                self._open_reader()
        except sqlite3.Error as e:
            self.close()
            raise VulnDBError(_sqlite_message(self.path, e, create)) from e
        except VulnDBError:
            self.close()
            raise

    def _open_reader(self) -> None:
        """Read-only. A WAL database in a place the reader cannot write (a read-only mount,
        another user's directory) cannot get its shared-memory file: when no write-ahead log
        is there either (no writer, nothing pending), the main file holds every committed page
        and is read as immutable."""
        uri = self.path.resolve().as_uri()
        self.conn = sqlite3.connect(
            f"{uri}?mode=ro",
            uri=True,
            timeout=READ_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            found = self._schema()
        except sqlite3.OperationalError as e:
            text = str(e)
            if (
                not ("unable to open" in text or "readonly" in text)
                or Path(f"{self.path}-wal").exists()
                or Path(f"{self.path}-journal").exists()
            ):
                raise
            self.conn.close()
            self.conn = sqlite3.connect(
                f"{uri}?mode=ro&immutable=1",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            found = self._schema()
        self._check_schema(found)

    def _schema(self) -> str | None:
        assert self.conn is not None
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            raise
        return row[0] if row else None

    def _check_schema(self, found: str | None) -> None:
        if found is None:
            raise VulnDBError(f"{self.path}: not a vulnerability database (no schema)")
        if found != SCHEMA_VERSION:
            raise VulnDBError(
                f"{self.path}: database schema {found}, expected "
                f"{SCHEMA_VERSION}; re-import into a new file"
            )

    def _prepare(self) -> None:
        """A writer's connection: WAL mode (readers never wait for it), the schema present."""
        c = self.conn
        assert c is not None
        if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        found = self._schema()
        if found is None:
            with self.transaction():
                if self._schema() is None:  # another writer may have just made it
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            found = self._schema()
        self._check_schema(found)
        if not c.execute("SELECT 1 FROM sqlite_master WHERE name='feeds'").fetchone():
            with self.transaction():
                c.execute(_FEEDS)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, begun at once (waiting for another writer up to the lock
        timeout), committed at the end or rolled back on any error."""
        c = self.conn
        assert c is not None
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise VulnDBError(_sqlite_message(self.path, e, True)) from e
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        try:
            c.execute("COMMIT")
        except sqlite3.Error as e:
            c.execute("ROLLBACK")
            raise VulnDBError(_sqlite_message(self.path, e, True)) from e

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        assert self.conn is not None
        try:
            yield self.conn
        except sqlite3.Error as e:
            raise VulnDBError(_sqlite_message(self.path, e, self.writable)) from e

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ import
    def import_paths(
        self,
        paths: Iterable[Path],
        reporter: Reporter = NULL,
        after: Callable[[sqlite3.Connection, ImportStats], None] | None = None,
        source: str | None = None,
    ) -> ImportStats:
        """Import every OSV document under ``paths`` in one transaction (all or nothing).
        ``after`` runs inside the transaction when every path is read (``db update`` records
        its feed state there, so state and data change together); ``source`` names the input
        in ``db status`` instead of its path (a download's URL)."""
        stats = ImportStats()
        now = _now()
        with self.transaction() as c:
            known = {vid: _utc(mod) for vid, mod in c.execute("SELECT id, modified FROM vulns")}
            for path in paths:
                before = stats.seen
                reporter.start(str(path), f"importing {path}")
                for where, data, why in iter_documents(Path(path)):
                    if why:
                        stats.skipped.append((where, why))
                    else:
                        self._import_document(where, data, known, stats)
                    reporter.advance(str(path), 1)
                reporter.done(str(path))
                c.execute(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)",
                    (source or str(Path(path).resolve()), now, stats.seen - before),
                )
            c.execute("INSERT OR REPLACE INTO meta VALUES ('last_import', ?)", (now,))
            if after is not None:
                after(c, stats)
        return stats

    def _import_document(
        self, where: str, data: bytes, known: dict[str, str], stats: ImportStats
    ) -> None:
        quick = _quick_id_modified(where, data)
        if (
            quick is not None
            and quick[0] in known
            and known[quick[0]]
            and known[quick[0]] >= _utc(quick[1])
        ):
            stats.unchanged += 1  # unchanged record: not even parsed
            return
        try:
            docs = list(_load_text(where, data))
        except Exception as e:  # noqa: BLE001 - YAML/JSON parsers raise many types; report, go on
            first = str(e).splitlines()[0][:120] if str(e).strip() else type(e).__name__
            stats.skipped.append((where, f"cannot parse: {first}"))
            return
        for doc in docs:
            try:
                rec = parse_record(doc)
            except ValueError as e:
                stats.skipped.append((where, str(e)))
                continue
            old = known.get(rec.id)
            if old is not None and old >= rec.modified:
                stats.unchanged += 1
                continue
            self._write(rec, where)
            known[rec.id] = rec.modified
            if old is None:
                stats.added += 1
            else:
                stats.updated += 1

    def _write(self, rec: Record, where: str) -> None:
        c = self.conn
        assert c is not None
        c.execute("DELETE FROM affected WHERE vuln_id=?", (rec.id,))
        c.execute(
            "INSERT OR REPLACE INTO vulns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                rec.modified,
                rec.published,
                rec.withdrawn,
                json.dumps(list(rec.aliases)),
                rec.summary,
                json.dumps(rec.rating.to_json()) if rec.rating else None,
                where,
            ),
        )
        if rec.withdrawn:
            return
        c.executemany(
            "INSERT INTO affected VALUES (?, ?, ?, ?, ?)",
            [
                (
                    rec.id,
                    a.ecosystem,
                    a.release,
                    a.name,
                    json.dumps(a.to_json(), separators=(",", ":")),
                )
                for a in rec.affected
            ],
        )

    # ------------------------------------------------------------------------------ status
    def status(self) -> DBStatus:
        with self._reading() as c:
            records = c.execute("SELECT count(*) FROM vulns").fetchone()[0]
            withdrawn = c.execute("SELECT count(*) FROM vulns WHERE withdrawn != ''").fetchone()[0]
            per: dict[str, int] = {}
            for eco, n in c.execute(
                "SELECT ecosystem, count(DISTINCT vuln_id) FROM affected "
                "GROUP BY ecosystem ORDER BY ecosystem"
            ):
                per[str(eco)] = n
            sources: list[tuple[str, str, int]] = [
                (r[0], r[1], r[2])
                for r in c.execute(
                    "SELECT path, imported_at, records FROM sources ORDER BY imported_at DESC, path"
                )
            ]
            newest = ""
            # a value a version before validation stored may not be a time: take the newest that is
            for (mod,) in c.execute("SELECT modified FROM vulns ORDER BY modified DESC"):
                newest = _utc(str(mod))
                if newest:
                    break
            row = c.execute("SELECT value FROM meta WHERE key='last_import'").fetchone()
        return DBStatus(self.path, records, withdrawn, per, sources, newest, row[0] if row else "")

    def feeds(self) -> dict[str, dict[str, Any]]:
        """What ``db update`` fetched per ecosystem: url, etag, last_modified, checked_at,
        updated_at, records ({} for a database only ever imported by hand)."""
        with self._reading() as c:
            if not c.execute("SELECT 1 FROM sqlite_master WHERE name='feeds'").fetchone():
                return {}
            cols = ("url", "etag", "last_modified", "checked_at", "updated_at", "records")
            return {
                row[0]: dict(zip(cols, row[1:], strict=True))
                for row in c.execute(
                    "SELECT ecosystem, url, etag, last_modified, checked_at, updated_at, records "
                    "FROM feeds ORDER BY ecosystem"
                )
            }

    # ------------------------------------------------------------------------------ lookup
    def lookup(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[tuple[str, Affected]]]:
        """Affected entries for each (base ecosystem, normalised name): [(vuln id, entry)]."""
        by_eco: dict[str, set[str]] = {}
        for eco, name in keys:
            by_eco.setdefault(eco, set()).add(name)
        out: dict[tuple[str, str], list[tuple[str, Affected]]] = {}
        for eco, names in by_eco.items():
            ordered = sorted(names)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                q = (
                    "SELECT vuln_id, release, name, data FROM affected WHERE ecosystem=? AND name IN "
                    f"({','.join('?' * len(chunk))})"
                )
                with self._reading() as c:
                    rows = c.execute(q, (eco, *chunk)).fetchall()
                for vid, release, name, data in rows:
                    try:
                        entry = Affected.from_json(eco, release, name, json.loads(data))
                    except (ValueError, TypeError, KeyError, AttributeError):
                        continue  # a damaged row: it cannot match anything
                    out.setdefault((eco, name), []).append((vid, entry))
        return out

    def records(self, ids: Iterable[str]) -> dict[str, RecordInfo]:
        wanted = sorted(set(ids))
        out: dict[str, RecordInfo] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            q = (
                "SELECT id, aliases, summary, rating, modified, published FROM vulns WHERE id IN "
                f"({','.join('?' * len(chunk))})"
            )
            with self._reading() as c:
                rows = c.execute(q, chunk).fetchall()
            for vid, aliases, summary, rating, modified, published in rows:
                try:
                    out[vid] = RecordInfo(
                        vid,
                        tuple(map(str, json.loads(aliases))),
                        str(summary or ""),
                        Rating.from_json(json.loads(rating)) if rating else None,
                        modified,
                        published or "",
                    )
                except (ValueError, TypeError, KeyError, AttributeError):
                    out[vid] = RecordInfo(vid, (), "", None, str(modified), "")
        return out
