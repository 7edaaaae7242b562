"""deploy/ is valid: the Grafana dashboard and the Prometheus alerting rules use only metrics the
service exposes (names read from a live scrape); the compose file against the Compose
Specification's schema, the Kubernetes manifests against the Kubernetes schemas, both running
the commands the tests run (tests/test_service_celery.py); the service image's Dockerfile lints
clean."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from deploy_support import COMPOSE, KUBERNETES, compose_command

ROOT = Path(__file__).resolve().parents[1]


def _service_metric_names(tmp_path: Path) -> set[str]:
    from imagewise.service.db import connect
    from imagewise.service.metrics import exposition
    from imagewise.service.queue import SqlJobQueue

    engine = connect(f"sqlite:///{tmp_path / 'm.sqlite'}")
    text = exposition(engine, SqlJobQueue(engine)).decode()
    names = set()
    suffixes = {
        "counter": ("_total",),
        "summary": ("_sum", "_count"),
        "histogram": ("_sum", "_count", "_bucket"),
    }
    for name, kind in re.findall(r"^# TYPE (\w+) (\w+)", text, flags=re.MULTILINE):
        names.add(name)  # the family, and the series Prometheus stores for its type
        names.update(name + suffix for suffix in suffixes.get(kind, ()))
    return names


def _names_in(expr: str) -> set[str]:
    return {n for n in re.findall(r"\b(imagewise_\w+)", expr)}


def test_alert_rules_pass_promtool_and_name_real_metrics(tmp_path: Path) -> None:
    rules = ROOT / "deploy" / "prometheus" / "alerts.yml"
    out = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    import yaml

    exprs = [r["expr"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]]
    known = _service_metric_names(tmp_path)
    for expr in exprs:
        assert _names_in(expr) and _names_in(expr) <= known, expr


def test_grafana_dashboard_queries_real_metrics(tmp_path: Path) -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "imagewise.json").read_text())
    known = _service_metric_names(tmp_path)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        assert _names_in(expr) and _names_in(expr) <= known, expr
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_the_compose_file_is_valid_compose() -> None:
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    doc = yaml.safe_load(COMPOSE.read_text())
    # the schema declares draft-07 without the trailing "#" jsonschema looks its metaschema up by
    jsonschema.Draft7Validator(schema).validate(doc)
    assert {"serve", "worker", "redis", "postgres", "registry"} <= set(doc["services"])
    assert "broker: redis://redis:6379/0" in doc["configs"]["imagewise"]["content"]
    notify = yaml.safe_load(doc["configs"]["registry"]["content"])["notifications"]
    assert notify["endpoints"][0]["url"] == "http://serve:8080/notifications"


def test_the_kubernetes_manifests_are_valid_and_run_the_compose_commands() -> None:
    import kubernetes_validate
    import yaml

    docs = [d for d in yaml.safe_load_all(KUBERNETES.read_text()) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)  # raises when it is not
    args = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
        for d in docs
        if d["kind"] == "Deployment"
    }

    def same(k8s: list[str], compose: list[str]) -> list[str]:
        return [
            ("DB" if "$(IMAGEWISE_DB)" in a or "postgresql" in a else a) for a in k8s or compose
        ]

    assert same(args["imagewise-serve"], []) == same([], compose_command("serve"))
    assert same(args["imagewise-worker"], []) == same([], compose_command("worker"))
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30.0", strict=True)


def test_the_service_image_dockerfile_lints_clean() -> None:
    from imagewise.dockerfile.config import LintConfig
    from imagewise.dockerfile.lint import lint_file

    assert lint_file(ROOT / "deploy" / "Dockerfile", LintConfig()) == []
