"""The AsyncAPI document FastStream generates from the hub's broker: every topic, described, with schemas."""

from __future__ import annotations

from typing import Any

import pytest

from hub.cli.asyncapi import build_asyncapi
from hub.core.events import CATALOGUE, DOMAINS
from hub.core.events.common import CHANNELS
from hub.core.topics import Topics
from hub.settings import Settings


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_asyncapi(Settings(topic_prefix="yp"))


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_it_is_asyncapi_3_with_every_reference_resolving(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] == "notice-hub"
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref


def test_every_hub_topic_is_received_and_sent(doc: dict[str, Any]) -> None:
    topics = Topics.of(Settings(topic_prefix="yp"))
    actions: dict[str, set[str]] = {}
    for operation in doc["operations"].values():
        address = _resolve(doc, operation["channel"]["$ref"])["address"]
        actions.setdefault(address, set()).add(operation["action"])

    for topic in [*topics.all_events, *topics.all_deliveries, *topics.all_retries]:
        assert actions[topic] == {"receive", "send"}, topic
    assert actions[topics.status] == {"send"} and actions[topics.dlq] == {"send"}


@pytest.mark.parametrize("domain", DOMAINS)
def test_event_topics_carry_the_catalogue_models(doc: dict[str, Any], domain: str) -> None:
    topic = Topics.of(Settings(topic_prefix="yp")).events(domain)
    channels = [c for c in doc["channels"].values() if c["address"] == topic]
    assert len(channels) == 2  # the router receives, the ingest API sends
    for channel in channels:
        assert channel["description"]
        (ref,) = [m["$ref"] for m in channel["messages"].values()]
        message = _resolve(doc, ref)
        schema = _resolve(doc, message["payload"]["$ref"])
        declared = schema["properties"]["type"]
        types = set(declared["enum"]) if "enum" in declared else {declared["const"]}
        assert types == {t for t, s in CATALOGUE.items() if s.domain == domain}
        assert "ce_type" in message["headers"]["properties"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_delivery_topics_carry_the_delivery_request(doc: dict[str, Any], channel: str) -> None:
    topic = Topics.of(Settings(topic_prefix="yp")).deliveries(channel)
    for c in (c for c in doc["channels"].values() if c["address"] == topic):
        (ref,) = [m["$ref"] for m in c["messages"].values()]
        assert _resolve(doc, ref)["payload"] == {"$ref": "#/components/schemas/DeliveryRequest"}
