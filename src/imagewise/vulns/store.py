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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from imagewise.errors import VulnDBError
from imagewise.progress import NULL, Reporter
from imagewise.vulns.osv import Affected, Record, parse_record
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


def default_path() -> Path:
    """``$IMAGEWISE_DB`` or ``<user cache dir>/imagewise/osv.sqlite``."""
    env = os.environ.get("IMAGEWISE_DB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagewise")) / "osv.sqlite"


def _utc(ts: str) -> str:
    """An OSV timestamp normalised to ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` so strings order by time."""
    if not ts:
        return ""
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ImportStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)

    @property
    def seen(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass(frozen=True)
class DBStatus:
    path: Path
    records: int
    withdrawn: int
    per_ecosystem: dict[str, int]
    sources: list[tuple[str, str, int]]  # (path, imported_at, records)
    newest_modified: str
    last_import: str

    def age_days(self, now: datetime | None = None) -> float | None:
        """Age of the data: time since the newest record was modified (None when empty)."""
        if not self.newest_modified:
            return None
        now = now or datetime.now(UTC)
        newest = datetime.fromisoformat(self.newest_modified)
        return (now - newest).total_seconds() / 86400

    def to_json(self) -> dict[str, Any]:
        age = self.age_days()
        return {
            "schema": "imagewise/db-status/v1", "path": str(self.path), "records": self.records,
            "withdrawn": self.withdrawn, "ecosystems": self.per_ecosystem,
            "sources": [{"path": p, "imported_at": t, "records": n} for p, t, n in self.sources],
            "newest_modified": self.newest_modified, "last_import": self.last_import,
            "age_days": round(age, 2) if age is not None else None,
        }


@dataclass(frozen=True, slots=True)
class RecordInfo:
    id: str
    aliases: tuple[str, ...]
    summary: str
    rating: Rating | None
    modified: str
    published: str


_YAML_LOADER: Any = None


def _yaml_loader() -> Any:
    """A safe YAML loader that keeps numbers and dates as the strings they are written as, so an
    unquoted ``fixed: 1.10`` stays "1.10" (not the float 1.1) and timestamps stay text."""
    global _YAML_LOADER
    if _YAML_LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        keep = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
        resolvers = {first: [(tag, rx) for tag, rx in items if tag not in keep]
                     for first, items in base.yaml_implicit_resolvers.items()}
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


def iter_documents(path: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every OSV document under ``path`` (file, directory or ``.zip``)."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and (p.suffix.lower() in _RECORD_EXT or p.suffix.lower() == ".zip"):
                yield from iter_documents(p)
        return
    if not path.exists():
        raise VulnDBError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if not info.is_dir() and info.filename.lower().endswith(_RECORD_EXT):
                        yield f"{path}!{info.filename}", z.read(info)
        except zipfile.BadZipFile as e:
            raise VulnDBError(f"{path}: not a valid zip archive: {e}") from e
        return
    yield str(path), path.read_bytes()


class VulnDB:
    """An OSV database in one SQLite file. Use as a context manager or call ``close()``."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        """Open for reading (scans never write), or with ``create`` for importing."""
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise VulnDBError(
                f"no vulnerability database at {self.path}; import OSV data with "
                f"'imagewise db import PATH' (or point --db / IMAGEWISE_DB at one)")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if create:
                self.conn = sqlite3.connect(str(self.path))
                self.conn.executescript(_SCHEMA)
            else:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None and create:
                self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                self.conn.commit()
            elif row is None or row[0] != SCHEMA_VERSION:
                if row is None:
                    raise VulnDBError(f"{self.path}: not a vulnerability database (no schema)")
                raise VulnDBError(f"{self.path}: database schema {row[0]}, expected "
                                  f"{SCHEMA_VERSION}; re-import into a new file")
        except sqlite3.DatabaseError as e:
            raise VulnDBError(f"{self.path}: not a vulnerability database ({e})") from e

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ import
    def import_paths(self, paths: Iterable[Path], reporter: Reporter = NULL) -> ImportStats:
        stats = ImportStats()
        known = dict(self.conn.execute("SELECT id, modified FROM vulns"))
        now = _now()
        with self.conn:
            for path in paths:
                before = stats.seen
                reporter.start(str(path), f"importing {path}")
                for where, data in iter_documents(Path(path)):
                    self._import_document(where, data, known, stats)
                    reporter.advance(str(path), 1)
                reporter.done(str(path))
                self.conn.execute(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)",
                    (str(Path(path).resolve()), now, stats.seen - before))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_import', ?)", (now,))
        return stats

    def _import_document(self, where: str, data: bytes, known: dict[str, str],
                         stats: ImportStats) -> None:
        quick = _quick_id_modified(where, data)
        if quick is not None and quick[0] in known and known[quick[0]] >= _utc(quick[1]):
            stats.unchanged += 1  # unchanged record: not even parsed
            return
        try:
            docs = list(_load_text(where, data))
        except Exception as e:  # noqa: BLE001 - YAML/JSON parsers raise many types; report, go on
            stats.skipped.append((where, f"cannot parse: {str(e).splitlines()[0][:120]}"))
            return
        for doc in docs:
            try:
                rec = parse_record(doc)
            except (ValueError, TypeError, AttributeError) as e:
                stats.skipped.append((where, str(e)))
                continue
            modified = _utc(rec.modified)
            old = known.get(rec.id)
            if old is not None and old >= modified:
                stats.unchanged += 1
                continue
            self._write(rec, modified, where)
            known[rec.id] = modified
            if old is None:
                stats.added += 1
            else:
                stats.updated += 1

    def _write(self, rec: Record, modified: str, where: str) -> None:
        c = self.conn
        c.execute("DELETE FROM affected WHERE vuln_id=?", (rec.id,))
        c.execute(
            "INSERT OR REPLACE INTO vulns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, modified, _utc(rec.published), _utc(rec.withdrawn),
             json.dumps(list(rec.aliases)), rec.summary,
             json.dumps(rec.rating.to_json()) if rec.rating else None, where))
        if rec.withdrawn:
            return
        c.executemany(
            "INSERT INTO affected VALUES (?, ?, ?, ?, ?)",
            [(rec.id, a.ecosystem, a.release, a.name, json.dumps(a.to_json(), separators=(",", ":")))
             for a in rec.affected])

    # ------------------------------------------------------------------------------ status
    def status(self) -> DBStatus:
        c = self.conn
        records = c.execute("SELECT count(*) FROM vulns").fetchone()[0]
        withdrawn = c.execute("SELECT count(*) FROM vulns WHERE withdrawn != ''").fetchone()[0]
        per: dict[str, int] = {}
        for eco, n in c.execute("SELECT ecosystem, count(DISTINCT vuln_id) FROM affected "
                                "GROUP BY ecosystem ORDER BY ecosystem"):
            per[eco] = n
        sources: list[tuple[str, str, int]] = [(r[0], r[1], r[2]) for r in c.execute("SELECT path, imported_at, records FROM sources "
                                                "ORDER BY imported_at DESC, path")]
        newest = c.execute("SELECT max(modified) FROM vulns").fetchone()[0] or ""
        row = c.execute("SELECT value FROM meta WHERE key='last_import'").fetchone()
        return DBStatus(self.path, records, withdrawn, per, sources,
                        newest, row[0] if row else "")

    # ------------------------------------------------------------------------------ lookup
    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, Affected]]]:
        """Affected entries for each (base ecosystem, normalised name): [(vuln id, entry)]."""
        by_eco: dict[str, set[str]] = {}
        for eco, name in keys:
            by_eco.setdefault(eco, set()).add(name)
        out: dict[tuple[str, str], list[tuple[str, Affected]]] = {}
        for eco, names in by_eco.items():
            ordered = sorted(names)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i:i + 500]
                q = ("SELECT vuln_id, release, name, data FROM affected WHERE ecosystem=? AND name IN "
                     f"({','.join('?' * len(chunk))})")
                for vid, release, name, data in self.conn.execute(q, (eco, *chunk)):
                    entry = Affected.from_json(eco, release, name, json.loads(data))
                    out.setdefault((eco, name), []).append((vid, entry))
        return out

    def records(self, ids: Iterable[str]) -> dict[str, RecordInfo]:
        wanted = sorted(set(ids))
        out: dict[str, RecordInfo] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            q = ("SELECT id, aliases, summary, rating, modified, published FROM vulns WHERE id IN "
                 f"({','.join('?' * len(chunk))})")
            for vid, aliases, summary, rating, modified, published in self.conn.execute(q, chunk):
                out[vid] = RecordInfo(vid, tuple(json.loads(aliases)), summary or "",
                                      Rating.from_json(json.loads(rating)) if rating else None,
                                      modified, published or "")
        return out
