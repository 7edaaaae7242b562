"""``imagewise alert test CHANNEL`` (flags -> ``imagewise.service.channels.send``)."""

from __future__ import annotations

from imagewise.cli.args import argument, echo, group, option
from imagewise.errors import UsageError


@group("alert")
def alert_group() -> None:
    """Alert channels of the service config: send a test message."""


@alert_group.command("test")
@argument("channel", metavar="CHANNEL")
@option(
    "--config",
    "config_file",
    metavar="FILE",
    help="The service config with alerts.channels (required).",
)
def alert_test_cmd(channel: str, config_file: str | None) -> int:
    """Send a test message through one alert channel of the service config.

    imagewise alert test ops-mail --config imagewise.yaml
    """
    import yaml

    from imagewise.service.alerts import AlertConfig
    from imagewise.service.channels import send

    if config_file is None:
        raise UsageError("alert test needs --config FILE (the service config)")
    try:
        with open(config_file, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise UsageError(f"config file not found: {config_file}") from None
    cfg = AlertConfig(
        doc.get("alerts") if isinstance(doc, dict) else None, f"{config_file}: alerts"
    )
    if channel not in cfg.channels:
        known = ", ".join(sorted(cfg.channels)) or "none"
        raise UsageError(f"no channel {channel!r} in {config_file} (channels: {known})")
    send(
        cfg.channels[channel],
        {
            "status": "test",
            "rule": "test",
            "severity": "info",
            "key": f"test:{channel}",
            "subject": f"alert channel {channel}",
            "title": f"[TEST] imagewise alert channel {channel} works",
            "detail": "",
        },
    )
    echo(f"sent a test message through {channel}", err=True)
    return 0
