"""Registry credentials from the files and helpers users already have.

Search order (first match wins), as podman/skopeo do:

1. ``$REGISTRY_AUTH_FILE``
2. ``${XDG_RUNTIME_DIR}/containers/auth.json``
3. ``~/.config/containers/auth.json``
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``

In each file ``credHelpers[host]`` names a ``docker-credential-<name>`` helper, ``auths`` holds
``auth`` (base64 ``user:password``), ``username``/``password`` or an ``identitytoken``, and a docker
config's ``credsStore`` is the default helper. Helpers speak the docker credential-helper protocol:
``docker-credential-<name> get`` reads the server name on stdin and prints
``{"ServerURL", "Username", "Secret"}``.

:class:`Credentials` never shows its secret: its ``repr`` is masked and nothing here puts a
secret into an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from imagewise.errors import AuthError
from imagewise.record import Record

DOCKER_HUB_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
    "https://registry-1.docker.io",
)
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class Credentials(Record):
    """A username with a password, or an identity (refresh) token. Secrets are never shown."""

    __slots__ = (  # noqa: RUF023 - in field order
        "username",
        "password",
        "identity_token",
        # where they came from (a file path or ``helper docker-credential-NAME``), safe to show
        "origin",
    )

    def __init__(
        self, username: str, password: str = "", identity_token: str = "", origin: str = ""
    ) -> None:
        self.username = username
        self.password = password
        self.identity_token = identity_token
        self.origin = origin

    def __repr__(self) -> str:
        return f"Credentials(username=***, password=***, origin={self.origin!r})"

    __str__ = __repr__


def auth_files() -> list[Path]:
    """Candidate credential files in search order (existing or not)."""
    out: list[Path] = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        out.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        out.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(os.path.expanduser("~"))
    xdg_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    out.append(xdg_config / "containers" / "auth.json")
    docker_dir = (
        Path(os.environ["DOCKER_CONFIG"]) if os.environ.get("DOCKER_CONFIG") else home / ".docker"
    )
    out.append(docker_dir / "config.json")
    return out


def _keys_for(host: str, repository: str | None) -> list[str]:
    """Keys an ``auths`` entry may use for ``host``, most specific first."""
    keys: list[str] = []
    if repository:  # containers auth.json allows host/namespace/repo keys
        parts = repository.split("/")
        keys += [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    if host in _HUB_HOSTS:
        keys += list(DOCKER_HUB_KEYS)
    else:
        keys += [
            host,
            f"https://{host}",
            f"http://{host}",
            f"https://{host}/v1/",
            f"https://{host}/v2/",
            f"http://{host}/v1/",
            f"http://{host}/v2/",
        ]
    return keys


def _normalise_key(key: str) -> str:
    k = key.strip()
    for prefix in ("https://", "http://"):
        k = k.removeprefix(prefix)
    return k.rstrip("/").removesuffix("/v1").removesuffix("/v2")


def _find_entry(table: dict[str, Any], host: str, repository: str | None) -> Any:
    if not isinstance(table, dict):
        return None
    for key in _keys_for(host, repository):
        if key in table:
            return table[key]
    wanted = {_normalise_key(k) for k in _keys_for(host, repository)}
    for key, value in table.items():  # tolerate other spellings of the same host
        if _normalise_key(key) in wanted:
            return value
    return None


def _from_auth_entry(entry: Any, origin: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(
            str(entry.get("username") or ""), "", str(entry["identitytoken"]), origin
        )
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError) as e:
            raise AuthError(f"malformed 'auth' entry in {origin}") from e
        return Credentials(user, password, "", origin)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password") or ""), "", origin)
    return None


def helper_get(helper: str, server: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` for ``server``; None when it has nothing."""
    import subprocess  # here: most runs configure no helper

    exe = f"docker-credential-{helper}"
    origin = f"helper {exe}"
    try:
        proc = subprocess.run(
            [exe, "get"], input=server.encode(), capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError as e:
        raise AuthError(f"credential helper {exe} is configured but not on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise AuthError(f"credential helper {exe} timed out") from e
    if proc.returncode != 0:
        # "credentials not found in native keychain" is the protocol's way of saying none
        if b"not found" in proc.stdout.lower() or b"not found" in proc.stderr.lower():
            return None
        raise AuthError(f"credential helper {exe} failed (exit {proc.returncode})")
    try:
        doc = json.loads(proc.stdout)
        user, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    except (ValueError, AttributeError) as e:
        raise AuthError(f"credential helper {exe} printed malformed output") from e
    if not secret:
        return None
    if user == "<token>":
        return Credentials("", "", secret, origin)
    return Credentials(user, secret, "", origin)


def _helper_server(host: str) -> str:
    return "https://index.docker.io/v1/" if host in _HUB_HOSTS else host


def _from_file(path: Path, host: str, repository: str | None) -> Credentials | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise AuthError(f"credential file {path} is not valid JSON") from e
    if not isinstance(doc, dict):
        return None
    helper = _find_entry(doc.get("credHelpers") or {}, host, repository)
    if isinstance(helper, str) and helper:
        return helper_get(helper, _helper_server(host))
    creds = _from_auth_entry(_find_entry(doc.get("auths") or {}, host, repository), str(path))
    if creds is not None:
        return creds
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return helper_get(store, _helper_server(host))
    return None


def lookup(host: str, repository: str | None = None) -> Credentials | None:
    """Credentials for ``host`` (``registry[:port]``), optionally narrowed to a repository."""
    for path in auth_files():
        creds = _from_file(path, host, repository)
        if creds is not None:
            return creds
    return None
