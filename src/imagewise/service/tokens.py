"""API tokens: random secrets shown once, kept as SHA-256 hashes, each with a scope.

Scopes nest: ``read`` (GET the API and /metrics), ``write`` (also queue work), ``admin`` (also
manage tokens). ``imagewise serve token create NAME --scope read`` prints a new token once.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import Engine, select

from imagewise.errors import UsageError
from imagewise.service.db import tokens

SCOPES = ("read", "write", "admin")
PREFIX = "iwt_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, name: str, scope: str) -> str:
    if scope not in SCOPES:
        raise UsageError(f"--scope {scope}: expected one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        if conn.execute(select(tokens.c.id).where(tokens.c.name == name)).first() is not None:
            raise UsageError(f"a token named {name!r} exists; revoke it first")
        conn.execute(
            tokens.insert().values(name=name, hash=_hash(token), scope=scope, created=time.time())
        )
    return token


def revoke_token(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        return bool(conn.execute(tokens.delete().where(tokens.c.name == name)).rowcount)


def scope_of(engine: Engine, token: str) -> str | None:
    """The scope of a presented token (None: unknown). Compared by hash, never stored in clear."""
    if not token.startswith(PREFIX):
        return None
    with engine.begin() as conn:
        row = conn.execute(select(tokens.c.scope).where(tokens.c.hash == _hash(token))).first()
    return str(row[0]) if row else None


def allows(scope: str | None, needed: str) -> bool:
    return scope is not None and SCOPES.index(scope) >= SCOPES.index(needed)
