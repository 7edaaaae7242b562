"""Alerts against a real SMTP server (aiosmtpd, started here) and a local HTTP receiver that
checks the exact payloads: fire once, cooldown, resolve."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

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
        ({"channels": {"x": {"type": "pager"}}}, "type must be email or webhook"),
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
