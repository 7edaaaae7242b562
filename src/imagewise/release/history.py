"""Environment tags with a history kept in the registry itself: promote, history, rollback.

Every move of an env tag is a *record*: a small OCI artifact manifest (artifactType
``application/vnd.imagewise.promotion.v1+json``, the empty config and one empty layer, and the
move in its annotations: env, from, to, who, when, why, action) pushed to the image's own
repository under a tag of its own, ``imagewise-history.<env>.<seq>.<nonce>``. Anyone with pull
rights reads the history with ``tags/list`` and one manifest GET per record; the record's
``subject`` is the promoted manifest, so registries with the referrers API also list each move
as a referrer of the digest it promoted.

Why one tag per record: a registry has no compare-and-swap, so a history kept in one manifest
that every writer rewrites loses records when two writers race. Records here are never
rewritten, so none is lost. The order is (seq, nonce): a writer takes ``seq`` one past the
highest it sees (a Lamport clock: sequential moves are strictly ordered whatever the machines'
clocks say; concurrent ones share a seq and are ordered by their random nonce). The env tag is
then derived state: after writing its record, each writer *reconciles* -- points the env tag at
the ``to`` of the last record and re-reads until tag and records agree -- so whatever the
interleaving, once every writer has returned the env tag names the digest of the last record.
"""

from __future__ import annotations

import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from imagewise.errors import ImagewiseError, NotFound, UsageError
from imagewise.oci import media
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.registry.client import RegistryClient
from imagewise.registry.referrers import artifact_manifest, ensure_empty_blob
from imagewise.tags import HISTORY_PREFIX

PREFIX = HISTORY_PREFIX
ARTIFACT_TYPE = "application/vnd.imagewise.promotion.v1+json"
NS = "io.imagewise.move."
_ENV = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_RECORD = re.compile(r"^imagewise-history\.([a-z0-9][a-z0-9_-]{0,39})\.(\d{8})\.([0-9a-f]{8})$")


class HistoryError(ImagewiseError):
    """The registry's history or env tags are not in a state this command can work from."""

    exit_code = 2


def check_env(env: str) -> str:
    if not _ENV.match(env):
        raise UsageError(
            f"bad environment name {env!r}: lower-case letters, digits, - and _, at most 40"
        )
    return env


class Move:
    """One recorded move of an env tag."""

    __slots__ = ("env", "seq", "nonce", "old", "new", "by", "at", "reason", "action", "tag")  # noqa: RUF023

    def __init__(
        self,
        env: str,
        seq: int,
        nonce: str,
        old: str | None,
        new: str,
        by: str,
        at: str,
        reason: str = "",
        action: str = "promote",
        tag: str = "",
    ) -> None:
        self.env, self.seq, self.nonce, self.old, self.new = env, seq, nonce, old, new
        self.by, self.at, self.reason, self.action = by, at, reason, action
        self.tag = tag or f"{PREFIX}{env}.{seq:08d}.{nonce}"

    @property
    def order(self) -> tuple[int, str]:
        return (self.seq, self.nonce)

    def annotations(self) -> dict[str, str]:
        return {
            NS + "env": self.env,
            NS + "seq": str(self.seq),
            NS + "from": self.old or "",
            NS + "to": self.new,
            NS + "by": self.by,
            NS + "reason": self.reason,
            NS + "action": self.action,
            "org.opencontainers.image.created": self.at,
        }

    @classmethod
    def from_manifest(cls, tag: str, raw: bytes) -> Move:
        m = _RECORD.match(tag)
        if m is None:
            raise HistoryError(f"{tag}: not a history record tag")
        try:
            doc = json.loads(raw)
            ann = doc["annotations"]
            new = ann[NS + "to"]
            Digest.parse(new)
        except (ValueError, KeyError, TypeError) as e:
            raise HistoryError(f"history record {tag} is not an imagewise record: {e}") from None
        return cls(
            m.group(1),
            int(m.group(2)),
            m.group(3),
            ann.get(NS + "from") or None,
            new,
            str(ann.get(NS + "by", "")),
            str(ann.get("org.opencontainers.image.created", "")),
            str(ann.get(NS + "reason", "")),
            str(ann.get(NS + "action", "promote")),
            tag,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "env": self.env,
            "seq": self.seq,
            "from": self.old,
            "to": self.new,
            "by": self.by,
            "at": self.at,
            "reason": self.reason,
            "action": self.action,
            "record": self.tag,
        }


def record_tags(tags: list[str], env: str | None = None) -> list[tuple[int, str, str, str]]:
    """(seq, nonce, env, tag) of the history record tags among ``tags``, oldest first."""
    out = []
    for tag in tags:
        m = _RECORD.match(tag)
        if m and (env is None or m.group(1) == env):
            out.append((int(m.group(2)), m.group(3), m.group(1), tag))
    return sorted(out)


def read_history(client: RegistryClient, repo: str, env: str | None = None) -> list[Move]:
    """Every recorded move (of ``env``, or of all envs), oldest first; manifests read in
    parallel."""
    found = record_tags(client.list_tags(repo), env)

    def fetch(tag: str) -> Move | None:
        return _fetch_record(client, repo, tag)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [m for m in pool.map(fetch, [t for *_, t in found]) if m is not None]


def _fetch_record(client: RegistryClient, repo: str, tag: str, wait: float = 5.0) -> Move | None:
    """The record under ``tag``. A tag being written right now is listed a moment before its
    manifest can be read (the filesystem registry creates the tag's directory first): retry for
    up to ``wait`` seconds (a busy registry takes longer); None for a tag that stays unreadable
    (deleted meanwhile)."""
    import time

    deadline = time.monotonic() + wait
    pause = 0.025
    while True:
        try:
            return Move.from_manifest(tag, client.get_manifest(repo, tag).raw)
        except NotFound:
            if time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)


def _current(client: RegistryClient, repo: str, tag: str) -> Descriptor | None:
    try:
        return client.head_manifest(repo, tag)
    except NotFound:
        return None


def now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_move(
    client: RegistryClient,
    repo: str,
    env: str,
    digest: str,
    *,
    by: str,
    reason: str = "",
    action: str = "promote",
    now: datetime | None = None,
) -> Move:
    """Record that ``env`` moves to ``digest`` and make it so (reconcile). Returns the record."""
    check_env(env)
    target = client.head_manifest(repo, digest)  # NotFound: refuse a digest that is gone
    tags = client.list_tags(repo)
    seq = max((s for s, *_ in record_tags(tags, env)), default=0) + 1
    cur = _current(client, repo, env)
    move = Move(
        env,
        seq,
        secrets.token_hex(4),
        str(cur.digest) if cur else None,
        str(target.digest),
        by,
        now_text(now),
        reason,
        action,
    )
    ensure_empty_blob(client, repo)
    record = artifact_manifest(ARTIFACT_TYPE, target, move.annotations())
    client.put_manifest(repo, move.tag, record, media.OCI_MANIFEST)  # retries DIGEST_INVALID
    reconcile(client, repo, env)
    return move


def reconcile(
    client: RegistryClient, repo: str, env: str, attempts: int = 50, wait: float = 30.0
) -> str | None:
    """Point the env tag at the ``to`` of the env's last record; re-read until the tag and the
    records agree. Returns the digest (None: no record). Safe to run by any number of writers
    at once: they all converge on the last record. Gives up after ``attempts`` rounds and
    ``wait`` seconds, whichever comes last (many writers on a busy registry need more rounds)."""
    import itertools
    import random
    import time

    known: dict[str, str] = {}  # record tag -> to
    deadline = time.monotonic() + wait
    for attempt in itertools.count():
        if attempt >= attempts and time.monotonic() > deadline:
            break
        found = record_tags(client.list_tags(repo), env)
        if not found:
            return None
        last = found[-1][3]
        if last not in known:
            move = _fetch_record(client, repo, last)
            if move is None:
                continue
            known[last] = move.new
        want = known[last]
        cur = _current(client, repo, env)
        if cur is not None and str(cur.digest) == want:
            # stable only if no newer record appeared meanwhile
            again = record_tags(client.list_tags(repo), env)
            if again[-1][3] == last:
                return want
            continue
        fetched = client.get_manifest(repo, want)
        client.put_manifest(repo, env, fetched.raw, fetched.media_type)
        time.sleep(random.uniform(0, 0.02))  # let a concurrent writer's PUT land, then re-read
    raise HistoryError(f"{repo}:{env} did not settle after {attempts} attempts (writers racing?)")


def who(host: str, repo: str, by: str | None) -> str:
    """``--by``, else the registry credential's user name, else the local user."""
    if by:
        return by
    from imagewise.registry.credentials import lookup

    creds = lookup(host, repo)
    if creds is not None and creds.username and creds.username != "<token>":
        return creds.username
    import getpass

    try:
        return f"{getpass.getuser()} (local user)"
    except (KeyError, OSError):
        return "unknown"


def rollback_target(moves: list[Move], to: str | None, steps: int) -> str:
    """The digest a rollback goes to: ``to`` when given, else where the env tag was ``steps``
    recorded moves ago."""
    if to:
        return to
    if steps < 1:
        raise UsageError("--steps must be at least 1")
    if len(moves) <= steps:
        env = moves[-1].env if moves else "the env"
        raise HistoryError(
            f"cannot go back {steps} move(s): {len(moves)} move(s) of {env} recorded"
            + ("" if moves else " (promote once before rolling back)")
        )
    return moves[-1 - steps].new
