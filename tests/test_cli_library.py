"""The work the CLI used to do is library work: each function here gives what the command
prints, called directly (as the service and workers call it)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import CliRunner
from fixtures_images import BuiltImage
from fixtures_registry import RegistryServer, build_image, push_image, unique_repo

from imagewise.cli.main import cli
from imagewise.encoders import COPY, INSPECT, RULES, TAGS
from imagewise.rules import catalog, explain_text, find_rule
from imagewise.vulns.target import db_update_for, is_sbom_file, scan_target


def _cli_json(args: list[str]) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_inspect_image_is_the_inspect_document(
    random_image_layout: tuple[str, BuiltImage],
) -> None:
    from imagewise.inspection import inspect_image, inspect_table

    ref, img = random_image_layout
    doc = inspect_image(ref)
    assert doc["digest"] == img.digest and len(doc["layers"]) == len(img.layer_tars)
    printed = _cli_json(["inspect", "--format", "json", ref])
    assert printed == json.loads(INSPECT.encode("json", doc))
    assert inspect_table(doc).splitlines()[1].split()[-1] == img.digest


def test_list_tags_is_the_tags_document(registry: RegistryServer) -> None:
    from imagewise.tags import list_tags, tags_table

    repo = unique_repo("lib")
    push_image(registry, repo, "1.0", build_image((10,), seed=3))
    doc = list_tags(f"docker://{registry.host}/{repo}:ignored")
    assert doc == {"repository": f"{registry.host}/{repo}", "tags": ["1.0"]}
    assert tags_table(doc) == "1.0\n"
    assert _cli_json(["tags", "--format", "json", f"{registry.host}/{repo}"])["tags"] == ["1.0"]
    assert TAGS.encode("table", doc) == "1.0\n"


def test_copy_summary_names_a_conversion(random_image_layout: tuple[str, BuiltImage]) -> None:
    from imagewise.copy import CopyResult, copy_summary

    result = CopyResult("src", "oci:x", "sha256:b", "m", 1, 2, 1, 0, 2048, "sha256:a")
    text = copy_summary(result)
    assert text.startswith("oci:x sha256:b: 2 blobs copied (2.0 kB), 1 already present")
    assert "the source digest was sha256:a" in text
    assert "recompressed" not in text
    squeezed = copy_summary(
        result.replace(compression="zstd", layer_bytes_before=2000, layer_bytes_after=1500)
    )
    assert "layers recompressed to zstd: 2.0 kB -> 1.5 kB (-25.0%)" in squeezed
    assert COPY.get("table").function() is copy_summary


def test_rules_and_explain_come_from_the_library(capsys) -> None:  # type: ignore[no-untyped-def]
    infos = catalog()
    assert RULES.encode("table", infos) == CliRunner().invoke(cli, ["rules"]).output
    info = find_rule("dl3008")
    assert info.id == "DL3008"
    assert explain_text(info) == CliRunner().invoke(cli, ["explain", "DL3008"]).output
    try:
        find_rule("IW-WASTE-1")
    except Exception as e:  # noqa: BLE001 - the message is what is checked
        assert "did you mean" in str(e) and type(e).__name__ == "UsageError"
    else:
        raise AssertionError("an unknown rule must be an error")


def test_scan_target_tells_an_sbom_from_an_image(tmp_path: Path) -> None:
    sbom = tmp_path / "sbom.json"
    sbom.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "components": [
                    {
                        "type": "library",
                        "name": "jinja2",
                        "version": "2.10",
                        "purl": "pkg:pypi/jinja2@2.10",
                    }
                ],
            }
        )
    )
    assert is_sbom_file(str(sbom)) and not is_sbom_file(str(tmp_path))
    assert not is_sbom_file(str(tmp_path / "missing.json"))
    db = tmp_path / "osv.sqlite"
    assert CliRunner().invoke(cli, ["db", "import", "examples/osv", "--db", str(db)]).exit_code == 0
    result = scan_target(str(sbom), db)
    ids = {v.id for v in result.vulnerabilities}
    assert ids == {"CVE-2019-10906", "CVE-2020-28493"}


def test_a_named_database_is_not_updated_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "osv.sqlite"
    assert db_update_for(db) is None
    assert db_update_for(None, offline=True) is None
    assert db_update_for(db, update_db=True) is not None


def test_no_encoder_lives_in_the_cli() -> None:
    from imagewise.encoders import REGISTRIES

    targets = [e.encode for f in REGISTRIES.values() for e in (f.get(i) for i in f.ids)]
    assert len(targets) >= 25
    assert [t for t in targets if t.startswith("imagewise.cli")] == []


def test_lint_files_gives_what_lint_prints_and_fixes_in_place(tmp_path: Path) -> None:
    from imagewise.dockerfile.files import lint_config, lint_files, preview_fix, read_dockerfiles

    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n")
    broken = tmp_path / "Broken"
    broken.write_text("FROM\n")
    cfg = lint_config()
    good, bad = lint_files([str(df), str(broken)], cfg)
    assert bad.error is not None and bad.findings == []
    ours = sorted(f.rule for f in good.findings)
    printed = CliRunner().invoke(cli, ["lint", "--format", "json", str(df)])
    assert ours == sorted(f["rule"] for f in json.loads(printed.output)["findings"])
    (preview,) = [preview_fix(i, None) for i in read_dockerfiles([str(df)])]
    assert preview.fix is not None and preview.fix.changed
    assert df.read_text().count("--no-install-recommends") == 0  # a preview writes nothing
    (fixed,) = lint_files([str(df)], cfg, fix=True)
    assert fixed.fix is not None and "--no-install-recommends" in df.read_text()
    assert fixed.text == df.read_text()


def test_analyze_gates_follow_dives_precedence(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from imagewise.analysis.gates import EFFICIENCY, USER_PERCENT, WASTED, gates_for

    monkeypatch.chdir(tmp_path)
    assert gates_for() == []
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.5\n")
    by_rule = {g.rule: g.threshold for g in gates_for(ci=True, user_percent="0.2")}
    # dive's defaults < the .dive-ci file < the values given; dive disables wasted bytes
    assert by_rule == {EFFICIENCY: 0.5, WASTED: None, USER_PERCENT: 0.2}
    assert {g.rule: g.threshold for g in gates_for(wasted="1MB")} == {WASTED: 1_000_000}
