"""deploy/: the Grafana dashboard queries only metrics the hub exposes, and Prometheus scrapes where the hub serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hub.core.lag import GroupLag, PartitionLag, Status
from hub.metrics import HubMetrics, OpsCollector
from hub.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


class OneGroup:
    dlq_records = 0

    def report(self) -> list[GroupLag]:
        return [GroupLag("g", 0.0, Status.OK, "Stable", 1,
                         (PartitionLag("t", 0, 1, 1, 0, Status.OK, 2, 0.0),))]


def exposed_names() -> set[str]:
    """Every metric name a hub process can expose: its own families and FastStream's middleware."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    metrics = HubMetrics()
    metrics.registry.register(OpsCollector(OneGroup(), dict, dict))  # type: ignore[arg-type]
    KafkaPrometheusMiddleware(registry=metrics.registry, app_name="notice-hub")
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type in ("counter", "histogram"):
            names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_every_metric_the_grafana_dashboard_queries_is_exposed() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "notice-hub.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b((?:hub|kafka|faststream)_[a-z_]+)", e)}
    assert used, "the dashboard queries nothing"
    missing = used - exposed_names()
    assert not missing, f"the dashboard queries metrics the hub does not expose: {sorted(missing)}"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for what in ("lag", "per channel and status", "p50 / p99", "dead letter", "retries"):
        assert what in titles, what


def test_prometheus_scrapes_the_hubs_ops_port() -> None:
    text = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    assert "metrics_path: /metrics" in text
    assert f'"hub:{Settings().ops_port}"' in text
    provisioning = (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    assert "url: http://prometheus:9090" in provisioning and "uid: prometheus" in provisioning


def test_compose_runs_the_local_brokers_kafka_with_its_settings(tmp_path: Path) -> None:
    """docker-compose.yml and `hub kafka up` (hub/kafka/local) are one broker: the same Apache Kafka version,
    topics not created by producing to them, the same default partition count."""
    import yaml

    from hub.kafka.local import LocalKafka

    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text(encoding="utf-8"))
    kafka = compose["services"]["kafka"]
    local = LocalKafka(tmp_path)
    props = dict(line.split("=", 1) for line in local.server_properties().splitlines() if "=" in line)

    assert kafka["image"] == f"apache/kafka:{local.version}"
    env = {k.lower(): str(v).lower() for k, v in kafka["environment"].items()}
    assert env["kafka_auto_create_topics_enable"] == props["auto.create.topics.enable"] == "false"
    assert env["kafka_num_partitions"] == props["num.partitions"]


def test_compose_runs_the_hub_and_its_api_with_health_checks() -> None:
    import yaml

    services = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text(encoding="utf-8"))["services"]

    assert {"kafka", "hub", "api"} <= set(services)
    for name in ("kafka", "hub", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["hub"]["healthcheck"]["test"])
    assert services["api"]["command"][0] == "api"
    assert services["api"]["depends_on"]["hub"]["condition"] == "service_healthy"
    assert services["hub"]["depends_on"]["kafka"]["condition"] == "service_healthy"
