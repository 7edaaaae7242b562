import pytest

from imagewise.errors import ConfigError
from imagewise.findings import Finding, Severity
from imagewise.policy.evaluate import CheckFacts, Vuln, evaluate
from imagewise.policy.model import default_policy, parse_policy


def test_default_policy_parses_and_encodes_the_guide():
    p = default_policy()
    assert p.security_baseline.require_non_root and p.optimization.min_efficiency == 0.9
    assert "org.opencontainers.image.source" in p.labels.required


@pytest.mark.parametrize(
    "text,needle",
    [
        ("optimizaton: {}", "unknown key 'optimizaton'"),
        ("optimization: {max_size: huge}", "optimization.max_size: expected a size"),
        ("optimization: {min_efficiency: 2}", "from 0 to 1"),
        ("security_baseline: {require_non_root: 'yes'}", "true or false"),
        ("security_baseline: {max_vulnerability_severity: severe}", "low|medium|high|critical"),
        ("security_baseline: {colour: red}", "unknown key security_baseline.colour"),
        ("rules: {DL3008: loud}", "rules.DL3008"),
        ("tags: {allowed_patterns: ['(']}", "bad regular expression"),
        ("- a list", "a mapping at the top level"),
        ("a: [", "not valid YAML"),
    ],
)
def test_policy_validation_messages(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_policy(text, "p.yaml")
    assert needle in str(e.value)


def f(rule, sev=Severity.WARNING, msg="m", saved=0):
    return Finding(rule, sev, rule, msg, bytes_saved=saved)


def test_verdict_fails_on_gates_and_rule_levels():
    facts = CheckFacts(
        size_bytes=10,
        layer_count=3,
        efficiency=0.5,
        reclaimable_bytes=10,
        tag="latest",
        base_image="ubuntu",
        findings=(f("CIS-DI-0001"), f("DL3008"), f("IW-IMG-003", Severity.INFO)),
        areas={"CIS-DI-0001": "security", "DL3008": "build", "IW-IMG-003": "operations"},
        vulns=(Vuln("GHSA-1", "jinja2", "2.10", "high", ("2.10.1",)),),
        vuln_scan_ran=True,
    )
    v = evaluate(default_policy(), facts)
    rules = {x.rule for x in v.violations}
    assert not v.passed
    assert {
        "optimization.min_efficiency",
        "security_baseline.require_non_root",
        "security_baseline.require_pinned_base",
        "tags.forbid_latest",
        "labels.required",
        "security_baseline.max_vulnerability_severity",
    } <= rules
    assert "CIS-DI-0001" not in rules  # judged once, by its gate
    sec = next(s for s in v.scores if s.area == "security")
    assert sec.grade in "BCDF" and sec.top[0].rule == "CIS-DI-0001"


def test_rule_off_and_clean_pass():
    p = parse_policy("rules: {DL3008: off}\nlabels: {required: []}\ntags: {forbid_latest: false}")
    # every gate's input is there (a vulnerability scan that found nothing): a complete PASS
    facts = CheckFacts(
        size_bytes=10,
        layer_count=1,
        efficiency=1.0,
        reclaimable_bytes=0,
        tag="1.2.3",
        base_image="python:3.12-slim",
        findings=(f("DL3008"),),
        vuln_scan_ran=True,
        lint_ran=True,
    )
    v = evaluate(p, facts)
    assert v.passed and v.status == "PASS", v.violations
    assert not v.findings
    assert v.score_json()["grade"] == "A"


def test_tag_conventions():
    p = default_policy()
    for tag, ok in [
        ("1.4.2", True),
        ("v2.0.0-rc.1", True),
        ("prod", True),
        ("20261127T1200", True),
        ("feature_x", False),
    ]:
        v = evaluate(p, CheckFacts(tag=tag, labels={k: "x" for k in p.labels.required}))
        assert (not any(x.rule.startswith("tags.") for x in v.violations)) == ok, tag


def test_partial_policy_keeps_the_default_gates():
    p = parse_policy("rules: {DL3008: off}\noptimization: {max_layers: 5}\n", "p.yaml")
    assert p.rules["DL3008"] == "off" and p.rules["CIS-DI-0001"] == "error"  # merged with default
    assert p.optimization.max_layers == 5 and p.optimization.min_efficiency == 0.9
    assert p.labels.required and p.security_baseline.allowed_registries


def test_extends_none_starts_from_no_gates():
    p = parse_policy("extends: none\nrules: {DL3008: off}\n", "p.yaml")
    assert p.optimization.min_efficiency is None and not p.labels.required
    assert p.rules == {"DL3008": "off"}
    with pytest.raises(ConfigError, match="default or none"):
        parse_policy("extends: strict\n", "p.yaml")


# -- a gate whose input is missing: INCOMPLETE, not PASS ----------------------------------------

CLEAN: dict = {
    "size_bytes": 10,
    "layer_count": 1,
    "efficiency": 1.0,
    "reclaimable_bytes": 0,
    "tag": "1.2.3",
    "base_image": "python:3.12-slim",
    "labels": {},
    "lint_ran": True,
    "vuln_scan_ran": True,
}
NO_LABELS = "labels: {required: []}\n"


def test_missing_vulnerability_data_makes_the_verdict_incomplete():
    p = parse_policy(NO_LABELS)
    facts = CheckFacts(
        **{
            **CLEAN,
            "vuln_scan_ran": False,
            "vuln_note": "vulnerability scan skipped: no database at /x",
        }
    )
    v = evaluate(p, facts)
    assert not v.passed and v.status == "INCOMPLETE" and not v.violations
    assert [u.gate for u in v.not_checked] == ["security_baseline.max_vulnerability_severity"]
    assert "no database at /x" in v.not_checked[0].reason
    assert v.to_json()["status"] == "INCOMPLETE" and v.to_json()["not_checked"]
    sec = next(s for s in v.scores if s.area == "security")
    assert any("no database" in n for n in sec.not_checked)
    allowed = evaluate(p, facts, allow_incomplete=True)
    assert allowed.passed and allowed.status == "INCOMPLETE"
    # without the gate nothing is missing
    off = parse_policy(NO_LABELS + "security_baseline: {max_vulnerability_severity: null}\n")
    assert evaluate(off, facts).status == "PASS"


def test_missing_dockerfile_and_tag_are_named_and_build_is_not_scored():
    p = parse_policy(NO_LABELS)
    v = evaluate(p, CheckFacts(**{**CLEAN, "base_image": "", "tag": None, "lint_ran": False}))
    assert v.status == "INCOMPLETE" and not v.passed
    assert {u.gate for u in v.not_checked} == {
        "security_baseline.require_pinned_base",
        "security_baseline.allowed_registries",
        "tags.forbid_latest",
        "tags.allowed_patterns",
    }
    build = next(s for s in v.scores if s.area == "build")
    assert build.score is None and build.grade == "-" and not build.checked
    assert v.score_json()["build"]["checked"] is False
    # the total is the mean of the areas that ran
    assert v.score_json()["total"] == 100


def test_a_violation_is_fail_even_when_incomplete():
    v = evaluate(
        parse_policy(NO_LABELS),
        CheckFacts(**{**CLEAN, "vuln_scan_ran": False, "size_bytes": 10**12}),
    )
    assert v.status == "FAIL" and v.not_checked


# -- extends: none starts from no gates; every documented key, both ways ------------------------


def _gates(text, facts):
    return {x.rule for x in evaluate(parse_policy(text, "p.yaml"), facts).violations}


BAD = CheckFacts(
    size_bytes=2 * 10**9,
    layer_count=50,
    efficiency=0.5,
    reclaimable_bytes=10**9,
    tag="latest",
    base_image="evil.example/base",
    labels={},
    lint_ran=True,
    findings=(
        f("DKL-DI-0005", Severity.ERROR),
        f("CIS-DI-0001"),
        f("secret/private-key", Severity.ERROR),
    ),
    areas={
        "DKL-DI-0005": "performance",
        "CIS-DI-0001": "security",
        "secret/private-key": "security",
    },
    vulns=(Vuln("GHSA-1", "jinja2", "2.10", "high", ("2.10.1",)), Vuln("GHSA-2", "x", "1", "", ())),
    vuln_scan_ran=True,
)


def test_extends_none_has_no_gate_at_all():
    p = parse_policy("extends: none\n", "p.yaml")
    v = evaluate(p, BAD)
    assert v.violations == () and v.not_checked == () and v.passed
    assert evaluate(p, CheckFacts(tag=None, vuln_scan_ran=False)).not_checked == ()


@pytest.mark.parametrize(
    "key,on,off_value",
    [
        ("security_baseline.allowed_registries", "[docker.io]", "[]"),
        ("security_baseline.require_pinned_base", "true", "false"),
        ("security_baseline.require_non_root", "true", "false"),
        ("security_baseline.forbid_secrets", "true", "false"),
        ("security_baseline.max_vulnerability_severity", "medium", "null"),
        ("optimization.max_size", "1GB", "null"),
        ("optimization.max_layers", "40", "null"),
        ("optimization.min_efficiency", "0.9", "null"),
        ("optimization.max_reclaimable_bytes", "50MB", "null"),
        ("optimization.forbid_caches", "true", "false"),
        ("labels.required", "[org.opencontainers.image.source]", "[]"),
        ("tags.forbid_latest", "true", "false"),
    ],
)
def test_each_gate_in_the_default_and_off_from_none(key, on, off_value):
    section, name = key.split(".")
    default = default_policy()
    assert key in {x.rule for x in evaluate(default, BAD).violations}  # on by default
    alone = f"extends: none\n{section}: {{{name}: {on}}}\n"
    assert _gates(alone, BAD) == {key}  # on its own it is the only gate
    assert key not in _gates(f"{section}: {{{name}: {off_value}}}\n", BAD)  # off over the default
    assert _gates(f"extends: none\n{section}: {{{name}: {off_value}}}\n", BAD) == set()


def test_tags_allowed_patterns_both_ways():
    facts = CheckFacts(**{**CLEAN, "tag": "feature_x"})
    assert "tags.allowed_patterns" in {x.rule for x in evaluate(default_policy(), facts).violations}
    assert _gates("extends: none\ntags: {allowed_patterns: ['^v']}\n", facts) == {
        "tags.allowed_patterns"
    }
    assert _gates("extends: none\n", facts) == set()


def test_unknown_severity_and_only_fixable_both_ways():
    unknown = CheckFacts(**{**CLEAN, "vulns": (Vuln("GHSA-2", "x", "1", "", ()),)})
    gate = "security_baseline.max_vulnerability_severity"
    assert gate in _gates("", unknown)  # unknown counts as high by default
    assert gate not in _gates("security_baseline: {unknown_severity: low}\n", unknown)
    assert gate not in _gates("security_baseline: {only_fixable: true}\n", unknown)
    p = parse_policy("extends: none\n")
    assert p.security_baseline.unknown_severity == "high" and not p.security_baseline.only_fixable


def test_max_ignore_days_both_ways():
    from datetime import date

    from imagewise.policy.evaluate import Ignore

    facts = CheckFacts(
        **{
            **CLEAN,
            "today": date(2026, 1, 1),
            "ignores": (
                Ignore("CVE-1", ".imagewise-ignore.yaml:3"),
                Ignore("CVE-2", ".trivyignore:1", date(2026, 2, 1)),
                Ignore("CVE-3", ".trivyignore:2", date(2027, 1, 1)),
            ),
        }
    )
    v = evaluate(default_policy(), facts)
    msgs = [x.message for x in v.violations if x.rule == "security_baseline.max_ignore_days"]
    assert len(msgs) == 2 and "CVE-1 never expires" in msgs[0] and "CVE-3" in msgs[1]
    assert "security_baseline.max_ignore_days" not in _gates("extends: none\n", facts)
    assert _gates("extends: none\nsecurity_baseline: {max_ignore_days: 400}\n", facts) == {
        "security_baseline.max_ignore_days"
    }


def test_allowed_registries_gate_matches_like_iw102():
    facts = CheckFacts(**{**CLEAN, "base_image": "europe-docker.pkg.dev/p/r/img:1.0"})
    assert (
        _gates("extends: none\nsecurity_baseline: {allowed_registries: ['*.pkg.dev']}\n", facts)
        == set()
    )
    hub = CheckFacts(**{**CLEAN, "base_image": "index.docker.io/library/python:3.12"})
    assert (
        _gates("extends: none\nsecurity_baseline: {allowed_registries: [docker.io]}\n", hub)
        == set()
    )


# -- one problem, one finding --------------------------------------------------------------------


def test_the_same_problem_at_the_same_place_is_one_finding():
    from imagewise.findings import Location

    df = "Dockerfile"
    env = [
        Finding("IW109", Severity.ERROR, "t", "ENV DB_PASSWORD", Location(df, 5)),
        Finding("DL3064", Severity.WARNING, "t", "sensitive", Location(df, 5)),
        Finding(
            "CIS-DI-0010",
            Severity.ERROR,
            "t",
            "ENV DB_PASSWORD=sa***",
            Location(df, 5, path="config.Env.DB_PASSWORD"),
            extra={"dockerfile_line": 5},
        ),
        Finding(
            "secret/password-assignment",
            Severity.WARNING,
            "t",
            "password",
            Location(df, 5, path="config.Env.DB_PASSWORD"),
            extra={"dockerfile_line": 5},
        ),
    ]
    apt = [
        Finding(
            "DKL-DI-0005",
            Severity.ERROR,
            "t",
            "apt cache",
            Location(layer_index=1, path="/var/lib/apt/lists/x"),
        ),
        Finding(
            "IW-WASTE-APT-LISTS",
            Severity.WARNING,
            "t",
            "lists",
            bytes_saved=8,
            location=Location(layer_index=1, path="/var/lib/apt/lists/y"),
        ),
        Finding(
            "IW-WASTE-APT-ARCHIVES",
            Severity.WARNING,
            "t",
            "debs",
            bytes_saved=9,
            location=Location(layer_index=1, path="/var/cache/apt/z"),
        ),
    ]
    other = [
        Finding(
            "IW-WASTE-APT-LISTS",
            Severity.WARNING,
            "t",
            "lists in another layer",
            location=Location(layer_index=3, path="/var/lib/apt/lists/y"),
        ),
        Finding(
            "secret/private-key", Severity.ERROR, "t", "key", Location(layer_index=3, path="k")
        ),
    ]
    facts = CheckFacts(
        **{
            **CLEAN,
            "findings": tuple(env + apt + other),
            "areas": {
                "IW109": "security",
                "DL3064": "security",
                "CIS-DI-0010": "security",
                "DKL-DI-0005": "performance",
                "IW-WASTE-APT-LISTS": "performance",
                "IW-WASTE-APT-ARCHIVES": "performance",
                "secret/private-key": "security",
                "secret/password-assignment": "security",
            },
        }
    )
    v = evaluate(parse_policy(NO_LABELS), facts)
    by_rule = {x.rule: x for x in v.findings}
    assert sorted(x.rule for x in v.findings) == [
        "CIS-DI-0010",
        "IW-WASTE-APT-LISTS",
        "IW-WASTE-APT-LISTS",
        "secret/private-key",
    ]
    assert by_rule["CIS-DI-0010"].extra["also"] == ["IW109", "DL3064", "secret/password-assignment"]
    apt_kept, other_layer = [x for x in v.findings if x.rule == "IW-WASTE-APT-LISTS"]
    # the waste finding is kept for caches: it knows the bytes and the fix; it takes the
    # group's highest severity, and the saving of both waste findings
    assert apt_kept.extra["also"] == ["DKL-DI-0005", "IW-WASTE-APT-ARCHIVES"]
    assert apt_kept.severity == Severity.ERROR and apt_kept.bytes_saved == 17
    assert "also" not in other_layer.extra  # another layer: another problem
    gates = [x.rule for x in v.violations]
    assert gates.count("security_baseline.forbid_secrets") == 2  # the ENV and the key file
    assert gates.count("optimization.forbid_caches") == 1 and "IW109" not in gates
    # counted once: the same score as the kept findings alone
    alone = evaluate(
        parse_policy(NO_LABELS),
        CheckFacts(**{**CLEAN, "areas": facts.areas, "findings": (env[2], apt_kept, *other)}),
    )
    assert [s.score for s in v.scores] == [s.score for s in alone.scores]


def test_a_rule_turned_off_leaves_the_next_one_of_its_group():
    from imagewise.findings import Location

    items = (
        Finding("CIS-DI-0010", Severity.ERROR, "t", "env", Location(path="config.Env.A")),
        Finding(
            "secret/password-assignment", Severity.WARNING, "t", "pw", Location(path="config.Env.A")
        ),
    )
    v = evaluate(
        parse_policy(NO_LABELS + "rules: {CIS-DI-0010: off}\n"),
        CheckFacts(**{**CLEAN, "findings": items}),
    )
    assert [x.rule for x in v.findings] == ["secret/password-assignment"]
    assert "also" not in v.findings[0].extra
    assert [x.rule for x in v.violations] == ["security_baseline.forbid_secrets"]


def test_the_default_policy_json_twin_says_what_the_yaml_says() -> None:
    """default.json stands in for default.yaml at start-up (no YAML parser for commands that
    read no policy file); after editing default.yaml write it again with:
    python -c "import json,yaml;from pathlib import Path as P;d=P('src/imagewise/policy');
    (d/'default.json').write_text(json.dumps(yaml.safe_load((d/'default.yaml').read_text()),
    indent=1)+chr(10))" """
    import json
    from pathlib import Path

    import yaml

    from imagewise.policy import model

    here = Path(model.__file__).parent
    assert json.loads((here / "default.json").read_text()) == yaml.safe_load(
        (here / "default.yaml").read_text()
    ), "default.json is stale: write it again from default.yaml (see this test's docstring)"
    fast = model.default_policy()
    slow = model.parse_policy(model.default_text(), "<default policy>", base=False)
    assert fast.replace(storage_management=None) == slow.replace(storage_management=None)
    a, b = fast.storage_management.retention, slow.storage_management.retention
    assert (a.rules, a.keep_env_tags, a.keep_promoted_days, a.untagged_hours) == (
        b.rules,
        b.keep_env_tags,
        b.keep_promoted_days,
        b.untagged_hours,
    )
