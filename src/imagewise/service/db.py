"""The service's database: jobs and check results, through SQLAlchemy 2 (Core), its schema
kept by Alembic migrations (``migrations/versions``; ``connect`` upgrades to the newest).

The default is SQLite in the user data directory (no server); any SQLAlchemy URL works
(``postgresql+psycopg://...``). Tables:

* ``jobs``: the queue (see :mod:`imagewise.service.queue`);
* ``results``: one row per check of a digest, kept with its time (so trends can be drawn), the
  newest per digest being the current one; tags and repositories that carry the digest are in
  ``image_refs``, so an image is checked once however many tags carry it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(255), nullable=False, index=True),  # dedup: one queued/running per key
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # queued running done failed cancelled
    Column("priority", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("not_before", Float, nullable=False, default=0.0),
    Column("claimed_by", String(64)),
    Column("heartbeat", Float),
    Column("started", Float),  # when its latest attempt was claimed
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("error", Text),
    Column("outcome", Text),  # what a finished job reported
)
#: at most one queued or running job per key, enforced by the database: two workers
#: submitting the same key at once (two checks needing one layer) make one job
ACTIVE = "state in ('queued', 'running')"
Index(
    "ux_jobs_active_key",
    jobs.c.key,
    unique=True,
    sqlite_where=text(ACTIVE),
    postgresql_where=text(ACTIVE),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(80), nullable=False, index=True),
    Column("checked", Float, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("compressed_bytes", Integer),  # the layers as pulled (None: checked before 0003)
    Column("findings", JSON),  # [{rule, severity, title, path, fix}] of the check, no secret text
    Column("layer_list", JSON),  # [{index, size_bytes, compressed_size, created_by}]
    Column("layers", Integer, nullable=False),
    Column("efficiency", Float, nullable=False),
    Column("wasted_bytes", Integer, nullable=False),
    Column("reclaimable_bytes", Integer, nullable=False),
    Column("vulnerabilities", JSON, nullable=False),  # severity -> count
    Column("vulnerability_ids", JSON, nullable=False),  # advisory id -> severity
    Column("secrets", Integer, nullable=False),
    Column("violations", JSON, nullable=False),
)

image_refs = Table(
    "image_refs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registry", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("digest", String(80), nullable=False, index=True),
    Column("seen", Float, nullable=False),
    UniqueConstraint("registry", "repository", "tag", name="one_digest_per_tag"),
)


alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False, unique=True),  # rule:repository:tag
    Column("state", String(16), nullable=False),  # firing | resolved
    Column("last_sent", Float, nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, index=True),  # space backup drill build
    Column("name", String(128), nullable=False),
    Column("created", Float, nullable=False),
    Column("body", JSON, nullable=False),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("last_due", Float, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the token, never the token
    Column("scope", String(16), nullable=False),
    Column("created", Float, nullable=False),
)

sboms = Table(
    "sboms",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("packages", JSON, nullable=False),  # what matching needs of each package
    Column("created", Float, nullable=False),
)

layer_cache = Table(
    "layer_cache",
    metadata,
    Column("key", String(400), primary_key=True),  # cache FORMAT/kind/.../key
    Column("data", LargeBinary, nullable=False),  # the record, framed and checksummed
    Column("created", Float, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(128), nullable=False),
    Column("key", String(255), nullable=False, index=True),  # the alert's dedup key
    Column("ticket", String(64), nullable=False),  # issue number / Jira key
    Column("url", String(512), nullable=False),
    Column("state", String(16), nullable=False),  # open | closed
    Column("created", Float, nullable=False),
)


def default_url() -> str:
    from platformdirs import user_data_dir

    path = Path(user_data_dir("imagewise")) / "service.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi: Any, _record: Any) -> None:
    cur = dbapi.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def connect(url: str | None = None) -> Engine:
    """An engine with the schema created (SQLite: WAL mode, busy timeout, foreign keys)."""
    # pre-ping: a connection the database dropped (restarted, failed over) is replaced on
    # checkout instead of failing the request that drew it from the pool
    engine = create_engine(url or default_url(), future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)

    migrate(engine)
    return engine


#: the PostgreSQL advisory lock key held while migrating ("iw-migr" in ASCII)
MIGRATION_LOCK = 0x69772D6D69677200 >> 8


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the Alembic ``revision`` (``service/migrations``; the newest by
    default). One process at a time: a service and its workers starting together on a fresh
    database would otherwise each create the tables, and all but one fail (PostgreSQL: an
    advisory lock for the transaction; SQLite: a lock file beside the database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with _sqlite_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate-lock`` for a SQLite file database."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    import fcntl

    with open(f"{path}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
