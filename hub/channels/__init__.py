"""Channel adapters, one module per provider; `build_adapters` picks them from the settings."""

from __future__ import annotations

from hub.channels.base import ChannelAdapter, DeliveryResult
from hub.channels.email import SmtpEmailChannel
from hub.channels.outbox import OutboxChannel
from hub.settings import Settings


def build_adapter(channel: str, settings: Settings) -> ChannelAdapter:
    choice = {"kakao": settings.kakao_adapter, "sms": settings.sms_adapter, "email": settings.email_adapter}[channel]
    if choice == "outbox":
        return OutboxChannel(channel, settings.outbox_dir / f"{channel}.jsonl")
    if channel == "email" and choice == "smtp":
        return SmtpEmailChannel(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.email_from,
            username=settings.smtp_username, password=settings.smtp_password,
            start_tls=settings.smtp_starttls, use_tls=settings.smtp_use_tls, timeout_s=settings.smtp_timeout_s,
        )
    raise ValueError(f"no adapter {choice!r} for channel {channel!r}")


__all__ = ["ChannelAdapter", "DeliveryResult", "OutboxChannel", "SmtpEmailChannel", "build_adapter"]
