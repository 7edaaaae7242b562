"""The Grafana dashboard and the Prometheus alerting rules in deploy/ are valid and use only
metrics the service exposes (names read from a live scrape)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

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
