"""Alerts: rules judged after the service's work, sent to email, chat and ticket channels,
deduplicated.

Rules (the service config's ``alerts.rules``), each with a ``severity`` and ``channels``:

* after every check of a tag: ``policy_failed`` (the image fails its policy),
  ``secret_found``, ``vulnerability`` (one at or above ``min_severity`` that the previous check
  of the same tag did not have: new since the last scan, not every scan);
* after every build job: ``build_failed`` (an image of the build file was not built);
* after every space report: ``storage_above`` (the report's unique bytes above ``max_bytes``, or
  above ``percent`` of ``capacity_bytes``), ``storage_growth`` (unique bytes growing faster than
  ``max_bytes_per_day`` since the previous report of the same name);
* after every drill: ``drill_failed``;
* on every scheduler round: ``backup_too_old`` (a backup job's newest snapshot older than
  ``hours``);
* when a job ends: ``job_failed`` (it failed after its last attempt; resolved by the next job
  of the same kind and name that succeeds).

An alert's dedup key is ``rule:subject`` (``rule:repository:tag`` for images). It is sent when
it starts firing, again only after ``cooldown`` seconds while it keeps firing, and a resolved
message is sent when the condition clears. The messages of one round are grouped per channel
(``service.channels``: email, chat webhooks, GitHub/GitLab/Jira tickets).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select

from imagewise.errors import ConfigError
from imagewise.service.db import alerts as alerts_table

SEVERITY_ORDER = ("low", "medium", "high", "critical")
#: rule kinds, with what a firing and a resolved message say of their subject
WORDS = {
    "policy_failed": ("fails its policy", "no longer failing its policy"),
    "secret_found": ("contains a secret", "no longer containing a secret"),
    "vulnerability": ("has new vulnerabilities", "no longer having new vulnerabilities"),
    "build_failed": ("fails to build", "builds again"),
    "storage_above": ("uses more storage than allowed", "is back under its storage limit"),
    "storage_growth": ("grows faster than allowed", "grows within its limit again"),
    "drill_failed": ("failed its recovery drill", "passes its recovery drill again"),
    "backup_too_old": ("has no recent backup", "is backed up again"),
    "job_failed": ("failed", "succeeds again"),
}
RULE_KINDS = tuple(WORDS)
IMAGE_RULES = ("policy_failed", "secret_found", "vulnerability")


class AlertConfig:
    def __init__(self, doc: dict[str, Any] | None, where: str = "alerts") -> None:
        doc = doc or {}
        self.cooldown = float(doc.get("cooldown", 3600))
        self.channels: dict[str, dict[str, Any]] = {}
        from imagewise.service.channels import check_channel

        for name, ch in (doc.get("channels") or {}).items():
            self.channels[str(name)] = check_channel(str(name), ch, where)
        self.rules: list[dict[str, Any]] = []
        for i, rule in enumerate(doc.get("rules") or []):
            if not isinstance(rule, dict) or rule.get("when") not in RULE_KINDS:
                raise ConfigError(f"{where}.rules[{i}].when: one of {', '.join(RULE_KINDS)}")
            unknown = [c for c in rule.get("channels", []) if c not in self.channels]
            if unknown:
                raise ConfigError(f"{where}.rules[{i}]: unknown channel {unknown[0]!r}")
            _check_params(rule, f"{where}.rules[{i}]")
            self.rules.append(
                {"name": rule.get("name") or rule["when"], "severity": "warning", **rule}
            )


def _check_params(rule: dict[str, Any], where: str) -> None:
    """The numbers a rule kind needs, present and positive."""
    when = rule["when"]
    need: tuple[str, ...] = {
        "storage_growth": ("max_bytes_per_day",),
        "backup_too_old": ("hours",),
    }.get(when, ())
    if when == "storage_above":
        need = ("max_bytes",) if "max_bytes" in rule else ("capacity_bytes", "percent")
    for key in need:
        value = rule.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where}: {when} needs {' and '.join(need)} (positive numbers)")


def _at_least(sev: str, floor: str) -> bool:
    order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return order.get(sev.lower(), 2) >= order.get(floor.lower(), 2)


def evaluate(
    engine: Engine,
    cfg: AlertConfig,
    image: dict[str, Any],
    result: dict[str, Any],
    previous: dict[str, Any] | None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Judge the image rules for one checked tag (or, when ``result`` has ``build_status``, the
    ``build_failed`` rules for one image of a build job: ``image`` is then ``{"repository": job
    name, "tag": image name}``); send what must be sent; returns the messages."""
    now = now or time.time()
    building = "build_status" in result
    decided: list[tuple[dict[str, Any], bool, str]] = []
    for rule in cfg.rules:
        when = rule["when"]
        if when not in (("build_failed",) if building else IMAGE_RULES):
            continue
        detail = ""
        if when == "build_failed":
            firing = result["build_status"] != "built"
            detail = str(result.get("build_detail") or "") if firing else ""
        elif when == "policy_failed":
            firing = not result["passed"]
            detail = "violations: " + ", ".join(result.get("violations") or []) if firing else ""
        elif when == "secret_found":
            firing = result["secrets"] > 0
            detail = f"{result['secrets']} secret(s)" if firing else ""
        else:
            floor = rule.get("min_severity", "high")
            ids = {
                v
                for v, sev in (result.get("vulnerability_ids") or {}).items()
                if _at_least(sev, floor)
            }
            before = {
                v
                for v, sev in ((previous or {}).get("vulnerability_ids") or {}).items()
                if _at_least(sev, floor)
            }
            new = sorted(ids - before)
            key = _key(rule, _image_subject(image, building))
            firing = bool(new) or (bool(ids) and _state(engine, key) == "firing")
            detail = f"new: {', '.join(new)}" if new else ""
            if firing and not new:
                continue  # still firing with nothing new: no reminder, not resolved either
        decided.append((rule, firing, detail))
    subject = _image_subject(image, building)
    extra = {} if building else {"image": subject, "digest": image["digest"]}
    return _judge_all(engine, cfg, subject, decided, now, extra)


def _image_subject(image: dict[str, Any], building: bool) -> str:
    if building:
        return f"{image['repository']}/{image['tag']}"  # build job / image
    return f"{image['registry']}/{image['repository']}:{image['tag']}"


def evaluate_space(
    engine: Engine,
    cfg: AlertConfig,
    name: str,
    report: dict[str, Any],
    previous: dict[str, Any] | None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """``storage_above`` and ``storage_growth`` for the space report ``name``."""
    from imagewise.units import format_size

    now = now or time.time()
    used = int(report["unique_bytes"])
    decided = []
    for rule in cfg.rules:
        if rule["when"] == "storage_above":
            limit = rule.get("max_bytes") or rule["capacity_bytes"] * rule["percent"] / 100
            firing = used > limit
            detail = f"{format_size(used)} of {format_size(int(limit))} allowed" if firing else ""
            decided.append((rule, firing, detail))
        elif rule["when"] == "storage_growth" and previous is not None:
            days = max(float(report["at"]) - float(previous["at"]), 1.0) / 86400
            rate = (used - int(previous["unique_bytes"])) / days
            firing = rate > rule["max_bytes_per_day"]
            detail = (
                f"{format_size(int(rate))}/day, {format_size(int(rule['max_bytes_per_day']))}"
                "/day allowed"
                if firing
                else ""
            )
            decided.append((rule, firing, detail))
    return _judge_all(engine, cfg, f"space report {name}", decided, now)


def evaluate_drill(
    engine: Engine, cfg: AlertConfig, name: str, ok: bool, error: str, now: float | None = None
) -> list[dict[str, Any]]:
    decided = [
        (r, not ok, error if not ok else "") for r in cfg.rules if r["when"] == "drill_failed"
    ]
    return _judge_all(engine, cfg, f"drill {name}", decided, now or time.time())


def evaluate_backups(
    engine: Engine, cfg: AlertConfig, newest: dict[str, float], now: float | None = None
) -> list[dict[str, Any]]:
    """``backup_too_old`` for every backup job's newest snapshot time (``newest``: job -> time)."""
    now = now or time.time()
    sent = []
    for job, when in newest.items():
        decided = []
        for rule in cfg.rules:
            if rule["when"] == "backup_too_old":
                age = (now - when) / 3600
                firing = age > rule["hours"]
                detail = f"newest snapshot {age:.1f} h old, {rule['hours']} h allowed"
                decided.append((rule, firing, detail if firing else ""))
        sent += _judge_all(engine, cfg, f"backup {job}", decided, now)
    return sent


def evaluate_job(
    engine: Engine,
    cfg: AlertConfig,
    kind: str,
    name: str,
    error: str | None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """``job_failed`` when a job ended: ``error`` None for a success (which resolves)."""
    decided = [(r, error is not None, error or "") for r in cfg.rules if r["when"] == "job_failed"]
    return _judge_all(engine, cfg, f"{kind} job {name}", decided, now or time.time())


def _judge_all(
    engine: Engine,
    cfg: AlertConfig,
    subject: str,
    decided: list[tuple[dict[str, Any], bool, str]],
    now: float,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Turn each (rule, firing, detail) into the message due now, if any, record it, and
    deliver the round's messages (grouped per channel)."""
    from imagewise.service.channels import deliver

    routed: list[tuple[str, dict[str, Any]]] = []
    sent = []
    for rule, firing, detail in decided:
        key = _key(rule, subject)
        state, last_sent = _state(engine, key), _last_sent(engine, key)
        status = None
        if firing and (state != "firing" or now - last_sent >= cfg.cooldown):
            status = "firing"
        elif not firing and state == "firing":
            status = "resolved"
        if status is None:
            continue
        message = _message(rule, subject, key, status, detail if firing else "", extra or {})
        routed += [(c, message) for c in rule.get("channels", [])]
        _record(engine, key, status, now)
        sent.append(message)
    deliver(engine, cfg.channels, routed)
    return sent


def _key(rule: dict[str, Any], subject: str) -> str:
    return f"{rule['name']}:{subject}"


def _state(engine: Engine, key: str) -> str | None:
    with engine.begin() as conn:
        row = conn.execute(select(alerts_table.c.state).where(alerts_table.c.key == key)).first()
    return str(row[0]) if row else None


def _last_sent(engine: Engine, key: str) -> float:
    with engine.begin() as conn:
        row = conn.execute(
            select(alerts_table.c.last_sent).where(alerts_table.c.key == key)
        ).first()
    return float(row[0]) if row else 0.0


def _record(engine: Engine, key: str, state: str, now: float) -> None:
    with engine.begin() as conn:
        if conn.execute(select(alerts_table.c.id).where(alerts_table.c.key == key)).first() is None:
            conn.execute(alerts_table.insert().values(key=key, state=state, last_sent=now))
        else:
            conn.execute(
                alerts_table.update()
                .where(alerts_table.c.key == key)
                .values(state=state, last_sent=now)
            )


def _message(
    rule: dict[str, Any],
    subject: str,
    key: str,
    status: str,
    detail: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    firing_words, resolved_words = WORDS[rule["when"]]
    title = (
        f"[FIRING] {subject} {firing_words}"
        if status == "firing"
        else f"[RESOLVED] {subject} {resolved_words}"
    )
    return {
        "status": status,
        "rule": rule["name"],
        "severity": rule["severity"],
        "key": key,
        "subject": subject,
        **extra,
        "title": title,
        "detail": detail,
    }
