"""Channel adapters, one module per provider; `build_adapters` picks them from the settings."""

from __future__ import annotations

from hub.gateways.base import ChannelAdapter, DeliveryResult
from hub.gateways.nhn_alimtalk import NhnAlimtalkChannel
from hub.gateways.outbox import OutboxChannel
from hub.gateways.sens_sms import SensSmsChannel
from hub.gateways.smtp_email import SmtpEmailChannel
from hub.settings import Settings


def _required(settings: Settings, adapter: str, *names: str) -> list[str]:
    """The values of the named settings; a ValueError naming every HUB_* variable that is missing."""
    values = [getattr(settings, name) for name in names]
    if missing := [f"HUB_{name.upper()}" for name, value in zip(names, values, strict=True) if not value]:
        raise ValueError(f"the {adapter} adapter needs {', '.join(missing)}")
    return values


def build_adapter(channel: str, settings: Settings) -> ChannelAdapter:
    choice = {"kakao": settings.kakao_adapter, "sms": settings.sms_adapter, "email": settings.email_adapter}[channel]
    if choice == "outbox":
        return OutboxChannel(channel, settings.outbox_dir / f"{channel}.jsonl")
    if channel == "email" and choice == "smtp":
        return SmtpEmailChannel(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.email_from,
            username=settings.smtp_username, password=settings.smtp_password,
            start_tls=settings.smtp_starttls, use_tls=settings.smtp_use_tls, timeout_s=settings.smtp_timeout_s,
            unsubscribe_url=settings.advertising_optout_url, unsubscribe_mailto=settings.email_unsubscribe_mailto,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    if channel == "kakao" and choice == "nhn":
        appkey, secret_key, sender_key = _required(
            settings, "nhn", "nhn_alimtalk_appkey", "nhn_alimtalk_secret_key", "nhn_alimtalk_sender_key")
        return NhnAlimtalkChannel(base_url=settings.nhn_alimtalk_base_url, appkey=appkey, secret_key=secret_key,
                                  sender_key=sender_key, timeout_s=settings.gateway_timeout_s)
    if channel == "sms" and choice == "sens":
        service_id, access_key, secret_key, sender_no = _required(
            settings, "sens", "sens_service_id", "sens_access_key", "sens_secret_key", "sms_sender_no")
        return SensSmsChannel(base_url=settings.sens_base_url, service_id=service_id, access_key=access_key,
                              secret_key=secret_key, sender_no=sender_no, timeout_s=settings.gateway_timeout_s)
    raise ValueError(f"no adapter {choice!r} for channel {channel!r}")


__all__ = [
    "ChannelAdapter",
    "DeliveryResult",
    "NhnAlimtalkChannel",
    "OutboxChannel",
    "SensSmsChannel",
    "SmtpEmailChannel",
    "build_adapter",
]
