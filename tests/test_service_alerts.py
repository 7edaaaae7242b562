"""Alerts against a real SMTP server (aiosmtpd, started here) and a local HTTP receiver that
checks the exact payloads: fire once, cooldown, resolve."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from imagewise.errors import ConfigError
from imagewise.service.alerts import AlertConfig, evaluate
from imagewise.service.db import connect


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Mailbox]]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def _result(passed: bool, secrets: int = 0, vulns: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "passed": passed,
        "secrets": secrets,
        "violations": [] if passed else ["CIS-DI-0001"],
        "vulnerability_ids": vulns or {},
    }


IMAGE = {
    "registry": "reg.example",
    "repository": "app",
    "tag": "1.0",
    "digest": "sha256:" + "1" * 64,
}


def test_fire_cooldown_resolve_by_email_and_webhook(
    tmp_path: Path, smtp: tuple[int, _Mailbox], receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    port, box = smtp
    url, got = receiver
    cfg = AlertConfig(
        {
            "cooldown": 600,
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "from": "iw@example.org",
                    "to": ["ops@example.org"],
                },
                "chat": {"type": "webhook", "url": url, "format": "slack"},
            },
            "rules": [
                {
                    "name": "policy",
                    "when": "policy_failed",
                    "severity": "warning",
                    "channels": ["mail", "chat"],
                },
                {
                    "name": "vulns",
                    "when": "vulnerability",
                    "min_severity": "high",
                    "channels": ["chat"],
                },
            ],
        }
    )
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    evaluate(engine, cfg, IMAGE, _result(False), None, now=1000)
    assert (
        len(box.messages) == 1
        and box.messages[0]["Subject"] == "[FIRING] reg.example/app:1.0 fails its policy"
    )
    assert box.messages[0]["To"] == "ops@example.org"
    assert got == [
        {"text": "[FIRING] reg.example/app:1.0 fails its policy (violations: CIS-DI-0001)"}
    ]
    evaluate(engine, cfg, IMAGE, _result(False), None, now=1100)  # within the cooldown: quiet
    assert len(box.messages) == 1 and len(got) == 1
    evaluate(engine, cfg, IMAGE, _result(False), None, now=1700)  # after it: reminded once
    assert len(box.messages) == 2
    evaluate(engine, cfg, IMAGE, _result(True), None, now=1800)  # cleared: resolved
    assert box.messages[-1]["Subject"].startswith("[RESOLVED] reg.example/app:1.0")
    # a vulnerability alert only for advisories new since the previous check of the tag
    before = _result(True, vulns={"GHSA-old": "critical"})
    evaluate(engine, cfg, IMAGE, _result(True, vulns={"GHSA-old": "critical"}), before, now=2000)
    assert not [m for m in got if "vulnerab" in m["text"]]
    evaluate(
        engine,
        cfg,
        IMAGE,
        _result(True, vulns={"GHSA-old": "critical", "GHSA-new": "high", "GHSA-low": "low"}),
        before,
        now=2100,
    )
    assert got[-1] == {
        "text": "[FIRING] reg.example/app:1.0 has new vulnerabilities (new: GHSA-new)"
    }


def test_bad_alert_config_is_named() -> None:
    from imagewise.errors import ConfigError

    for doc, message in (
        (
            {"channels": {"x": {"type": "pager"}}},
            "type must be one of email, webhook, apprise, github",
        ),
        ({"channels": {"x": {"type": "github", "repository": "o/r"}}}, "github needs"),
        ({"channels": {"x": {"type": "webhook", "url": "u", "format": "icq"}}}, "dingtalk"),
        ({"rules": [{"when": "storage_above"}]}, "capacity_bytes and percent"),
        ({"rules": [{"when": "backup_too_old", "hours": -1}]}, "backup_too_old needs hours"),
        ({"rules": [{"when": "sometimes"}]}, r"rules\[0\]\.when"),
        (
            {"channels": {}, "rules": [{"when": "secret_found", "channels": ["nope"]}]},
            "unknown channel",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            AlertConfig(doc)


def test_alert_test_command(tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    from cli_runner import CliRunner

    from imagewise.cli.main import cli

    url, got = receiver
    cfg = tmp_path / "imagewise.yaml"
    cfg.write_text(
        f"alerts:\n  channels:\n    chat: {{type: webhook, url: '{url}', format: teams}}\n"
    )
    result = CliRunner().invoke(cli, ["alert", "test", "chat", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert got == [
        {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": "[TEST] imagewise alert channel chat works",
            "text": "[TEST] imagewise alert channel chat works",
        }
    ]
    bad = CliRunner().invoke(cli, ["alert", "test", "pager", "--config", str(cfg)])
    assert bad.exit_code == 2 and "no channel 'pager'" in bad.output and "chat" in bad.output


IMAGE2 = {
    "registry": "reg.example",
    "repository": "api",
    "tag": "2.0",
    "digest": "sha256:" + "2" * 64,
}


def test_chat_formats_and_one_grouped_message_per_round(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """DingTalk, WeCom and Feishu bodies as their bots take them; two alerts of one round go
    out as one message per channel."""
    url, got = receiver
    cfg = AlertConfig(
        {
            "channels": {
                fmt: {"type": "webhook", "url": f"{url}/{fmt}", "format": fmt}
                for fmt in ("dingtalk", "wecom", "feishu")
            },
            "rules": [
                {"when": "policy_failed", "channels": ["dingtalk", "wecom", "feishu"]},
                {"when": "secret_found", "channels": ["dingtalk"]},
            ],
        }
    )
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    evaluate(engine, cfg, IMAGE2, _result(False, secrets=2), None, now=1000)
    fired = "[FIRING] reg.example/api:2.0 fails its policy (violations: CIS-DI-0001)"
    group = (
        "[2 ALERTS] 2 firing, 0 resolved\n"
        + fired
        + "\n[FIRING] reg.example/api:2.0 contains a secret (2 secret(s))"
    )
    assert got == [
        {"msgtype": "text", "text": {"content": group}},
        {"msgtype": "text", "text": {"content": fired}},
        {"msg_type": "text", "content": {"text": fired}},
    ]


def test_tickets_open_once_comment_and_close(
    tmp_path: Path, tracker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One problem opens one ticket per tracker; a reminder comments on it; resolving comments
    and closes it (Jira: by its transition); the next firing opens a new one. The open ticket
    is kept in the database, so another AlertConfig (a restarted service) comments on it."""
    monkeypatch.setenv("IW_GH_TOKEN", "ghp-test")
    monkeypatch.setenv("IW_GL_TOKEN", "glpat-test")
    monkeypatch.setenv("IW_JIRA_USER", "bot@example.org")
    monkeypatch.setenv("IW_JIRA_TOKEN", "jira-test")
    doc = {
        "cooldown": 600,
        "channels": {
            "gh": {
                "type": "github",
                "api": tracker.url,
                "repository": "acme/platform",
                "token_env": "IW_GH_TOKEN",
                "labels": ["imagewise"],
            },
            "gl": {
                "type": "gitlab",
                "api": f"{tracker.url}/api/v4",
                "project": "acme/platform",
                "token_env": "IW_GL_TOKEN",
            },
            "jira": {
                "type": "jira",
                "url": tracker.url,
                "project": "OPS",
                "user_env": "IW_JIRA_USER",
                "token_env": "IW_JIRA_TOKEN",
                "resolve_transition": 31,
            },
        },
        "rules": [{"name": "policy", "when": "policy_failed", "channels": ["gh", "gl", "jira"]}],
    }
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    evaluate(engine, AlertConfig(doc), IMAGE2, _result(False), None, now=1000)
    title = "[FIRING] reg.example/api:2.0 fails its policy"
    body = (
        f"{title}\n\nimage: reg.example/api:2.0\ndigest: {IMAGE2['digest']}\n"
        "subject: reg.example/api:2.0\nrule: policy (warning)\nviolations: CIS-DI-0001\n"
    )
    assert tracker.calls("/repos") == [
        (
            "POST",
            "/repos/acme/platform/issues",
            {"title": title, "body": body, "labels": ["imagewise"]},
        )
    ]
    assert tracker.calls("/api/v4") == [
        (
            "POST",
            "/api/v4/projects/acme%2Fplatform/issues",
            {"title": title, "description": body, "labels": ""},
        )
    ]
    assert tracker.calls("/rest") == [
        (
            "POST",
            "/rest/api/2/issue",
            {
                "fields": {
                    "project": {"key": "OPS"},
                    "summary": title,
                    "description": body,
                    "issuetype": {"name": "Bug"},
                    "labels": [],
                }
            },
        )
    ]
    auth = {p.split("/")[1]: a for _m, p, a, _b in tracker.requests}
    assert auth["repos"] == "Bearer ghp-test" and auth["api"] == "glpat-test"
    assert auth["rest"] == "Basic " + base64.b64encode(b"bot@example.org:jira-test").decode()
    numbers = {"gh": "1", "gl": "2", "jira": "OPS-3"}  # in the order the channels are listed
    # after the cooldown, still failing: a comment on the same tickets (a "restarted" config)
    evaluate(engine, AlertConfig(doc), IMAGE2, _result(False), None, now=1700)
    assert [c[:2] for c in tracker.requests[3:]] == [
        ("POST", f"/repos/acme/platform/issues/{numbers['gh']}/comments"),
        ("POST", f"/api/v4/projects/acme%2Fplatform/issues/{numbers['gl']}/notes"),
        ("POST", f"/rest/api/2/issue/{numbers['jira']}/comment"),
    ]
    # resolved: a comment and a close on each
    evaluate(engine, AlertConfig(doc), IMAGE2, _result(True), None, now=1800)
    closing = [(m, p, b) for m, p, _a, b in tracker.requests[6:]]
    assert closing[1] == ("PATCH", "/repos/acme/platform/issues/1", {"state": "closed"})
    assert closing[3] == (
        "PUT",
        "/api/v4/projects/acme%2Fplatform/issues/2",
        {"state_event": "close"},
    )
    assert closing[5] == (
        "POST",
        "/rest/api/2/issue/OPS-3/transitions",
        {"transition": {"id": "31"}},
    )
    assert all(
        "[RESOLVED] reg.example/api:2.0 no longer failing its policy" in c[2]["body"]
        for c in closing[0::2]
    )
    # failing again: new tickets
    evaluate(engine, AlertConfig(doc), IMAGE2, _result(False), None, now=1900)
    assert [c[1] for c in tracker.requests[12:]] == [
        "/repos/acme/platform/issues",
        "/api/v4/projects/acme%2Fplatform/issues",
        "/rest/api/2/issue",
    ]


def test_storage_drill_backup_and_job_rules(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    from imagewise.service.alerts import (
        evaluate_backups,
        evaluate_drill,
        evaluate_job,
        evaluate_space,
    )

    url, got = receiver
    cfg = AlertConfig(
        {
            "channels": {"hook": {"type": "webhook", "url": url, "format": "slack"}},
            "rules": [
                {
                    "when": "storage_above",
                    "capacity_bytes": 1000,
                    "percent": 80,
                    "channels": ["hook"],
                },
                {"when": "storage_growth", "max_bytes_per_day": 100, "channels": ["hook"]},
                {"when": "drill_failed", "channels": ["hook"]},
                {"when": "backup_too_old", "hours": 24, "channels": ["hook"]},
                {"when": "job_failed", "channels": ["hook"]},
            ],
        }
    )
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    day = 86400.0
    evaluate_space(engine, cfg, "hub", {"unique_bytes": 700, "at": day}, None, now=day)
    assert got == []
    evaluate_space(
        engine,
        cfg,
        "hub",
        {"unique_bytes": 900, "at": 2 * day},
        {"unique_bytes": 700, "at": day},
        now=2 * day,
    )
    assert got[-1]["text"] == (
        "[2 ALERTS] 2 firing, 0 resolved\n"
        "[FIRING] space report hub uses more storage than allowed (900 B of 800 B allowed)\n"
        "[FIRING] space report hub grows faster than allowed (200 B/day, 100 B/day allowed)"
    )
    evaluate_space(
        engine,
        cfg,
        "hub",
        {"unique_bytes": 500, "at": 3 * day},
        {"unique_bytes": 900, "at": 2 * day},
        now=3 * day,
    )
    assert got[-1]["text"].startswith(
        "[2 ALERTS] 0 firing, 2 resolved\n[RESOLVED] space report hub is back under"
    )
    evaluate_drill(engine, cfg, "weekly", False, "digest mismatch", now=4 * day)
    assert got[-1] == {"text": "[FIRING] drill weekly failed its recovery drill (digest mismatch)"}
    evaluate_backups(engine, cfg, {"registry": 4 * day - 30 * 3600}, now=4 * day)
    assert got[-1] == {
        "text": "[FIRING] backup registry has no recent backup (newest snapshot 30.0 h old, 24 h allowed)"
    }
    evaluate_backups(engine, cfg, {"registry": 4 * day}, now=4 * day + 60)
    assert got[-1] == {"text": "[RESOLVED] backup registry is backed up again"}
    evaluate_job(engine, cfg, "sync", "mirror", "RuntimeError: registry gone", now=5 * day)
    assert got[-1] == {"text": "[FIRING] sync job mirror failed (RuntimeError: registry gone)"}
    evaluate_job(engine, cfg, "sync", "mirror", None, now=5 * day + 1)
    assert got[-1] == {"text": "[RESOLVED] sync job mirror succeeds again"}


def test_the_apprise_channel_delivers_through_apprise(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apprise's own json:// service posts to a local receiver: the title, the body and the
    notification type Apprise sends for a firing and a resolved alert."""
    url, got = receiver
    monkeypatch.setenv("IW_APPRISE", url.replace("http://", "json://"))
    cfg = AlertConfig(
        {
            "channels": {"many": {"type": "apprise", "urls_env": "IW_APPRISE"}},
            "rules": [{"name": "policy", "when": "policy_failed", "channels": ["many"]}],
        }
    )
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    evaluate(engine, cfg, IMAGE2, _result(False), None, now=1000)
    evaluate(engine, cfg, IMAGE2, _result(True), None, now=1100)
    assert [(m["title"], m["type"]) for m in got] == [
        ("[FIRING] reg.example/api:2.0 fails its policy", "failure"),
        ("[RESOLVED] reg.example/api:2.0 no longer failing its policy", "success"),
    ]
    assert "violations: CIS-DI-0001" in got[0]["message"]
    with pytest.raises(ConfigError, match="apprise needs urls"):
        AlertConfig({"channels": {"x": {"type": "apprise"}}})
