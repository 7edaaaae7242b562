"""``imagewise db update``: the OSV per-ecosystem exports, fetched only when they changed.

The public OSV bucket (or a mirror of it: an HTTP(S) URL or a local directory with the same
layout) serves ``<Ecosystem>/all.zip``. For each ecosystem asked for, a conditional GET
(``If-None-Match`` / ``If-Modified-Since`` from the last fetch) either answers 304 (nothing to do)
or sends the archive, which is streamed to a temporary file next to the database, checked
(length, the ``x-goog-hash`` MD5 when the server sends one, every member's CRC while it is read)
and imported in one transaction together with the new validators: readers see the old data or
the new, and an interrupted update leaves nothing behind and is fetched again next time.

Scans call :func:`auto_update` with the ecosystems their packages need: a missing or stale
(unchecked for a day) feed is updated first, with short timeouts; when the mirror cannot be
reached the scan goes on with the data present and says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from imagewise.errors import VulnDBError
from imagewise.progress import NULL, Reporter
from imagewise.record import Record

#: the public OSV bucket (``gs://osv-vulnerabilities`` over HTTPS)
DEFAULT_MIRROR = "https://osv-vulnerabilities.storage.googleapis.com"
#: what ``db update`` fetches when neither ``--ecosystem`` nor an earlier update says otherwise
DEFAULT_ECOSYSTEMS = (
    "PyPI",
    "npm",
    "Go",
    "Maven",
    "crates.io",
    "RubyGems",
    "Debian",
    "Alpine",
    "Ubuntu",
    "Red Hat",
)
#: a feed not checked for this long is stale: scans check it again before matching
STALE_AFTER = timedelta(hours=24)
#: seconds to wait for a connection / between two reads of a download (IMAGEWISE_DB_UPDATE_TIMEOUT
#: sets both for scans' automatic updates)
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
AUTO_TIMEOUT = 5.0


def mirror_url(mirror: str | None = None) -> str:
    """``mirror``, else ``$IMAGEWISE_OSV_MIRROR``, else the public OSV bucket."""
    return (mirror or os.environ.get("IMAGEWISE_OSV_MIRROR") or DEFAULT_MIRROR).rstrip("/")


def offline() -> bool:
    """``IMAGEWISE_OFFLINE`` set to anything but "", "0", "false", "no": no automatic updates."""
    return os.environ.get("IMAGEWISE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def feed_url(mirror: str, ecosystem: str) -> str:
    if _local_dir(mirror) is not None:
        return str(_local_dir(mirror) / ecosystem / "all.zip")  # type: ignore[operator]
    return f"{mirror}/{quote(ecosystem, safe='.')}/all.zip"


def _local_dir(mirror: str) -> Path | None:
    if mirror.startswith("file://"):
        return Path(urlsplit(mirror).path)
    if "://" not in mirror:
        return Path(mirror)
    return None


def ecosystems_for(packages: Iterable[Any]) -> list[str]:
    """The OSV ecosystems (base names) the matcher looks ``packages`` up in."""
    from imagewise.vulns.matching import match_key

    found = {k.ecosystem for k in (match_key(p) for p in packages) if k is not None}
    return sorted(found)


class FeedResult(Record):
    """What happened to one ecosystem: ``updated``, ``unchanged`` or ``failed`` (``error``)."""

    __slots__ = ("ecosystem", "url", "outcome", "added", "updated", "skipped", "size", "error")  # noqa: RUF023

    def __init__(
        self,
        ecosystem: str,
        url: str,
        outcome: str,
        added: int = 0,
        updated: int = 0,
        skipped: int = 0,
        size: int = 0,
        error: str = "",
    ) -> None:
        self.ecosystem = ecosystem
        self.url = url
        self.outcome = outcome
        self.added = added
        self.updated = updated
        self.skipped = skipped
        self.size = size
        self.error = error

    def line(self) -> str:
        if self.outcome == "failed":
            return f"{self.ecosystem}: not updated: {self.error}"
        if self.outcome == "unchanged":
            return f"{self.ecosystem}: unchanged since the last update"
        from imagewise.units import format_size

        if self.ecosystem == "database":
            return (
                f"database: pulled {self.url}: {self.added} records "
                f"({format_size(self.size)} downloaded)"
            )
        return (
            f"{self.ecosystem}: {self.added} added, {self.updated} updated"
            + (f", {self.skipped} skipped" if self.skipped else "")
            + f" ({format_size(self.size)} downloaded)"
        )


class _Unreachable(Exception):
    """The mirror cannot be reached at all: the other ecosystems are not tried."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _feeds(db_path: Path) -> dict[str, dict[str, Any]]:
    from imagewise.vulns.store import VulnDB

    if not db_path.is_file():
        return {}
    try:
        with VulnDB(db_path) as db:
            return db.feeds()
    except VulnDBError:
        return {}


def known_ecosystems(db_path: Path) -> list[str]:
    """The ecosystems an earlier ``db update`` fetched into ``db_path`` (none: the defaults)."""
    return sorted(_feeds(Path(db_path))) or list(DEFAULT_ECOSYSTEMS)


def update(
    db_path: Path,
    ecosystems: Iterable[str],
    mirror: str | None = None,
    *,
    reporter: Reporter = NULL,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    force: bool = False,
) -> list[FeedResult]:
    """Fetch and import each ecosystem's ``all.zip`` when it changed since the last update
    (``force``: whatever the validators say). One result per ecosystem; a failure of one does
    not stop the others, except when the mirror cannot be reached at all."""
    db_path = Path(db_path)
    base = mirror_url(mirror)
    if base.startswith("docker://"):
        return [_update_from_registry(db_path, base, reporter)]
    feeds = _feeds(db_path)
    results: list[FeedResult] = []
    unreachable = ""
    for eco in dict.fromkeys(ecosystems):
        url = feed_url(base, eco)
        if unreachable:
            results.append(FeedResult(eco, url, "failed", error=unreachable))
            continue
        state = feeds.get(eco) if not force else None
        if state is not None and state.get("url") != url:
            state = None  # another mirror: its validators mean nothing here
        try:
            if _local_dir(base) is not None:
                results.append(_update_local(db_path, eco, Path(url), state, reporter))
            else:
                results.append(
                    _update_http(db_path, eco, url, state, reporter, connect_timeout, read_timeout)
                )
        except _Unreachable as e:
            unreachable = str(e)
            results.append(FeedResult(eco, url, "failed", error=unreachable))
        except VulnDBError as e:
            results.append(FeedResult(eco, url, "failed", error=str(e)))
    return results


def _update_from_registry(db_path: Path, ref: str, reporter: Reporter) -> FeedResult:
    """A mirror that is a registry: the whole database, as ``db push`` stored it there."""
    from imagewise.errors import ImagewiseError
    from imagewise.vulns.artifact import pull
    from imagewise.vulns.store import VulnDB

    try:
        t = pull(ref, db_path, reporter=reporter)
        with VulnDB(db_path, create=True) as db, db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('pulled_checked', ?)", (_now(),))
    except ImagewiseError as e:
        return FeedResult("database", ref, "failed", error=str(e))
    if t.unchanged:
        return FeedResult("database", t.reference, "unchanged")
    return FeedResult("database", t.reference, "updated", added=t.records, size=t.size)


def _pulled(db_path: Path) -> tuple[str, str]:
    """(where the database was pulled from, when that was last checked), or ("", "")."""
    import sqlite3

    from imagewise.vulns.store import VulnDB

    if not db_path.is_file():
        return "", ""
    try:
        with VulnDB(db_path) as db:
            assert db.conn is not None
            meta = dict(
                db.conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('pulled_from', 'pulled_checked')"
                )
            )
    except (VulnDBError, sqlite3.Error):  # unreadable state: check again
        return "", ""
    return str(meta.get("pulled_from", "")), str(meta.get("pulled_checked", ""))


def _record_feed(eco: str, url: str, etag: str, last_modified: str) -> Callable[[Any, Any], None]:
    def after(conn: Any, stats: Any) -> None:
        now = _now()
        conn.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?, ?, ?)",
            (eco, url, etag, last_modified, now, now, stats.seen),
        )

    return after


def _checked(db_path: Path, eco: str) -> None:
    from imagewise.vulns.store import VulnDB

    with VulnDB(db_path, create=True) as db, db.transaction() as c:
        c.execute("UPDATE feeds SET checked_at=? WHERE ecosystem=?", (_now(), eco))


def _import(
    db_path: Path,
    eco: str,
    archive: Path,
    url: str,
    etag: str,
    last_modified: str,
    size: int,
    reporter: Reporter,
) -> FeedResult:
    import zipfile

    from imagewise.vulns.store import VulnDB

    if not zipfile.is_zipfile(archive):
        raise VulnDBError(f"{url}: the download is not a zip archive")
    with VulnDB(db_path, create=True) as db:
        stats = db.import_paths(
            [archive], reporter, source=url, after=_record_feed(eco, url, etag, last_modified)
        )
    return FeedResult(eco, url, "updated", stats.added, stats.updated, len(stats.skipped), size)


def _update_local(
    db_path: Path, eco: str, archive: Path, state: dict[str, Any] | None, reporter: Reporter
) -> FeedResult:
    try:
        st = archive.stat()
    except OSError:
        return FeedResult(
            eco, str(archive), "failed", error=f"the mirror has no {eco}/all.zip ({archive})"
        )
    etag = f"{st.st_size}-{st.st_mtime_ns}"
    if state is not None and state.get("etag") == etag:
        _checked(db_path, eco)
        return FeedResult(eco, str(archive), "unchanged")
    return _import(db_path, eco, archive, str(archive), etag, "", st.st_size, reporter)


def _update_http(
    db_path: Path,
    eco: str,
    url: str,
    state: dict[str, Any] | None,
    reporter: Reporter,
    connect_timeout: float,
    read_timeout: float,
) -> FeedResult:
    import base64
    import hashlib

    import httpx

    from imagewise.registry.session import trust_context

    host = urlsplit(url).netloc
    headers = {"User-Agent": "imagewise"}
    if state is not None and state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state is not None and state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    tmpdir = Path(tempfile.mkdtemp(prefix=".osv-download-", dir=_parent(db_path)))
    try:
        archive = tmpdir / f"{eco.replace(' ', '_').replace('/', '_')}-all.zip"
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=True, verify=trust_context()) as c,
                c.stream("GET", url, headers=headers) as resp,
            ):
                if resp.status_code == 304:
                    _checked(db_path, eco)
                    return FeedResult(eco, url, "unchanged")
                if resp.status_code == 404:
                    return FeedResult(
                        eco,
                        url,
                        "failed",
                        error=f"the mirror has no {eco}/all.zip (HTTP 404 from {host})",
                    )
                if resp.status_code != 200:
                    return FeedResult(
                        eco,
                        url,
                        "failed",
                        error=f"HTTP {resp.status_code} {resp.reason_phrase} from {host}",
                    )
                declared = resp.headers.get("Content-Length")
                total = int(declared) if declared and declared.isdigit() else None
                md5 = hashlib.md5(usedforsecurity=False)
                size = 0
                key = f"download {eco}"
                reporter.start(key, f"downloading {eco}/all.zip", total)
                with archive.open("wb") as f:
                    for chunk in resp.iter_bytes(1024 * 1024):
                        f.write(chunk)
                        md5.update(chunk)
                        size += len(chunk)
                        reporter.advance(key, len(chunk))
                reporter.done(key)
                etag = resp.headers.get("ETag", "")
                last_modified = resp.headers.get("Last-Modified", "")
                sent_md5 = _goog_md5(resp.headers.get_list("x-goog-hash"))
        except httpx.ConnectError as e:
            raise _Unreachable(f"cannot connect to {host}: {_reason(e)}") from e
        except httpx.ConnectTimeout as e:
            raise _Unreachable(
                f"cannot connect to {host}: no answer within {connect_timeout:g} s"
            ) from e
        except httpx.TimeoutException as e:
            raise _Unreachable(f"{host} stopped answering (no data for {read_timeout:g} s)") from e
        except httpx.HTTPError as e:
            raise _Unreachable(f"download from {host} failed: {_reason(e)}") from e
        except OSError as e:
            raise VulnDBError(
                f"cannot store the download next to {db_path}: {e.strerror or e}"
            ) from e
        if total is not None and size != total:
            raise VulnDBError(f"{url}: the download ended after {size} of {total} bytes")
        if sent_md5 is not None and base64.b64encode(md5.digest()).decode() != sent_md5:
            raise VulnDBError(f"{url}: the download does not match its MD5 (x-goog-hash)")
        return _import(db_path, eco, archive, url, etag, last_modified, size, reporter)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _parent(db_path: Path) -> Path:
    parent = db_path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VulnDBError(f"{parent}: cannot create the directory: {e.strerror or e}") from e
    return parent


def _goog_md5(values: list[str]) -> str | None:
    for v in values:
        for part in v.split(","):
            name, _, value = part.strip().partition("=")
            if name == "md5" and value:
                return value
    return None


def _reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
    for known in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "Temporary failure in name resolution",
        "Network is unreachable",
    ):
        if known.lower() in text.lower():
            return known.lower()
    return text[:160]


# ------------------------------------------------------------------------ automatic updates
class AutoUpdate(Record):
    """How a scan keeps its database fresh: the mirror, where to say what it does, progress."""

    __slots__ = ("mirror", "say", "reporter", "timeout")  # noqa: RUF023

    def __init__(
        self,
        mirror: str | None = None,
        say: Callable[[str], None] | None = None,
        reporter: Reporter = NULL,
        timeout: float | None = None,
    ) -> None:
        self.mirror = mirror
        self.say = say or (lambda _text: None)
        self.reporter = reporter
        if timeout is None:
            try:
                timeout = float(os.environ.get("IMAGEWISE_DB_UPDATE_TIMEOUT") or AUTO_TIMEOUT)
            except ValueError:
                timeout = AUTO_TIMEOUT
        self.timeout = timeout

    def stale(
        self, db_path: Path, ecosystems: Iterable[str], now: datetime | None = None
    ) -> list[str]:
        """The ecosystems among ``ecosystems`` that were never fetched from this mirror into
        ``db_path``, or not checked for :data:`STALE_AFTER`."""
        now = now or datetime.now(UTC)
        base = mirror_url(self.mirror)
        ecosystems = list(ecosystems)
        if base.startswith("docker://"):  # one artifact holds every ecosystem
            from imagewise.errors import ImagewiseError
            from imagewise.vulns.artifact import _ref

            try:
                wanted = f"docker://{_ref(base)}"
            except ImagewiseError:
                return ecosystems  # the update says what is wrong with the reference
            source, checked_at = _pulled(Path(db_path))
            if source == wanted:
                try:
                    if now - datetime.fromisoformat(checked_at) <= STALE_AFTER:
                        return []
                except ValueError:
                    pass
            return ecosystems
        feeds = _feeds(Path(db_path))
        out = []
        for eco in ecosystems:
            state = feeds.get(eco)
            if state is None or state.get("url") != feed_url(base, eco):
                out.append(eco)
                continue
            try:
                checked = datetime.fromisoformat(state["checked_at"])
            except (ValueError, TypeError):
                out.append(eco)
                continue
            if now - checked > STALE_AFTER:
                out.append(eco)
        return out

    def run(self, db_path: Path, packages: Iterable[Any]) -> list[str]:
        """Update what ``packages`` need when it is missing or stale; the warnings to show."""
        needed = ecosystems_for(packages)
        todo = self.stale(Path(db_path), needed)
        if not todo:
            return []
        base = mirror_url(self.mirror)
        self.say(
            f"updating the vulnerability database {db_path} ({', '.join(todo)}) from "
            f"{base} (--offline or --skip-db-update to skip)"
        )
        if base.startswith("docker://"):
            r = update(Path(db_path), todo, self.mirror, reporter=self.reporter)[0]
            if r.outcome == "failed":
                return [f"vulnerability database not updated from {base}: {r.error}"]
            self.say(r.line())
            return []
        results = update(
            Path(db_path),
            todo,
            self.mirror,
            reporter=self.reporter,
            connect_timeout=self.timeout,
            read_timeout=4 * self.timeout,
        )
        warnings = []
        for r in results:
            if r.outcome == "failed":
                warnings.append(f"vulnerability data for {r.ecosystem} not updated: {r.error}")
            else:
                self.say(r.line())
        return warnings
