"""Our catalogers on syft's own cataloger fixtures, against the package lists syft's tests expect
(``../shared/corpora/sbom-fixtures/expected_packages.jsonl``): identical name and version sets.

Covered: apk db, dpkg/opkg status, package.json, package-lock/yarn/pnpm lockfiles, installed
Python metadata. Not covered on purpose (rows skipped by test_func, listed in UNCOVERED):
"declared" Python manifests (requirements.txt, poetry.lock, Pipfile.lock, setup.py), which are
not installed software and which syft does not run on images either, and rows asserting only
relationships (no packages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus

from imagewise.sbom.catalogers import ALL
from imagewise.sbom.catalogers.base import FileInfo, Parsed
from imagewise.sbom.catalogers.npm import parse_package_lock_doc, parse_pnpm_lock_docs
from imagewise.sbom.catalogers.python import parse_metadata_text

#: rows where we knowingly differ from syft's expectation: test id -> our extra packages.
#: alias-package-lock-2.json: syft's test leaves out the lock's root project ("" entry) although
#: it reports the root of package-lock-2.json/-3.json; we report roots consistently.
KNOWN_EXTRA = {"TestParsePackageLockAlias": {("alias-check", "1.0.0")}}

UNCOVERED = {
    "TestParseRequirementsTxt",
    "TestParsePoetryLock",
    "TestParsePipFileLock",
    "Test_CatalogerRelationships",
}


def _rows() -> list[dict[str, Any]]:
    path = (
        Path(__file__).resolve().parents[2] / "shared/corpora/sbom-fixtures/expected_packages.jsonl"
    )
    if not path.exists():
        return [{"test_func": "corpus-missing", "inputs": [], "packages": [], "n_packages": 0}]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


ROWS = _rows()


def _id(row: dict[str, Any]) -> str:
    return f"{row['test_func']}[{row.get('case') or Path(row['inputs'][0]).name if row['inputs'] else ''}]"


def _catalog_path(root: Path, base: Path) -> list[tuple[str, str]]:
    """Run every cataloger on the files under ``root`` (paths relative to ``base``)."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    found: list[tuple[str, str]] = []
    for f in files:
        rel = f.relative_to(base).as_posix()
        info = FileInfo(rel, f.stat().st_size, f.stat().st_mode)
        for c in ALL:
            # package catalogers only: auxiliary records (copyright, direct_url) have no types
            if c.selects(info) and c.types and c.id != "go-module-binary":
                with f.open("rb") as stream:
                    parsed: Parsed = c.parse(info, stream)
                found += [(p.name, p.version) for p in parsed.packages]
                break
    return found


def _expected(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (p.get("Name") or p.get("Package") or "", p.get("Version") or "") for p in row["packages"]
    ]


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r["test_func"] not in UNCOVERED and r["n_packages"]], ids=_id
)
def test_syft_fixture(row: dict[str, Any]) -> None:
    base = corpus("sbom-fixtures")
    expected = _expected(row)
    got: list[tuple[str, str]] = []
    for rel in row["inputs"]:
        path = base / rel
        func = row["test_func"]
        if func == "TestParseWheelEggMetadata" or func == "TestParseWheelEggMetadataInvalid":
            fields = parse_metadata_text(path.read_text())
            got.append((fields["name"][0], fields["version"][0]))
        elif func == "TestParsePnpmLock":
            import yaml

            docs = list(yaml.safe_load_all(path.read_text()))
            got += [(p.name, p.version) for p in parse_pnpm_lock_docs(docs, include_dev=True)]
        elif (
            func.startswith("TestParsePackageLock")
            or func == "TestParsePackageJSON"
            or "Yarn" in func
            or "Pnpm" in func
            or "dpkg" in func.lower()
            or "Apk" in func
            or "SinglePackageDetails" in func
        ):
            if path.name.endswith(".json") and "pkg-lock" in str(path):
                doc = json.loads(path.read_text())
                got += [(p.name, p.version) for p in parse_package_lock_doc(doc)]
            else:
                got += _parse_as(path, row)
        else:  # installed-package directories
            got += _catalog_path(path, path.parent)
    extra = KNOWN_EXTRA.get(row["test_func"], set())
    assert extra <= set(got), "a known difference disappeared: update KNOWN_EXTRA"
    assert sorted(set(got) - extra) == sorted(set(expected)), (row["test_file"], row.get("case"))


def _parse_as(path: Path, row: dict[str, Any]) -> list[tuple[str, str]]:
    """Parse a single fixture file with the cataloger its role implies (fixture names differ
    from the in-image paths the catalogers select on)."""
    func = row["test_func"]
    role = {
        "SinglePackageDetails": "lib/apk/db/installed",
        "parseDpkgStatus": "var/lib/dpkg/status",
        "PackageJSON": "app/node_modules/x/package.json",
        "Yarn": "app/yarn.lock",
        "Pnpm": "app/pnpm-lock.yaml",
    }
    target = next(v for k, v in role.items() if k.lower() in func.lower())
    info = FileInfo(target, path.stat().st_size, 0o644)
    cataloger = next(c for c in ALL if c.selects(info))
    with path.open("rb") as f:
        parsed = cataloger.parse(info, f)
    assert not parsed.skipped, parsed.skipped
    return [(p.name, p.version) for p in parsed.packages]


def test_every_fixture_row_is_accounted_for() -> None:
    """No row silently dropped: each is either tested above or named in UNCOVERED."""
    corpus("sbom-fixtures")
    for r in ROWS:
        assert r["test_func"] in UNCOVERED or r["n_packages"] > 0, _id(r)
    assert len([r for r in ROWS if r["test_func"] not in UNCOVERED]) >= 40
