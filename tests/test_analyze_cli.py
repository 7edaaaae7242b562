"""``imagewise analyze`` and ``imagewise diff``: formats, gates (dive's rules and .dive-ci files),
exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner, Result
from conftest import corpus
from fixtures_images import TarFile, build_image, tar_bytes, write_oci_layout

from imagewise.cli.main import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def dive_image() -> str:
    return f"docker-archive:{corpus('dive', 'test-docker-image.tar')}"


def test_json_envelope_and_values(dive_image: str) -> None:
    res = run("analyze", dive_image, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "imagewise/analysis/v1"
    assert (doc["efficiency"], doc["wasted_bytes"], doc["size_bytes"], doc["user_size_bytes"]) == (
        0.9844212134184309,
        32025,
        1220598,
        66237,
    )
    assert doc["user_wasted_percent"] == 0.4834911001404049
    assert doc["reclaimable_bytes"] == 32025
    assert len(doc["layers"]) == 14 and doc["layers"][13]["created_by"].endswith(
        "chmod +x /root/saved.txt"
    )
    assert doc["inefficient_files"][0] == {
        "path": "/root/saved.txt",
        "count": 2,
        "wasted_bytes": 12810,
    }
    assert all(f["bytes_saved"] > 0 and "layer_index" in f and f["fix"] for f in doc["leftovers"])
    assert "gates" not in doc


def test_table_output(dive_image: str) -> None:
    res = run("analyze", dive_image)
    assert res.exit_code == 0
    for text in (
        "efficiency:           98.4421 %",
        "wastedBytes:          32025 bytes",
        "userWastedPercent:    48.3491 %",
        "reclaimable bytes:      32025 bytes",
        "/root/example/somefile1.txt",
        "fix: ",
    ):
        assert text in res.stdout


# dive's own evaluator cases against this image (cmd/dive/cli/internal/command/ci/evaluator_test.go)
@pytest.mark.parametrize(
    "eff,wasted,pct,code,statuses",
    [
        ("0.99", "1B", "0.01", 1, ["FAIL", "FAIL", "FAIL"]),
        ("0.9", "50kB", "0.5", 0, ["PASS", "PASS", "PASS"]),
        ("disabled", "disabled", "disabled", 0, ["SKIP", "SKIP", "SKIP"]),
        ("0.9", "1B", "0.5", 1, ["PASS", "FAIL", "PASS"]),
    ],
)
def test_dive_rule_cases(
    dive_image: str, eff: str, wasted: str, pct: str, code: int, statuses: list[str]
) -> None:
    res = run(
        "analyze",
        dive_image,
        "--fail-under-efficiency",
        eff,
        "--max-wasted-bytes",
        wasted,
        "--max-user-wasted-percent",
        pct,
    )
    assert res.exit_code == code, res.output
    lines = [
        ln.strip()
        for ln in res.stdout.splitlines()
        if ln.startswith(("  PASS  ", "  FAIL  ", "  SKIP  "))
    ]
    assert [ln.split()[0] for ln in lines] == statuses
    assert [ln.split()[1] for ln in lines] == [
        "lowest-efficiency",
        "highest-wasted-bytes",
        "highest-user-wasted-percent",
    ]
    assert res.stdout.rstrip().splitlines()[-1].startswith("FAIL" if code else "PASS")


@pytest.mark.parametrize("value,code", [("32025", 0), ("32kB", 1), ("32KiB", 0), ("31Ki", 1)])
def test_max_reclaimable_bytes(dive_image: str, value: str, code: int) -> None:
    res = run("analyze", dive_image, "--max-reclaimable-bytes", value, "--format", "json")
    assert res.exit_code == code
    doc = json.loads(res.stdout)
    assert doc["passed"] is (code == 0)
    assert doc["gates"][0]["rule"] == "highest-reclaimable-bytes"


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--fail-under-efficiency", "1.1"),
        ("--fail-under-efficiency", "-0.1"),
        ("--fail-under-efficiency", "not_a_number"),
        ("--max-wasted-bytes", "not_a_size"),
        ("--max-user-wasted-percent", "1.1"),
        ("--max-user-wasted-percent", "x"),
    ],
)
def test_misconfigured_rules_are_usage_errors(dive_image: str, flag: str, value: str) -> None:
    res = run("analyze", dive_image, flag, value)
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "imagewise: error:" in res.stderr


@pytest.mark.parametrize(
    "body",
    [
        "rules:\n  lowestEfficiency: 0.99\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: 0.9\n",
        (
            "rules:\n  lowest-efficiency: 0.99\n  highest-wasted-bytes: 20MB\n"
            "  highest-user-wasted-percent: 0.9\n"
        ),
    ],
)
def test_dive_ci_file_both_spellings(dive_image: str, tmp_path: Path, body: str) -> None:
    cfg = tmp_path / ".dive-ci"
    cfg.write_text(body)
    res = run("analyze", dive_image, "--ci-config", str(cfg))
    assert res.exit_code == 1
    assert "FAIL  lowest-efficiency (0.99)" in res.stdout
    assert "PASS  highest-wasted-bytes (20MB)" in res.stdout
    # an explicit flag wins over the file
    res = run("analyze", dive_image, "--ci-config", str(cfg), "--fail-under-efficiency", "0.9")
    assert res.exit_code == 0, res.stdout


def test_ci_reads_dive_ci_in_cwd_and_defaults(
    dive_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = run("analyze", dive_image, "--ci")  # dive's defaults: user wasted 0.48 > 0.1 fails
    assert res.exit_code == 1 and "FAIL  highest-user-wasted-percent (0.1)" in res.stdout
    (tmp_path / ".dive-ci").write_text("rules:\n  highest-user-wasted-percent: 0.5\n")
    res = run("analyze", dive_image, "--ci")
    assert res.exit_code == 0 and "PASS  highest-user-wasted-percent (0.5)" in res.stdout
    assert "SKIP  highest-wasted-bytes (disabled)" in res.stdout


def test_bad_ci_file(dive_image: str, tmp_path: Path) -> None:
    cfg = tmp_path / "ci.yaml"
    cfg.write_text("rules:\n  smallestThing: 3\n")
    res = run("analyze", dive_image, "--ci-config", str(cfg))
    assert res.exit_code == 2 and "unknown rule" in res.stderr


def test_missing_image_is_one_line_error(tmp_path: Path) -> None:
    res = run("analyze", f"docker-archive:{tmp_path / 'nope.tar'}")
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_not_an_image(tmp_path: Path) -> None:
    res = run("analyze", f"docker-archive:{corpus('dive', 'test-uncompressed-image.tar')}")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_html_to_file_with_gate_lines_on_stderr(dive_image: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = run("analyze", dive_image, "--format", "html", "-o", str(out), "--max-wasted-bytes", "1B")
    assert res.exit_code == 1
    assert "FAIL  highest-wasted-bytes (1B)" in res.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html and "https://" not in html


def _layout(tmp: Path, name: str, layers: list[dict[str, bytes | TarFile]]) -> str:
    img = build_image([tar_bytes(x) for x in layers], compression="gzip")
    return write_oci_layout(img, tmp / name)


def test_diff(tmp_path: Path) -> None:
    base = {"etc/": TarFile(kind="dir"), "etc/os-release": b"v1\n"}
    a = _layout(
        tmp_path,
        "a",
        [
            base,
            {
                "app/": TarFile(kind="dir"),
                "app/main": b"x" * 100,
                "app/old": b"o" * 10,
                "app/run": TarFile(b"r", mode=0o644),
            },
        ],
    )
    b = _layout(
        tmp_path,
        "b",
        [
            base,
            {
                "app/": TarFile(kind="dir"),
                "app/main": b"y" * 100,
                "app/new": b"n" * 300,
                "app/run": TarFile(b"r", mode=0o755),
            },
            {"app/.wh.old": b""},
        ],
    )
    res = run("diff", a, b, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "imagewise/diff/v1"
    assert [c["path"] for c in doc["added"]] == ["/app/new"]
    assert [c["path"] for c in doc["removed"]] == ["/app/old"]
    assert [c["path"] for c in doc["changed"]] == ["/app/main", "/app/run"]
    assert doc["delta_bytes"] == 300 - 10
    rows = doc["layers"]
    assert [r["same"] for r in rows] == [True, False, False]
    assert rows[1]["delta_bytes"] == 300 - 10 and rows[2]["a_size_bytes"] is None
    res = run("diff", a, b)
    assert res.exit_code == 0
    assert (
        "+ /app/new" in res.stdout
        and "~ /app/run" in res.stdout
        and "mode 0644 -> 0755" in res.stdout
    )


def test_same_figures_on_every_transport(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    from fixtures_images import write_docker_archive
    from fixtures_registry import unique_repo

    layers = [
        {
            "etc/": TarFile(kind="dir"),
            "etc/big": b"b" * 5000,
            "tmp/": TarFile(kind="dir"),
            "tmp/x": b"t" * 300,
        },
        {"etc/big": b"B" * 4000, "tmp/.wh.x": b""},
        {"etc/.wh..wh..opq": b"", "etc/new": b"n" * 10},
    ]
    img = build_image([tar_bytes(x) for x in layers], compression="gzip", fmt="docker")
    refs = [
        write_oci_layout(img, tmp_path / "oci"),
        write_docker_archive(img, tmp_path / "img.tar"),
    ]
    repo = f"docker://{registry.host}/{unique_repo('analyze')}:v1"
    assert run("copy", refs[0], repo).exit_code == 0
    refs.append(repo)
    docs = []
    for ref in refs:
        res = run("analyze", ref, "--format", "json")
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout))
    keys = (
        "efficiency",
        "wasted_bytes",
        "size_bytes",
        "reclaimable_bytes",
        "inefficient_files",
        "final_bytes",
    )
    assert all({k: d[k] for k in keys} == {k: docs[0][k] for k in keys} for d in docs)
    assert docs[0]["reclaimable_bytes"] == 5000 + 300 + 4000
    assert docs[0]["final_bytes"] == 10


def test_output_file_is_announced(dive_image: str, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    res = run("analyze", dive_image, "--format", "json", "-o", str(out))
    assert res.exit_code == 0 and json.loads(out.read_text())["schema"] == "imagewise/analysis/v1"
    assert res.stdout == "" and f"wrote {out} (json analysis)" in res.stderr
