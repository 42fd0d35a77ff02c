"""All configuration, from environment variables prefixed `HUB_` (and an optional `.env` file)."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ChannelName = Literal["kakao", "sms", "email"]


class Settings(BaseSettings):
    """One settings object for the whole hub; durations carry their unit in the name."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("kafka_bootstrap_servers", "HUB_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers: HUB_KAFKA_BOOTSTRAP_SERVERS, else KAFKA_BOOTSTRAP_SERVERS, else the "
                    "local broker of `hub kafka up` (127.0.0.1:HUB_LOCAL_KAFKA_PORT).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle that signs the brokers' certificates.")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS), PEM.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Private key of the client certificate, PEM.")
    topic_prefix: str = "hub"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    consumer_group_prefix: str | None = Field(
        default=None, description="Prefix of consumer group ids; defaults to the topic prefix."
    )
    batch_max_records: int = Field(default=500, ge=1)
    batch_timeout_ms: int = Field(default=100, ge=1)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_concurrent_sends: int = Field(default=64, ge=1)
    infra_retry_backoff_s: float = Field(default=1.0, ge=0)
    sender_liveness_s: float = Field(
        default=15.0, gt=0,
        description="A sender process not seen for this long is dead: its unfinished claims are in doubt (it "
                    "says it is alive every third of this). One seen recently is sending them: others wait.",
    )
    sending_lease_s: float = Field(
        default=300.0, gt=0,
        description="A claim older than this is in doubt even if its sender is alive (the longest a batch's calls "
                    "may take, rate limits included).",
    )

    # delivery retries, rate limits, circuit breaker
    retry_tiers_s: list[float] = Field(
        default=[10.0, 60.0, 600.0],
        description="Delay of each retry tier; a transient failure after the last goes to the dead-letter topic.",
    )
    rate_limits_per_s: dict[str, float] = Field(
        default={"nhn-alimtalk": 100.0, "sens": 30.0, "smtp": 20.0},
        description="Messages per second per provider, per process; a provider not named is not limited.",
    )
    max_inline_retry_after_s: float = Field(
        default=30.0, description="A 429 whose Retry-After is at most this is waited out in place, not retried."
    )
    result_checks_s: list[float] = Field(
        default=[5.0, 30.0, 120.0, 600.0],
        description="When to ask the AlimTalk gateway for Kakao's verdict after a send (대체발송 on failure).",
    )
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, ge=0)
    breaker_max_cooldown_s: float = Field(default=300.0, ge=0)

    # store
    database_url: str = "sqlite+aiosqlite:///./var/hub.db"

    # channels
    default_channel_order: list[ChannelName] = ["kakao", "sms", "email"]
    kakao_adapter: Literal["outbox", "nhn"] = "outbox"
    sms_adapter: Literal["outbox", "sens"] = "outbox"
    email_adapter: Literal["smtp", "outbox"] = "outbox"
    outbox_dir: Path = Path("var/outbox")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle that signs the SMTP server's certificate")
    email_from: str = "양평군 <noreply@yp.example.kr>"

    # HTTP gateways: NHN Cloud AlimTalk (HUB_KAKAO_ADAPTER=nhn), NAVER Cloud SENS (HUB_SMS_ADAPTER=sens)
    nhn_alimtalk_base_url: str = "https://api-alimtalk.cloud.toast.com"
    nhn_alimtalk_appkey: str | None = None
    nhn_alimtalk_secret_key: str | None = None
    nhn_alimtalk_sender_key: str | None = None
    sens_base_url: str = "https://sens.apigw.ntruss.com"
    sens_service_id: str | None = None
    sens_access_key: str | None = None
    sens_secret_key: str | None = None
    sms_sender_no: str | None = Field(default=None, description="발신번호, registered with the SMS gateway.")
    gateway_timeout_s: float = Field(default=10.0, gt=0)

    # sender identity shown in messages
    county_name: str = "양평군"
    county_contact: str = "031-770-2114"
    sms_default_subject: str = "양평군 알림"
    advertising_optout_phone: str = Field(default="080-000-0000", description="무료 수신거부 number in ads")
    advertising_optout_url: str = Field(default="https://talk.yp.example.kr/unsubscribe",
                                        description="Opt-out page in ads; also email's List-Unsubscribe")
    email_unsubscribe_mailto: str | None = Field(default=None, description="mailto: address for List-Unsubscribe")
    scheduler_interval_s: float = Field(default=1.0, gt=0, description="How often held deliveries are checked")

    # retention (docs/OPERATIONS.md): finished deliveries and their outcome log, purged by a running hub and `hub purge`
    retention_days: int = Field(default=180, ge=0, description="Purge finished deliveries older than this; 0 keeps all.")
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often a running hub purges.")

    # operations: the ops HTTP server (/healthz, /readyz, /metrics, the dashboard), lag sampling, logs
    ops_host: str = Field(default="127.0.0.1", description="Address of the ops HTTP server; 0.0.0.0 in a container.")
    ops_port: int = Field(default=8080, ge=0, le=65535, description="Port of the ops HTTP server; 0 turns it off.")
    metrics_enabled: bool = Field(default=True, description="Prometheus metrics, and FastStream's middleware.")
    lag_sample_interval_s: float = Field(default=5.0, gt=0, description="How often the ops server samples lag.")
    lag_window: int = Field(default=10, ge=2, description="Samples per partition in a lag status window.")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line.")

    # the web pages people use (docs/CONSOLE.md, docs/SECURITY.md): the staff console (`hub console`, an internal
    # address) and the residents' pages (`hub public`, the address the county exposes behind its TLS proxy)
    web_secret_key: SecretStr | None = Field(
        default=None, description="Signs the staff console's session cookies; `hub console` needs it.")
    web_secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure: set it whenever the pages are served over TLS.")
    web_session_max_age_s: int = Field(default=8 * 3600, ge=60, description="A console sign-in lasts this long.")
    console_approval_audience: int = Field(
        default=1000, ge=0, description="A console notice to more residents than this needs approval (결재); so do "
                                        "notices to the whole county and advertising, whatever their size.")
    console_host: str = Field(default="127.0.0.1", description="Address of the staff console (county network).")
    console_port: int = Field(default=8090, ge=1, le=65535)
    public_host: str = Field(default="127.0.0.1", description="Address of the residents' pages (behind the proxy).")
    public_port: int = Field(default=8091, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, description="External base URL of the residents' pages, used in their links "
                                  "(e.g. https://talk.yp.example.kr).")
    link_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Keys of the residents' signed links: the first signs, all verify; "
                                          "put a new key first to rotate, drop an old one to revoke its links.")
    consent_notice_interval_s: float = Field(
        default=5.0, gt=0, description="How often a running hub tells residents of their consent changes "
                                       "(the law allows 14 days; the hub does it at once).")
    consent_retention_days: int = Field(
        default=1095, ge=0, description="Keep consent evidence this long (audits); 0 keeps it all.")
    optout_hash_key: SecretStr | None = Field(
        default=None, description="Keys the hash under which an outside opt-out list's number that no resident has "
                                  "is kept (`hub residents optouts import`); changing it forgets those numbers.")
    optout_sync_interval_s: float = Field(
        default=3600.0, ge=0, description="How often a running hub imports the SMS gateway's opt-out list (SENS "
                                          "`unsubscribes`), when the SENS keys are set; 0 turns it off.")
    consent_reconfirm_lead_days: int = Field(
        default=30, ge=0, le=365, description="Reconfirm advertising consent this many days before its 2 years.")
    consent_reconfirm_interval_s: float = Field(
        default=3600.0, gt=0, description="How often a running hub looks for residents due a reconfirmation.")
    consent_reconfirm_day_start: time = Field(default=time(8), description="Reconfirmations go from (KST) ...")
    consent_reconfirm_day_end: time = Field(default=time(20), description="... until (KST).")
    link_ttl_days: int = Field(default=90, ge=1, le=3650, description="A resident's link works this long.")
    link_in_county_news: bool = Field(
        default=True, description="County news carries the resident's link too (advertising always does).")

    # local broker (`hub kafka up`)
    local_kafka_home: Path = Path(".kafka")
    local_kafka_port: int = Field(default=9092, ge=1, le=65535)
    local_kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    local_kafka_heap_mb: int = 512

    @field_validator("link_keys", mode="before")
    @classmethod
    def _key_list(cls, value: object) -> object:
        """HUB_LINK_KEYS as a JSON list or comma-separated."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [k.strip() for k in text.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _local_broker(self) -> Self:
        """Unless told where Kafka is, the hub dials the local broker wherever HUB_LOCAL_KAFKA_PORT put it: one
        setting moves both, so a second hub with a broker of its own needs no second address."""
        if "kafka_bootstrap_servers" not in self.model_fields_set:
            self.kafka_bootstrap_servers = f"127.0.0.1:{self.local_kafka_port}"
        return self

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        """A half-configured SASL setup would connect some clients one way and some another (or in the clear):
        refuse it at start-up instead."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs HUB_KAFKA_SASL_MECHANISM, "
                             "HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD")
        if not sasl and self.kafka_sasl_mechanism:
            raise ValueError(f"HUB_KAFKA_SASL_MECHANISM is set but kafka_security_protocol is "
                             f"{self.kafka_security_protocol}: use SASL_SSL (or SASL_PLAINTEXT on a trusted network)")
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("HUB_KAFKA_SSL_KEYFILE needs HUB_KAFKA_SSL_CERTFILE")
        return self

    @property
    def optout_key(self) -> str | None:
        """HUB_OPTOUT_HASH_KEY's value, or None when it is not set."""
        return self.optout_hash_key.get_secret_value() if self.optout_hash_key else None

    def group_id(self, role: str) -> str:
        return f"{self.consumer_group_prefix or self.topic_prefix}.{role}"


def get_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the overrides
