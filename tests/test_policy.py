import pytest

from imagewise.errors import ConfigError
from imagewise.findings import Finding, Severity
from imagewise.policy.evaluate import CheckFacts, Vuln, evaluate
from imagewise.policy.model import default_policy, parse_policy


def test_default_policy_parses_and_encodes_the_guide():
    p = default_policy()
    assert p.security_baseline.require_non_root and p.optimization.min_efficiency == 0.9
    assert "org.opencontainers.image.source" in p.labels.required


@pytest.mark.parametrize("text,needle", [
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
])
def test_policy_validation_messages(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_policy(text, "p.yaml")
    assert needle in str(e.value)


def f(rule, sev=Severity.WARNING, msg="m", saved=0):
    return Finding(rule, sev, rule, msg, bytes_saved=saved)


def test_verdict_fails_on_gates_and_rule_levels():
    facts = CheckFacts(size_bytes=10, layer_count=3, efficiency=0.5, reclaimable_bytes=10,
                       tag="latest", base_image="ubuntu",
                       findings=(f("CIS-DI-0001"), f("DL3008"), f("IW-IMG-003", Severity.INFO)),
                       areas={"CIS-DI-0001": "security", "DL3008": "build", "IW-IMG-003": "operations"},
                       vulns=(Vuln("GHSA-1", "jinja2", "2.10", "high", ("2.10.1",)),),
                       vuln_scan_ran=True)
    v = evaluate(default_policy(), facts)
    rules = {x.rule for x in v.violations}
    assert not v.passed
    assert {"optimization.min_efficiency", "security_baseline.require_non_root",
            "security_baseline.require_pinned_base", "tags.forbid_latest", "labels.required",
            "security_baseline.max_vulnerability_severity"} <= rules
    assert "CIS-DI-0001" not in rules  # judged once, by its gate
    sec = next(s for s in v.scores if s.area == "security")
    assert sec.grade in "BCDF" and sec.top[0].rule == "CIS-DI-0001"


def test_rule_off_and_clean_pass():
    p = parse_policy("rules: {DL3008: off}\nlabels: {required: []}\ntags: {forbid_latest: false}")
    facts = CheckFacts(size_bytes=10, layer_count=1, efficiency=1.0, reclaimable_bytes=0,
                       tag="1.2.3", base_image="python:3.12-slim", findings=(f("DL3008"),),
                       vuln_scan_ran=False)
    v = evaluate(p, facts)
    assert v.passed, v.violations
    assert not v.findings
    assert v.score_json()["grade"] == "A"


def test_tag_conventions():
    p = default_policy()
    for tag, ok in [("1.4.2", True), ("v2.0.0-rc.1", True), ("prod", True), ("20261127T1200", True),
                    ("feature_x", False)]:
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
