"""One pooled HTTP session per registry: authentication, retries, plain-HTTP fallback.

Every request goes through :meth:`Session.send`, which adds the authorization a request's scopes
need, answers 401 challenges once, and retries 429/5xx answers and connection failures with
backoff (honouring ``Retry-After`` up to the policy's cap; a longer one fails at once) as long as
the request body can be sent again. A request that moves no byte for the transfer's stall time is
retried too (``STALL_ATTEMPTS`` tries); every wait is told to the transfer's reporter.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING, Any

from imagewise import __version__
from imagewise.errors import RegistryError
from imagewise.registry.auth import Authenticator
from imagewise.registry.credentials import Credentials
from imagewise.registry.errors import is_stall, stall_text, transport_error
from imagewise.registry.http import (
    Client,
    ConnectError,
    ConnectTimeout,
    Response,
    Timeout,
    TransportError,
    discard,
)
from imagewise.registry.retry import DEFAULT, RETRY_STATUSES, RetryPolicy, parse_retry_after
from imagewise.registry.transfer import (
    CONNECT_TIMEOUT,
    STALL_ATTEMPTS,
    Transfer,
    seconds,
    stall_from_env,
)

if TYPE_CHECKING:
    import ssl

USER_AGENT = f"imagewise/{__version__}"


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without a port)."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]")[0]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: ssl.SSLContext | None = None


def trust_context() -> ssl.SSLContext:
    """One TLS context for the whole process, from the system trust store (as skopeo and docker
    use it; ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured; certifi's bundle where the system has
    none, as in minimal containers), so corporate CAs installed there work and each registry
    client does not parse a CA bundle of its own. Registry sessions ask for it when their first
    TLS connection starts: ``ssl`` and the store cost tens of milliseconds that a plain-HTTP
    (loopback) registry never pays."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_default_certs()
            if not ctx.cert_store_stats()["x509_ca"] and not ctx.get_ca_certs():
                import certifi

                ctx.load_verify_locations(certifi.where())
            _SSL_CONTEXT = ctx
        return _SSL_CONTEXT


#: called with a registry host before every request to it (``set_pacer``); None: no limit
_PACER: Any = None


def set_pacer(pacer: Any) -> None:
    """Pace every request of this process to a registry: ``pacer(host)`` is called before each
    one and may wait (the service's fleet shares a rate limit per registry this way)."""
    global _PACER
    _PACER = pacer


class Session:
    """HTTP for one registry host. ``base_url`` is ``https://host`` or ``http://host``."""

    def __init__(
        self,
        host: str,
        base_url: str,
        *,
        insecure: bool = False,
        retry: RetryPolicy = DEFAULT,
        credentials: Credentials | None = None,
        anonymous: bool = False,
    ) -> None:
        self.host = host
        self.insecure = insecure
        self.retry = retry
        self.client = Client(
            base_url,
            verify=False if insecure else trust_context,
            timeout=Timeout(stall_from_env(), connect=CONNECT_TIMEOUT),  # token requests
            headers={"User-Agent": USER_AGENT},
        )
        if credentials is not None or anonymous:
            self.auth = Authenticator(host, self.client, lambda: credentials)
        else:
            self.auth = Authenticator(host, self.client)
        self._fallback_lock = threading.Lock()
        self._fell_back = False

    def __repr__(self) -> str:
        return f"Session(host={self.host!r}, base_url={self.client.base_url!r})"

    @property
    def base_url(self) -> str:
        return self.client.base_url

    def close(self) -> None:
        self.client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        scopes: list[str],
        headers: dict[str, str] | None = None,
        content: Any = None,
        params: Any = None,
        stream: bool = False,
        follow_redirects: bool = False,
        replayable: bool = True,
        what: str = "",
        transfer: Transfer | None = None,
    ) -> Response:
        """Send a request; returns any final response (the caller maps failures to errors).

        ``replayable=False`` (a streamed body) disables retries and the challenge re-send; the
        caller establishes authorization with an earlier request on the same scopes. ``what``
        names the object in messages; ``transfer`` gives the stall time, the overall deadline
        and the reporter told about each retry (default: :class:`Transfer` from the
        environment, no deadline, nobody told).
        """
        t = transfer if transfer is not None else Transfer()
        what = what or f"{method} {url.split('?')[0]}"
        policy = self.retry
        attempt = 0
        stalls = 0
        challenged = False
        while True:
            t.check(f"{what} at registry {self.host}")
            if _PACER is not None:
                _PACER(self.host)
            auth = self.auth.headers(scopes)
            h = {**(headers or {}), **auth}
            connect, quiet, _ = t.timeouts()
            try:
                resp = self.client.request(
                    method,
                    url,
                    headers=h,
                    content=content,
                    params=params,
                    timeout=Timeout(connect=connect, read=quiet, write=quiet),
                    stream=stream,
                    follow_redirects=follow_redirects,
                )
            except TransportError as e:
                if isinstance(e, (ConnectError, ConnectTimeout)) and self._maybe_fall_back(e):
                    continue
                if t.expired():
                    raise t.out_of_time(f"{what} at registry {self.host}") from e
                stalled = is_stall(e)
                stalls += stalled
                if (
                    not replayable
                    or attempt + 1 >= policy.attempts
                    or (stalled and stalls >= STALL_ATTEMPTS)
                ):
                    raise transport_error(
                        self.host, e, what, t.stall, stalls if stalled else attempt + 1
                    ) from e
                if stalled:
                    why = stall_text(self.host, what, t.stall)
                    nth, tries = stalls + 1, STALL_ATTEMPTS
                else:
                    why = str(transport_error(self.host, e, what))
                    nth, tries = attempt + 2, policy.attempts
                t.wait(policy.delay(attempt), why, what, nth, tries)
                attempt += 1
                continue
            if resp.status_code == 401 and not challenged and replayable:
                challenge = resp.headers.get("WWW-Authenticate")
                discard(resp)
                challenged = True
                if self.auth.on_challenge(challenge, scopes, had_auth=bool(auth)):
                    continue
                return resp  # body already read: the caller maps it to AuthError
            if resp.status_code in RETRY_STATUSES and replayable and attempt + 1 < policy.attempts:
                asked = parse_retry_after(resp.headers.get("Retry-After"))
                discard(resp)
                why = f"registry {self.host} answered HTTP {resp.status_code} ({what})"
                if asked is not None and asked > policy.max_retry_after:
                    raise RegistryError(
                        f"{why} and asked to retry after {seconds(asked)}, longer than the "
                        f"{seconds(policy.max_retry_after)} imagewise waits for a Retry-After; "
                        "giving up: try again later",
                        resp.status_code,
                    )
                if asked is not None:
                    why += f" and asked to wait {seconds(asked)}"
                t.wait(policy.delay(attempt, asked), why, what, attempt + 2, policy.attempts)
                attempt += 1
                continue
            return resp

    def _maybe_fall_back(self, exc: Exception) -> bool:
        """With ``--insecure``, an https registry that does not speak TLS is tried over http."""
        if not self.insecure or self._fell_back:
            return False
        with self._fallback_lock:
            if self._fell_back:
                return True
            base = self.client.base_url
            if not base.startswith("https://"):
                return False
            self.client.base_url = "http://" + base.removeprefix("https://")
            self._fell_back = True
            return True


def ensure_ok(resp: Response, ok: tuple[int, ...], what: str) -> Response:
    from imagewise.registry.errors import raise_for

    if resp.status_code not in ok:
        raise_for(resp, what)
    return resp


__all__ = ["RegistryError", "Session", "ensure_ok", "is_loopback"]
