"""Where alerts go: email, chat webhooks and ticket trackers.

* ``email``: SMTP (``starttls``; login from environment variables).
* ``webhook``: a JSON POST; ``format`` shapes it: ``generic`` (the alert itself), ``slack``,
  ``teams`` (a MessageCard), ``dingtalk`` and ``wecom`` (``{"msgtype": "text", "text":
  {"content": ...}}``), ``feishu`` (Feishu/Lark: ``{"msg_type": "text", "content": {"text":
  ...}}``).
* ``apprise``: any service Apprise reaches (``urls``, or ``urls_env`` for URLs with tokens).
* ``github``, ``gitlab``, ``jira``: one ticket per alert (its dedup key): opened when it starts
  firing, later messages for the same key are comments on it, and the resolved message comments
  and closes it (Jira: with ``resolve_transition``, a transition id, else a comment). The open
  ticket of each key is kept in the service database, so a restart does not open a second one.

Several messages of one judging round for one chat or email channel go out as one grouped
message; tickets are never grouped (each key has its own).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sqlalchemy import Engine, select, update

from imagewise.errors import ConfigError
from imagewise.service.db import tickets

CHAT_FORMATS = ("generic", "slack", "teams", "dingtalk", "wecom", "feishu")
TICKET_TYPES = ("github", "gitlab", "jira")
TYPES = ("email", "webhook", "apprise", *TICKET_TYPES)


def check_channel(name: str, ch: Any, where: str) -> dict[str, Any]:
    """A channel of the config, its required keys checked."""
    if not isinstance(ch, dict) or ch.get("type") not in TYPES:
        raise ConfigError(f"{where}.channels.{name}: type must be one of {', '.join(TYPES)}")
    need = {
        "email": ("host", "from", "to"),
        "webhook": ("url",),
        "apprise": ("urls_env",) if ch.get("urls_env") else ("urls",),
        "github": ("repository", "token_env"),
        "gitlab": ("project", "token_env"),
        "jira": ("url", "project", "user_env", "token_env"),
    }[ch["type"]]
    missing = [k for k in need if not ch.get(k)]
    if missing:
        raise ConfigError(f"{where}.channels.{name}: {ch['type']} needs {', '.join(need)}")
    if (
        ch["type"] == "apprise"
        and ch.get("urls") is not None
        and not (isinstance(ch["urls"], list) and all(isinstance(u, str) for u in ch["urls"]))
    ):
        raise ConfigError(f"{where}.channels.{name}.urls: a list of Apprise URLs")
    if ch["type"] == "webhook" and ch.get("format", "generic") not in CHAT_FORMATS:
        raise ConfigError(f"{where}.channels.{name}.format: one of {', '.join(CHAT_FORMATS)}")
    return dict(ch)


def deliver(
    engine: Engine | None,
    channels: dict[str, dict[str, Any]],
    routed: list[tuple[str, dict[str, Any]]],
) -> None:
    """Send ``routed`` (channel name, message) pairs: tickets one by one, the rest grouped per
    channel when a round has more than one message for it."""
    per_channel: dict[str, list[dict[str, Any]]] = {}
    for name, message in routed:
        per_channel.setdefault(name, []).append(message)
    for name, messages in per_channel.items():
        channel = channels[name]
        if channel["type"] in TICKET_TYPES or len(messages) == 1:
            for message in messages:
                send(channel, message, engine, name)
        else:
            send(channel, group(messages), engine, name)


def group(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One message standing for several of one round."""
    firing = sum(m["status"] == "firing" for m in messages)
    title = f"[{len(messages)} ALERTS] {firing} firing, {len(messages) - firing} resolved"
    return {
        "status": "group",
        "title": title,
        "detail": "\n".join(_line(m) for m in messages),
        "alerts": messages,
    }


def _line(message: dict[str, Any]) -> str:
    return str(message["title"]) + (f" ({message['detail']})" if message.get("detail") else "")


def send(
    channel: dict[str, Any],
    message: dict[str, Any],
    engine: Engine | None = None,
    name: str = "",
) -> None:
    kind = channel["type"]
    if kind == "email":
        _email(channel, message)
    elif kind == "webhook":
        _webhook(channel, message)
    elif kind == "apprise":
        _apprise(channel, message)
    else:
        _ticket(channel, message, engine, name)


def _email(channel: dict[str, Any], message: dict[str, Any]) -> None:
    import smtplib
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = message["title"]
    mail["From"] = channel["from"]
    to = channel["to"] if isinstance(channel["to"], list) else [channel["to"]]
    mail["To"] = ", ".join(to)
    mail.set_content(_body(message))
    with smtplib.SMTP(channel["host"], int(channel.get("port", 25)), timeout=10) as smtp:
        if channel.get("starttls"):
            smtp.starttls()
        user = os.environ.get(channel.get("username_env", ""), "")
        if user:
            smtp.login(user, os.environ.get(channel.get("password_env", ""), ""))
        smtp.send_message(mail)


def _body(message: dict[str, Any]) -> str:
    """The plain-text body of an email or a ticket."""
    lines = [message["title"], ""]
    if message["status"] == "group":
        return "\n".join([*lines, message["detail"], ""])
    for key in ("image", "digest", "subject"):
        if message.get(key):
            lines.append(f"{key}: {message[key]}")
    lines.append(f"rule: {message['rule']} ({message['severity']})")
    if message.get("detail"):
        lines.append(message["detail"])
    return "\n".join(lines) + "\n"


def _webhook(channel: dict[str, Any], message: dict[str, Any]) -> None:
    shape = channel.get("format", "generic")
    text = (
        f"{message['title']}\n{message['detail']}"
        if message["status"] == "group"
        else _line(message)
    )
    if shape == "slack":
        body: dict[str, Any] = {"text": text}
    elif shape == "teams":
        body = {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": message["title"],
            "text": text,
        }
    elif shape in ("dingtalk", "wecom"):
        body = {"msgtype": "text", "text": {"content": text}}
    elif shape == "feishu":
        body = {"msg_type": "text", "content": {"text": text}}
    else:
        body = message
    _post(channel["url"], body, {})


def _apprise(channel: dict[str, Any], message: dict[str, Any]) -> None:
    """Through Apprise (any of its services: Discord, Telegram, Matrix, DingTalk, WeCom,
    Feishu, Pushover, ntfy ...): ``urls`` in the config and/or, for URLs that hold tokens,
    ``urls_env`` naming an environment variable with space-separated URLs."""
    import apprise

    urls = list(channel.get("urls") or [])
    if channel.get("urls_env"):
        urls += _secret(channel, "urls_env").split()
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            raise RuntimeError(f"apprise does not understand the URL scheme of {url.split(':')[0]}")
    kind = {
        "firing": apprise.NotifyType.FAILURE,
        "resolved": apprise.NotifyType.SUCCESS,
    }.get(message["status"], apprise.NotifyType.INFO)
    body = message["detail"] if message["status"] == "group" else _body(message)
    if not notifier.notify(title=message["title"], body=body, notify_type=kind):
        raise RuntimeError("apprise could not deliver the alert to every URL")


def _post(url: str, body: dict[str, Any], headers: dict[str, str], method: str = "POST") -> Any:
    import httpx

    resp = httpx.request(
        method,
        url,
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )
    resp.raise_for_status()
    return resp.json() if resp.content else None


# -- tickets ------------------------------------------------------------------------------------


def _secret(channel: dict[str, Any], key: str) -> str:
    value = os.environ.get(str(channel[key]), "")
    if not value:
        raise RuntimeError(f"the environment variable {channel[key]} ({key}) is not set")
    return value


def _open_ticket(engine: Engine | None, name: str, key: str) -> str | None:
    if engine is None:
        return None
    with engine.begin() as conn:
        row = conn.execute(
            select(tickets.c.ticket).where(
                tickets.c.channel == name, tickets.c.key == key, tickets.c.state == "open"
            )
        ).first()
    return str(row[0]) if row else None


def _ticket(
    channel: dict[str, Any], message: dict[str, Any], engine: Engine | None, name: str
) -> None:
    api = _TRACKERS[channel["type"]](channel)
    key = message["key"]
    ticket = _open_ticket(engine, name, key)
    if ticket is None:
        if message["status"] == "resolved":
            return  # nothing open to close
        ticket, url = api.create(message)
        if engine is not None:
            with engine.begin() as conn:
                conn.execute(
                    tickets.insert().values(
                        channel=name,
                        key=key,
                        ticket=ticket,
                        url=url,
                        state="open",
                        created=time.time(),
                    )
                )
        return
    api.comment(ticket, _body(message))
    if message["status"] == "resolved":
        api.close(ticket)
        assert engine is not None
        with engine.begin() as conn:
            conn.execute(
                update(tickets)
                .where(tickets.c.channel == name, tickets.c.ticket == ticket)
                .values(state="closed")
            )


class _GitHub:
    """GitHub's REST issues API (``api`` defaults to https://api.github.com)."""

    def __init__(self, channel: dict[str, Any]) -> None:
        api = str(channel.get("api") or "https://api.github.com").rstrip("/")
        self.base = f"{api}/repos/{channel['repository']}/issues"
        self.labels = list(channel.get("labels") or [])
        self.headers = {
            "Authorization": f"Bearer {_secret(channel, 'token_env')}",
            "Accept": "application/vnd.github+json",
        }

    def create(self, message: dict[str, Any]) -> tuple[str, str]:
        body = {"title": message["title"], "body": _body(message), "labels": self.labels}
        made = _post(self.base, body, self.headers)
        return str(made["number"]), str(made.get("html_url", ""))

    def comment(self, ticket: str, text: str) -> None:
        _post(f"{self.base}/{ticket}/comments", {"body": text}, self.headers)

    def close(self, ticket: str) -> None:
        _post(f"{self.base}/{ticket}", {"state": "closed"}, self.headers, method="PATCH")


class _GitLab:
    """GitLab's REST issues API (``api`` defaults to https://gitlab.com/api/v4)."""

    def __init__(self, channel: dict[str, Any]) -> None:
        from urllib.parse import quote

        api = str(channel.get("api") or "https://gitlab.com/api/v4").rstrip("/")
        self.base = f"{api}/projects/{quote(str(channel['project']), safe='')}/issues"
        self.labels = ",".join(channel.get("labels") or [])
        self.headers = {"PRIVATE-TOKEN": _secret(channel, "token_env")}

    def create(self, message: dict[str, Any]) -> tuple[str, str]:
        body = {"title": message["title"], "description": _body(message), "labels": self.labels}
        made = _post(self.base, body, self.headers)
        return str(made["iid"]), str(made.get("web_url", ""))

    def comment(self, ticket: str, text: str) -> None:
        _post(f"{self.base}/{ticket}/notes", {"body": text}, self.headers)

    def close(self, ticket: str) -> None:
        _post(f"{self.base}/{ticket}", {"state_event": "close"}, self.headers, method="PUT")


class _Jira:
    """Jira's REST API v2 (Cloud and Server): basic auth with a user and an API token."""

    def __init__(self, channel: dict[str, Any]) -> None:
        import base64

        self.base = f"{str(channel['url']).rstrip('/')}/rest/api/2/issue"
        self.project = str(channel["project"])
        self.kind = str(channel.get("issue_type") or "Bug")
        self.labels = list(channel.get("labels") or [])
        self.transition = channel.get("resolve_transition")
        pair = f"{_secret(channel, 'user_env')}:{_secret(channel, 'token_env')}"
        self.headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def create(self, message: dict[str, Any]) -> tuple[str, str]:
        fields = {
            "project": {"key": self.project},
            "summary": message["title"][:250],
            "description": _body(message),
            "issuetype": {"name": self.kind},
            "labels": self.labels,
        }
        made = _post(self.base, {"fields": fields}, self.headers)
        return str(made["key"]), str(made.get("self", ""))

    def comment(self, ticket: str, text: str) -> None:
        _post(f"{self.base}/{ticket}/comment", {"body": text}, self.headers)

    def close(self, ticket: str) -> None:
        if self.transition is not None:
            body = {"transition": {"id": str(self.transition)}}
            _post(f"{self.base}/{ticket}/transitions", body, self.headers)


_TRACKERS: dict[str, Any] = {"github": _GitHub, "gitlab": _GitLab, "jira": _Jira}
