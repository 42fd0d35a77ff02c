"""What the ingest routes need: the API's own settings, the publisher, the store and the preferences backend."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.cloudevents import CloudEvent
from hub.http.ingest.preferences import PreferencesBackend
from hub.settings import Settings
from hub.store import Store

EventPublisher = Callable[[CloudEvent], Awaitable[tuple[str, int, int]]]
"""Publishes one event and returns (topic, partition, offset) once the broker acknowledged it."""


class IngestSettings(BaseSettings):
    """The ingest API's own settings (HUB_API_HOST, HUB_API_PORT, ...), kept apart from hub.settings for now."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger requests get 413.")
    idempotency_ttl_s: float = Field(default=86_400.0, gt=0, description="How long an Idempotency-Key is kept.")
    idempotency_pending_s: float = Field(
        default=30.0, gt=0, description="After this, an unfinished request's key may be taken over by a retry."
    )


@dataclass
class IngestContext:
    """What the routes need. `store` and `publish` are set when the app starts (create_ingest_app's lifespan,
    or whichever app includes the router)."""

    settings: Settings
    ingest: IngestSettings
    preferences: PreferencesBackend | None = None
    store: Store | None = None
    publish: EventPublisher | None = None

    def require_store(self) -> Store:
        if self.store is None:
            raise HTTPException(503, "the ingest API is starting or stopping")
        return self.store
