"""Alerts: rules judged after every check, sent to email and chat channels, deduplicated.

Rules (the service config's ``alerts.rules``), each with a ``severity`` and ``channels``:

* ``policy_failed``: the image fails its policy;
* ``secret_found``: a secret is in the image;
* ``vulnerability``: a vulnerability at or above ``min_severity`` that the previous check of
  the same tag did not have (new since the last scan, not every scan);
* ``build_failed``: an image of a build job was not built (judged after each build job, keyed
  by the job's name and the image's; resolved by its next successful build).

An alert's dedup key is ``rule:repository:tag``. It is sent when it starts firing, again only
after ``cooldown`` seconds while it keeps firing, and a resolved message is sent when the
condition clears. Channels: ``email`` (SMTP, STARTTLS, login from environment variables) and
``webhook`` (JSON POST: ``generic``, or ``slack``/``teams``-shaped payloads).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sqlalchemy import Engine, select

from imagewise.errors import ConfigError
from imagewise.service.db import alerts as alerts_table

SEVERITY_ORDER = ("low", "medium", "high", "critical")
RULE_KINDS = ("policy_failed", "secret_found", "vulnerability", "build_failed")


class AlertConfig:
    def __init__(self, doc: dict[str, Any] | None, where: str = "alerts") -> None:
        doc = doc or {}
        self.cooldown = float(doc.get("cooldown", 3600))
        self.channels: dict[str, dict[str, Any]] = {}
        for name, ch in (doc.get("channels") or {}).items():
            if not isinstance(ch, dict) or ch.get("type") not in ("email", "webhook"):
                raise ConfigError(f"{where}.channels.{name}: type must be email or webhook")
            if ch["type"] == "email" and not (ch.get("host") and ch.get("to") and ch.get("from")):
                raise ConfigError(f"{where}.channels.{name}: email needs host, from and to")
            if ch["type"] == "webhook" and not ch.get("url"):
                raise ConfigError(f"{where}.channels.{name}: webhook needs url")
            self.channels[str(name)] = ch
        self.rules: list[dict[str, Any]] = []
        for i, rule in enumerate(doc.get("rules") or []):
            if not isinstance(rule, dict) or rule.get("when") not in RULE_KINDS:
                raise ConfigError(f"{where}.rules[{i}].when: one of {', '.join(RULE_KINDS)}")
            unknown = [c for c in rule.get("channels", []) if c not in self.channels]
            if unknown:
                raise ConfigError(f"{where}.rules[{i}]: unknown channel {unknown[0]!r}")
            self.rules.append(
                {"name": rule.get("name") or rule["when"], "severity": "warning", **rule}
            )


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
    """Judge the rules for one checked tag (or, when ``result`` has ``build_status``, for one
    image of a build job: the ``build_failed`` rules only); send what must be sent; returns the
    messages."""
    now = now or time.time()
    sent = []
    building = "build_status" in result
    for rule in cfg.rules:
        when = rule["when"]
        if (when == "build_failed") != building:
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
            firing = bool(new) or (bool(ids) and _state(engine, _key(rule, image)) == "firing")
            detail = f"new: {', '.join(new)}" if new else ""
        key = _key(rule, image)
        state, last_sent = _state(engine, key), _last_sent(engine, key)
        message = None
        if (
            firing
            and (state != "firing" or now - last_sent >= cfg.cooldown)
            and (detail or state != "firing")
        ):
            message = _message(rule, image, "firing", detail)
        elif not firing and state == "firing":
            message = _message(rule, image, "resolved", "")
        if message is None:
            continue
        for channel in rule.get("channels", []):
            send(cfg.channels[channel], message)
        _record(engine, key, message["status"], now)
        sent.append(message)
    return sent


def _key(rule: dict[str, Any], image: dict[str, Any]) -> str:
    return f"{rule['name']}:{image['repository']}:{image['tag']}"


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
    rule: dict[str, Any], image: dict[str, Any], status: str, detail: str
) -> dict[str, Any]:
    what = {
        "policy_failed": "fails its policy",
        "secret_found": "contains a secret",
        "vulnerability": "has new vulnerabilities",
        "build_failed": "fails to build",
    }[rule["when"]]
    ref = (
        f"{image['repository']}/{image['tag']}"  # build job / image
        if rule["when"] == "build_failed"
        else f"{image['registry']}/{image['repository']}:{image['tag']}"
    )
    title = (
        f"[{status.upper()}] {ref} {what}"
        if status == "firing"
        else f"[RESOLVED] {ref} no longer {what.replace('fails', 'failing').replace('has', 'having').replace('contains', 'containing')}"
    )
    return {
        "status": status,
        "rule": rule["name"],
        "severity": rule["severity"],
        "key": _key(rule, image),
        "image": ref,
        "digest": image["digest"],
        "title": title,
        "detail": detail,
    }


def send(channel: dict[str, Any], message: dict[str, Any]) -> None:
    if channel["type"] == "email":
        _email(channel, message)
    else:
        _webhook(channel, message)


def _email(channel: dict[str, Any], message: dict[str, Any]) -> None:
    import smtplib
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = message["title"]
    mail["From"] = channel["from"]
    to = channel["to"] if isinstance(channel["to"], list) else [channel["to"]]
    mail["To"] = ", ".join(to)
    mail.set_content(
        f"{message['title']}\n\nimage: {message['image']}\ndigest: {message['digest']}\n"
        f"rule: {message['rule']} ({message['severity']})\n{message['detail']}\n"
    )
    with smtplib.SMTP(channel["host"], int(channel.get("port", 25)), timeout=10) as smtp:
        if channel.get("starttls"):
            smtp.starttls()
        user = os.environ.get(channel.get("username_env", ""), "")
        if user:
            smtp.login(user, os.environ.get(channel.get("password_env", ""), ""))
        smtp.send_message(mail)


def _webhook(channel: dict[str, Any], message: dict[str, Any]) -> None:
    import httpx

    shape = channel.get("format", "generic")
    text = f"{message['title']}" + (f" ({message['detail']})" if message["detail"] else "")
    if shape == "slack":
        body: dict[str, Any] = {"text": text}
    elif shape == "teams":
        body = {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": message["title"],
            "text": text,
        }
    else:
        body = message
    resp = httpx.post(
        channel["url"],
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    resp.raise_for_status()
