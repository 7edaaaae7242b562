"""Authentication against the real registry: htpasswd basic auth and bearer tokens, credentials
from docker/containers auth files and credential helpers, and secrets never shown."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from fixtures_registry import (
    PASSWORD,
    USERNAME,
    RegistryServer,
    build_image,
    push_image,
    unique_repo,
)

from imagewise.errors import AuthError
from imagewise.oci.digest import Digest
from imagewise.oci.model import Descriptor
from imagewise.registry.auth import Challenge
from imagewise.registry.client import RegistryClient
from imagewise.registry.credentials import Credentials, lookup


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credential file is found unless a test writes one under the returned directory."""
    for var in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    RegistryClient.clear_shared()
    return tmp_path


def write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def basic_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def fresh(server: RegistryServer, creds: Credentials | None = None) -> RegistryClient:
    return RegistryClient(server.host, server.url, credentials=creds)


def roundtrip_blob(client: RegistryClient, repo: str) -> None:
    data = os.urandom(3000)
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    client.upload_blob(repo, desc, io.BytesIO(data))
    assert client.has_blob(repo, desc.digest)
    with client.open_blob(repo, desc) as f:
        assert f.read() == data


# -- basic auth -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("registry_login")
def test_basic_auth_with_auth_file(registry_basic: RegistryServer) -> None:
    repo = unique_repo("basic")
    built = push_image(registry_basic, repo)
    client = fresh(registry_basic)
    assert str(client.get_manifest(repo, "v1").digest) == built.manifest_digest
    roundtrip_blob(client, repo)


def test_basic_auth_without_credentials_is_auth_error(
    registry_basic: RegistryServer, isolated: Path
) -> None:
    with pytest.raises(AuthError) as e:
        fresh(registry_basic).list_tags("anything")
    assert e.value.status == 401


def test_basic_auth_wrong_password(registry_basic: RegistryServer, isolated: Path) -> None:
    wrong = "wrong-password-xyz-123"
    client = fresh(registry_basic, Credentials(USERNAME, wrong, origin="test"))
    with pytest.raises(AuthError) as e:
        client.get_manifest("some/repo", "v1")
    assert e.value.status == 401
    assert wrong not in str(e.value) and USERNAME not in str(e.value)


# -- bearer tokens --------------------------------------------------------------------------------


@pytest.mark.usefixtures("registry_login")
def test_token_auth_push_pull_and_token_cache(registry_token: RegistryServer) -> None:
    repo = unique_repo("tok")
    client = fresh(registry_token)
    roundtrip_blob(client, repo)
    before = len(registry_token.token_requests)
    roundtrip_blob(client, repo)  # scopes already held: no new token
    assert len(registry_token.token_requests) == before
    assert ["repository:" + repo + ":pull,push"] in registry_token.token_requests
    assert client.session.auth.token_requests <= 3


@pytest.mark.usefixtures("registry_login")
def test_requests_sent_side_by_side_before_a_challenge_share_one_token(
    registry_token: RegistryServer,
) -> None:
    """Several first requests at once (``tag`` asks for the manifest and the tag list side
    by side) all meet the 401; one of them fetches the token, the others use it."""
    import threading

    repo = unique_repo("tok")
    roundtrip_blob(fresh(registry_token), repo)
    client = fresh(registry_token)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            client.list_tags(repo)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors or all("NotFound" in type(e).__name__ for e in errors), errors
    assert client.session.auth.token_requests == 1


@pytest.mark.usefixtures("registry_login")
def test_token_auth_catalog_and_mount_scopes(registry_token: RegistryServer) -> None:
    src, dst = unique_repo("tok-src"), unique_repo("tok-dst")
    built = push_image(registry_token, src)
    client = fresh(registry_token)
    layer = built.layers[0]
    assert client.mount_blob(dst, layer.digest, src) is None  # mounted
    assert client.has_blob(dst, layer.digest)
    assert any(
        f"repository:{src}:pull" in r and f"repository:{dst}:pull,push" in r
        for r in registry_token.token_requests
    )
    assert src in client.catalog()
    assert ["registry:catalog:*"] in registry_token.token_requests


@pytest.mark.usefixtures("registry_login")
def test_token_auth_anonymous_pull_of_public_repository(
    registry_token: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = "public/" + unique_repo("anon").replace("/", "-")
    built = push_image(registry_token, repo)
    anon = RegistryClient(registry_token.host, registry_token.url, anonymous=True)
    assert str(anon.get_manifest(repo, "v1").digest) == built.manifest_digest
    with pytest.raises(AuthError) as e:  # anonymous may pull, never push
        anon.upload_blob(repo, Descriptor("x", Digest.of(b"x"), 1), io.BytesIO(b"x"))
    assert e.value.status == 401
    with pytest.raises(AuthError):  # and sees nothing private
        anon.get_manifest("private/thing", "v1")


def test_token_auth_wrong_password(registry_token: RegistryServer, isolated: Path) -> None:
    wrong = "not-the-password-987"
    client = fresh(registry_token, Credentials(USERNAME, wrong, origin="test"))
    with pytest.raises(AuthError) as e:
        client.get_manifest("some/repo", "v1")
    assert "rejected the configured credentials" in str(e.value)
    assert wrong not in str(e.value) and wrong not in repr(client.session.auth)


def test_identity_token_is_used_as_refresh_token(
    registry_token: RegistryServer, isolated: Path
) -> None:
    # our test token server has no OAuth POST endpoint: the flow must fail as an AuthError or
    # RegistryError naming the host, never leaking the token
    client = fresh(registry_token, Credentials("", "", "refresh-token-secret-42", origin="test"))
    with pytest.raises(Exception) as e:
        client.get_manifest("some/repo", "v1")
    assert "refresh-token-secret-42" not in str(e.value)
    assert registry_token.host in str(e.value)


# -- credential files and helpers -----------------------------------------------------------------


def test_docker_config_via_DOCKER_CONFIG(
    registry_basic: RegistryServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = isolated / "dockercfg"
    write_json(
        cfg / "config.json",
        {"auths": {f"https://{registry_basic.host}": basic_entry(USERNAME, PASSWORD)}},
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    roundtrip_blob(fresh(registry_basic), unique_repo("dcfg"))


def test_home_docker_config_username_password_fields(
    registry_basic: RegistryServer, isolated: Path
) -> None:
    write_json(
        isolated / "home" / ".docker" / "config.json",
        {"auths": {registry_basic.host: {"username": USERNAME, "password": PASSWORD}}},
    )
    creds = lookup(registry_basic.host)
    assert creds is not None and creds.username == USERNAME and creds.password == PASSWORD
    roundtrip_blob(fresh(registry_basic), unique_repo("home"))


def test_containers_auth_json_locations_and_precedence(
    registry_basic: RegistryServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = registry_basic.host
    write_json(
        isolated / "home" / ".docker" / "config.json",
        {"auths": {host: basic_entry(USERNAME, "docker-config-loses")}},
    )
    write_json(
        isolated / "home" / ".config" / "containers" / "auth.json",
        {"auths": {host: basic_entry(USERNAME, "xdg-config-wins-over-docker")}},
    )
    assert lookup(host).password == "xdg-config-wins-over-docker"  # type: ignore[union-attr]
    write_json(
        isolated / "run" / "containers" / "auth.json",
        {"auths": {host: basic_entry(USERNAME, PASSWORD)}},
    )
    assert lookup(host).password == PASSWORD  # type: ignore[union-attr]
    explicit = write_json(
        isolated / "explicit.json",
        {"auths": {f"{host}/team": basic_entry(USERNAME, "for-team-repos")}},
    )
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert lookup(host, "team/app").password == "for-team-repos"  # type: ignore[union-attr]
    assert lookup(host, "other/app").password == PASSWORD  # type: ignore[union-attr]
    assert lookup("unknown.example:5000") is None
    roundtrip_blob(fresh(registry_basic), unique_repo("xdg"))


def test_docker_hub_keys(isolated: Path) -> None:
    write_json(
        isolated / "home" / ".docker" / "config.json",
        {"auths": {"https://index.docker.io/v1/": basic_entry("hubuser", "hubpass")}},
    )
    for host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        creds = lookup(host)
        assert creds is not None and creds.username == "hubuser"


def _helper(bin_dir: Path, name: str, server: str, user: str, secret: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / f"{name}.calls"
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(f"""#!/bin/sh
read -r server
echo "$1 $server" >> '{log}'
if [ "$1" = get ] && [ "$server" = '{server}' ]; then
  printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{secret}"}}' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def test_credential_helper_from_credHelpers(
    registry_basic: RegistryServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = isolated / "bin"
    calls = _helper(bin_dir, "test", registry_basic.host, USERNAME, PASSWORD)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_json(
        isolated / "home" / ".docker" / "config.json",
        {"credHelpers": {registry_basic.host: "test"}},
    )
    roundtrip_blob(fresh(registry_basic), unique_repo("helper"))
    assert calls.read_text().splitlines()[0] == f"get {registry_basic.host}"
    creds = lookup(registry_basic.host)
    assert creds is not None and creds.origin == "helper docker-credential-test"


def test_credsStore_and_helper_without_entry(
    registry_basic: RegistryServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = isolated / "bin"
    _helper(bin_dir, "store", registry_basic.host, USERNAME, PASSWORD)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_json(isolated / "home" / ".docker" / "config.json", {"credsStore": "store"})
    assert lookup(registry_basic.host).username == USERNAME  # type: ignore[union-attr]
    assert lookup("elsewhere.example") is None  # helper says "not found": no credentials
    write_json(isolated / "home" / ".docker" / "config.json", {"credsStore": "missing-helper"})
    with pytest.raises(AuthError, match="docker-credential-missing-helper"):
        lookup(registry_basic.host)


# -- secrets are never shown ----------------------------------------------------------------------


def test_credentials_never_appear_in_reprs_errors_or_logs(
    registry_basic: RegistryServer, isolated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Very-Secret-Password-4711"
    creds = Credentials(USERNAME, secret, origin="test")
    encoded = base64.b64encode(f"{USERNAME}:{secret}".encode()).decode()
    assert secret not in repr(creds) and secret not in str(creds)
    assert USERNAME not in repr(creds)
    client = fresh(registry_basic, creds)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as e:
        client.get_manifest("some/repo", "v1")
    shown = " ".join(
        [
            str(e.value),
            repr(e.value),
            repr(client),
            repr(client.session),
            repr(client.session.auth),
            caplog.text,
        ]
    )
    assert secret not in shown and encoded not in shown


def test_cli_never_prints_credentials(
    registry_basic: RegistryServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli

    secret = "cli-secret-password-0815"
    write_json(
        isolated / "run" / "containers" / "auth.json",
        {"auths": {registry_basic.host: basic_entry(USERNAME, secret)}},
    )
    result = CliRunner().invoke(cli, ["tags", f"{registry_basic.host}/some/repo"])
    assert result.exit_code == 2
    assert "HTTP 401" in result.output
    assert secret not in result.output
    assert base64.b64encode(f"{USERNAME}:{secret}".encode()).decode() not in result.output


def test_merge_scopes() -> None:
    from imagewise.registry.auth import merge_scopes

    assert merge_scopes(
        [
            "repository:a/b:pull",
            "repository:a/b:push,pull",
            "registry:catalog:*",
            "repository:c:pull",
        ]
    ) == ["registry:catalog:*", "repository:a/b:pull,push", "repository:c:pull"]


def test_challenge_parsing() -> None:
    ch = Challenge.parse(
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert ch is not None and ch.scheme == "bearer"
    assert ch.params == {
        "realm": "https://auth.example/token",
        "service": "reg.example",
        "scope": "repository:a/b:pull,push",
    }
    basic = Challenge.parse('Basic realm="Registry Realm"')
    assert (
        basic is not None and basic.scheme == "basic" and basic.params["realm"] == "Registry Realm"
    )
    both = Challenge.parse('Basic realm="x", Bearer realm="https://t",service=s')
    assert both is not None and both.scheme == "bearer" and both.params["service"] == "s"
    assert Challenge.parse("") is None and Challenge.parse("Negotiate") is None


def test_build_image_is_deterministic() -> None:
    assert build_image((10,), seed=1).manifest_digest == build_image((10,), seed=1).manifest_digest
