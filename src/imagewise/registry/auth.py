"""The ``WWW-Authenticate`` challenge flow: anonymous, basic and bearer tokens with scopes.

One :class:`Authenticator` per registry host. It learns the host's scheme from the first 401,
then sends credentials up front. Bearer tokens are fetched from the challenge's realm for the
scopes a request needs (``repository:NAME:pull``, ``repository:NAME:pull,push``,
``registry:catalog:*``) and cached per scope set until they expire.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterable

from imagewise.errors import AuthError, RegistryError
from imagewise.record import Record
from imagewise.registry.credentials import Credentials, lookup
from imagewise.registry.http import Client, HTTPError

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


class Challenge(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "scheme",  # "bearer" or "basic" (lower case)
        "params",
    )

    def __init__(self, scheme: str, params: dict[str, str] | None = None) -> None:
        self.scheme = scheme
        self.params: dict[str, str] = {} if params is None else params

    def __hash__(self) -> int:  # ``params`` is compared but not hashed
        return hash(self.scheme)

    @classmethod
    def parse(cls, header: str | None) -> Challenge | None:
        """The most useful challenge in a header (Bearer preferred over Basic)."""
        if not header:
            return None
        found: list[Challenge] = []
        for m in re.finditer(r"(?:^|,)\s*(Bearer|Basic)\b", header, re.IGNORECASE):
            start = m.end()
            nxt = re.search(r",\s*(?:Bearer|Basic)\b", header[start:], re.IGNORECASE)
            chunk = header[start : start + nxt.start()] if nxt else header[start:]
            params = {
                k.lower(): (q.replace('\\"', '"') if q is not None and v == "" else (q or v))
                for k, q, v in _PARAM.findall(chunk)
            }
            found.append(cls(m.group(1).lower(), params))
        found.sort(key=lambda c: c.scheme != "bearer")
        return found[0] if found else None


def scope_key(scopes: Iterable[str]) -> str:
    return " ".join(merge_scopes(scopes))


def merge_scopes(scopes: Iterable[str]) -> list[str]:
    """One scope per resource with the union of its actions: ``repository:a:pull`` and
    ``repository:a:push,pull`` become ``repository:a:pull,push``."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, sep, acts = scope.rpartition(":")
        if not sep or not resource:
            resource, acts = scope, ""
        actions.setdefault(resource, set()).update(a for a in acts.split(",") if a)
    return sorted(f"{r}:{','.join(sorted(a))}" if a else r for r, a in actions.items())


class _Token:
    __slots__ = ("expires", "value")

    def __init__(self, value: str, expires: float) -> None:
        self.value = value
        self.expires = expires


class Authenticator:
    """Authorization headers for one registry host; thread-safe."""

    def __init__(
        self,
        host: str,
        client: Client,
        credentials: Callable[[], Credentials | None] | None = None,
    ) -> None:
        self.host = host
        self._client = client
        self._lookup = credentials or (lambda: lookup(host))
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._challenge: Challenge | None = None
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.token_requests = 0  # observable for tests

    def __repr__(self) -> str:
        scheme = self._challenge.scheme if self._challenge else "anonymous"
        return f"Authenticator(host={self.host!r}, scheme={scheme!r})"

    def credentials(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = self._lookup()
            self._creds_loaded = True
        return self._creds

    def headers(self, scopes: list[str]) -> dict[str, str]:
        """Headers to send with a request needing ``scopes``; empty until a challenge was seen."""
        ch = self._challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            creds = self.credentials()
            return {"Authorization": _basic(creds)} if creds and creds.username else {}
        with self._lock:
            tok = self._tokens.get(scope_key(scopes))
            if tok is None or tok.expires <= time.monotonic():
                tok = self._fetch_token(ch, scopes)
        return {"Authorization": f"Bearer {tok.value}"} if tok.value else {}

    def on_challenge(self, header: str | None, scopes: list[str], had_auth: bool) -> bool:
        """Handle a 401. True when a retry with new headers may succeed."""
        ch = Challenge.parse(header)
        if ch is None:
            return False
        with self._lock:
            first = self._challenge is None or self._challenge.scheme != ch.scheme
            self._challenge = ch
            if ch.scheme == "basic":
                creds = self.credentials()
                return bool(creds and creds.username) and (first or not had_auth)
            if had_auth and not first:
                # a token we had was refused: it may have expired early; fetch once more
                self._tokens.pop(scope_key(scopes), None)
            elif not had_auth and not first:
                # requests sent side by side before any challenge was known: the first one
                # to get here fetched the token they all need; the others use it
                tok = self._tokens.get(scope_key(scopes))
                if tok is not None and tok.expires > time.monotonic():
                    return True
            self._fetch_token(ch, scopes, extra=ch.params.get("scope", ""))
            return True

    # -- bearer tokens ------------------------------------------------------------------------

    def _fetch_token(self, ch: Challenge, scopes: list[str], extra: str = "") -> _Token:
        realm = ch.params.get("realm")
        if not realm:
            raise AuthError(f"registry {self.host} sent a bearer challenge without a realm")
        wanted = merge_scopes([*scopes, *(s for s in extra.split(" ") if s)])
        creds = self.credentials()
        self.token_requests += 1
        try:
            if creds and creds.identity_token:
                resp = self._client.post(
                    realm,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "service": ch.params.get("service", ""),
                        "scope": " ".join(wanted),
                        "client_id": "imagewise",
                    },
                )
            else:
                params: list[tuple[str, str | int | float | bool | None]] = []
                if ch.params.get("service"):
                    params.append(("service", ch.params["service"]))
                params += [("scope", s) for s in wanted]
                headers = {"Authorization": _basic(creds)} if creds and creds.username else {}
                resp = self._client.get(realm, params=params, headers=headers)
        except HTTPError as e:
            raise RegistryError(
                f"cannot get a token for {self.host} from its auth server: {type(e).__name__}"
            ) from e
        if resp.status_code in (401, 403):
            who = "the configured credentials" if creds else "anonymous access"
            raise AuthError(
                f"auth server of {self.host} rejected {who} (HTTP {resp.status_code})",
                resp.status_code,
                "UNAUTHORIZED",
            )
        if resp.status_code != 200:
            raise RegistryError(
                f"auth server of {self.host} answered HTTP {resp.status_code}", resp.status_code
            )
        try:
            doc = resp.json()
            value = str(doc.get("token") or doc.get("access_token") or "")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as e:
            raise RegistryError(
                f"auth server of {self.host} sent a malformed token response"
            ) from e
        # renew a little early so a token never expires in flight
        tok = _Token(value, time.monotonic() + max(ttl - 10, ttl / 2))
        self._tokens[scope_key(scopes)] = tok
        return tok


def _basic(creds: Credentials | None) -> str:
    assert creds is not None
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()
