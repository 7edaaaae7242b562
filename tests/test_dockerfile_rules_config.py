"""Lint configuration files: .hadolint.yaml as hadolint reads it, pyproject/imagewise.toml, env."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagewise.dockerfile.config import LintConfig, load_config
from imagewise.errors import ConfigError
from imagewise.findings import Finding, Location, Severity

HADOLINT_YAML = """\
failure-threshold: warning
ignored:
  - DL3008
  - DL3059
override:
  error:
    - DL3015
  info:
    - DL3013
trustedRegistries:
  - docker.io
  - "*.gcr.io"
label-schema:
  author: text
  org.opencontainers.image.url: url
strict-labels: true
no-fail: false
format: json
"""


def test_reads_hadolint_yaml_in_cwd(tmp_path: Path) -> None:
    (tmp_path / ".hadolint.yaml").write_text(HADOLINT_YAML)
    cfg = load_config(cwd=tmp_path, env={"HOME": str(tmp_path / "home")})
    assert cfg.ignored == {"DL3008", "DL3059"}
    assert cfg.override == {"DL3015": Severity.ERROR, "DL3013": Severity.INFO}
    assert cfg.trusted_registries == ("docker.io", "*.gcr.io")
    assert cfg.label_schema == {"author": "text", "org.opencontainers.image.url": "url"}
    assert cfg.strict_labels and cfg.failure_threshold == Severity.WARNING and not cfg.no_fail
    assert cfg.sources == (str(tmp_path / ".hadolint.yaml"),)


def test_home_config_when_cwd_has_none(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "hadolint.yaml").write_text("ignored: [DL3006]\n")
    cfg = load_config(cwd=tmp_path, env={"HOME": str(home)})
    assert cfg.ignored == {"DL3006"}


def test_pyproject_and_imagewise_toml_sections_win(tmp_path: Path) -> None:
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3008]\nfailure-threshold: error\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.imagewise.lint]\nignored = ["DL3009"]\nfailure-threshold = "style"\n'
        'trusted-registries = ["ghcr.io"]\n'
    )
    cfg = load_config(cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert cfg.ignored == {"DL3008", "DL3009"}
    assert cfg.failure_threshold == Severity.STYLE
    assert cfg.trusted_registries == ("ghcr.io",)
    (tmp_path / "imagewise.toml").write_text("[lint]\nno-fail = true\n")
    assert load_config(cwd=tmp_path, env={"HOME": str(tmp_path)}).no_fail


def test_environment_variables(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "HADOLINT_IGNORE": "DL3000,DL3001",
        "HADOLINT_FAILURE_THRESHOLD": "none",
        "HADOLINT_TRUSTED_REGISTRIES": "a.io,b.io",
        "HADOLINT_REQUIRE_LABELS": "maintainer:email",
        "HADOLINT_OVERRIDE_STYLE": "DL3006",
    }
    cfg = load_config(cwd=tmp_path, env=env)
    assert cfg.ignored == {"DL3000", "DL3001"} and cfg.failure_threshold is None
    assert cfg.trusted_registries == ("a.io", "b.io")
    assert cfg.label_schema == {"maintainer": "email"}
    assert cfg.override == {"DL3006": Severity.STYLE}


def test_explicit_config_file(tmp_path: Path) -> None:
    path = tmp_path / "lint.yaml"
    path.write_text("ignored: [DL4006]\n")
    assert load_config(path, cwd=tmp_path, env={}).ignored == {"DL4006"}
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", cwd=tmp_path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ignored: [DL3008\n", "invalid YAML"),
        ("override:\n  fatal: [DL3008]\n", "unknown severity"),
        ("label-schema:\n  author: colour\n", "unknown label type"),
        ("failure-threshold: 3\n", "severity"),
        ("bogus-key: 1\n", "unknown lint setting"),
        ("- a\n- b\n", "mapping"),
    ],
)
def test_bad_config_is_a_one_line_config_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".hadolint.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert "\n" not in str(err.value)


def _f(sev: Severity) -> Finding:
    return Finding("DL3008", sev, "t", "m", Location("Dockerfile", 1))


def test_failure_threshold_semantics() -> None:
    assert LintConfig().fails([_f(Severity.INFO)])  # hadolint's default threshold is info
    assert not LintConfig().fails([_f(Severity.STYLE)])
    assert not LintConfig(failure_threshold=Severity.ERROR).fails([_f(Severity.WARNING)])
    assert not LintConfig(no_fail=True).fails([_f(Severity.ERROR)])
    assert not LintConfig(failure_threshold=None).fails([_f(Severity.ERROR)])
    assert not LintConfig().fails([])


def test_config_search_names_files_as_pathlib_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for config files is made with os.path (start-up time); the file found, and
    the name it is reported under, are pathlib's: odd HOME spellings and a relative cwd."""
    from imagewise.dockerfile.config import find_hadolint_config

    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "hadolint.yaml").write_text("ignored: [DL3000]\n")
    for spelled in (f"{home}/", f"{home}/./", f"/{home}", f"{home}//"):
        found = find_hadolint_config(tmp_path, {"HOME": spelled})
        assert found == Path(spelled) / ".config" / "hadolint.yaml"
        assert str(found) == str(Path(spelled) / ".config" / "hadolint.yaml")
        cfg = load_config(cwd=tmp_path, env={"HOME": spelled})
        assert cfg.sources == (str(Path(spelled) / ".config" / "hadolint.yaml"),)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3001]\n")
    (tmp_path / "imagewise.toml").write_text("[lint]\nignored = ['DL3002']\n")
    cfg = load_config(cwd=".", env={"HOME": str(home)})
    assert cfg.sources == (".hadolint.yaml", "imagewise.toml")
    assert cfg.ignored == {"DL3001", "DL3002"}
    assert find_hadolint_config(Path(), {"HOME": ""}) == Path(".hadolint.yaml")


def test_config_search_stops_where_pathlib_stops(tmp_path: Path) -> None:
    """A directory that cannot be searched is an error, as ``Path.is_file`` makes it."""
    import os

    from imagewise.dockerfile.config import find_hadolint_config

    if os.geteuid() == 0:  # root searches every directory: make the error another way
        assert find_hadolint_config(tmp_path, {"HOME": "bad\0home"}) is None
        (tmp_path / "file").write_text("")
        assert find_hadolint_config(tmp_path, {"HOME": str(tmp_path / "file")}) is None
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(PermissionError):
            find_hadolint_config(tmp_path, {"HOME": str(locked / "x")})
    finally:
        locked.chmod(0o700)
