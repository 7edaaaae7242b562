"""Turn registry HTTP responses into the error tree (RegistryError, NotFound, AuthError).

Messages name the host, the repository and what was asked for, the HTTP status and the registry's
error code. They never contain credentials, tokens, query strings or request headers.
"""

from __future__ import annotations

import json
from typing import NoReturn

from imagewise.errors import AuthError, NotFound, RegistryError
from imagewise.registry.http import (
    ConnectError,
    HTTPError,
    ReadTimeout,
    Response,
    StreamError,
    TimeoutException,
    WriteTimeout,
)

#: registry error codes (OCI distribution spec) that mean "not there"
_NOT_FOUND_CODES = frozenset(
    {"BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
)
_AUTH_CODES = frozenset({"UNAUTHORIZED", "DENIED"})


def registry_errors(resp: Response) -> list[tuple[str, str]]:
    """``(code, message)`` pairs from an error body ``{"errors": [{"code", "message"}]}``."""
    try:
        raw = resp.content
    except StreamError:
        raw = b""
    if not raw or len(raw) > 64 * 1024:
        return []
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return []
    errs = doc.get("errors") if isinstance(doc, dict) else None
    out: list[tuple[str, str]] = []
    for e in errs if isinstance(errs, list) else []:
        if isinstance(e, dict):
            out.append((str(e.get("code") or ""), str(e.get("message") or "")))
    return out


def error_for(resp: Response, what: str) -> RegistryError:
    """The error a failed response means; ``what`` names the object (``host/repo:tag``)."""
    status = resp.status_code
    errs = registry_errors(resp)
    code = errs[0][0] if errs else None
    detail = errs[0][1] if errs and errs[0][1] else resp.reason_phrase or ""
    text = (
        f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
    )
    if status == 404 or (code in _NOT_FOUND_CODES):
        return NotFound(text, status, code)
    if status in (401, 403) or code in _AUTH_CODES:
        if status == 401:
            text += " (authentication required or credentials rejected)"
        return AuthError(text, status, code)
    return RegistryError(text, status, code)


def raise_for(resp: Response, what: str) -> NoReturn:
    """Raise the error for a failed response (reading a streamed error body first)."""
    try:
        if not resp.is_closed:
            resp.read()
    except HTTPError:
        pass
    raise error_for(resp, what)


class Stalled(RegistryError):
    """A registry accepted a request and then moved no byte for the stall time, every try."""


class OutOfTime(RegistryError):
    """The overall time limit of an operation passed (never retried)."""


def is_stall(exc: Exception) -> bool:
    """A request that went quiet: no answer, no body bytes, or the registry not reading."""
    return isinstance(exc, (ReadTimeout, WriteTimeout))


def stall_text(host: str, what: str, stall: float) -> str:
    from imagewise.registry.transfer import seconds

    return f"registry {host} sent nothing for {seconds(stall)}" + (f" on {what}" if what else "")


def stalled_error(host: str, what: str, stall: float, tries: int) -> Stalled:
    from imagewise.registry.transfer import STALL_ENV, seconds

    times = f", {tries} times ({seconds(stall * tries)} in all)" if tries > 1 else ""
    return Stalled(
        f"{stall_text(host, what, stall)}{times}; giving up (a longer "
        f"--stall-timeout or {STALL_ENV} waits longer)"
    )


def transport_error(
    host: str, exc: Exception, what: str = "", stall: float | None = None, tries: int = 1
) -> RegistryError:
    """A one-line error for a connection-level failure, without URLs' query strings."""
    kind = type(exc).__name__
    reason = str(exc).split("\n")[0][:200].rstrip(".") or kind
    during = f" ({what})" if what else ""
    if is_stall(exc) and stall is not None:
        return stalled_error(host, what, stall, tries)
    gave_up = f" (gave up after {tries} tries)" if tries > 1 else ""
    if isinstance(exc, ConnectError):
        return RegistryError(f"cannot connect to registry {host}{during}: {reason}{gave_up}")
    if isinstance(exc, TimeoutException):
        return RegistryError(f"registry {host} timed out{during} ({kind}){gave_up}")
    return RegistryError(f"connection to registry {host} failed{during}: {reason}{gave_up}")
