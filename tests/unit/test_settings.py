"""One setting moves the local broker and the hub together: without KAFKA_BOOTSTRAP_SERVERS, the hub dials the
port HUB_LOCAL_KAFKA_PORT gives `hub kafka up`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.cli.kafka import _local_kafka
from hub.settings import Settings

BOOTSTRAP_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "HUB_KAFKA_BOOTSTRAP_SERVERS")


def without_a_named_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment that names no broker (the test session's KAFKA_BOOTSTRAP_SERVERS is removed), and no .env."""
    for name in BOOTSTRAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_bootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    without_a_named_broker(monkeypatch, tmp_path)
    return monkeypatch


@given(port=st.integers(1, 65535))
def test_the_hub_dials_the_local_brokers_port_when_no_broker_is_named(port: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as empty:
        without_a_named_broker(monkeypatch, Path(empty))
        monkeypatch.setenv("HUB_LOCAL_KAFKA_PORT", str(port))

        assert Settings().kafka_bootstrap_servers == _local_kafka().bootstrap == f"127.0.0.1:{port}"


@pytest.mark.parametrize("variable", BOOTSTRAP_VARIABLES)
def test_a_named_broker_wins_over_the_local_port(no_bootstrap: pytest.MonkeyPatch, variable: str) -> None:
    no_bootstrap.setenv("HUB_LOCAL_KAFKA_PORT", "9192")
    no_bootstrap.setenv(variable, "kafka.example:9092")

    assert Settings().kafka_bootstrap_servers == "kafka.example:9092"


def test_the_default_is_the_local_brokers_default_port(no_bootstrap: pytest.MonkeyPatch) -> None:
    assert Settings().kafka_bootstrap_servers == "127.0.0.1:9092"
