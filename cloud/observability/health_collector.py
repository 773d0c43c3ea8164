"""This process's health checks as gauges, so alerts see a worker hang or a broker connection drop."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud.observability.health import registered_checks


class HealthCollector(Collector):
    """``iotsphere_health_check_ok{check}`` and ``iotsphere_broker_connected{client}``, from the registered checks."""

    def collect(self) -> Iterator[Metric]:
        checks = registered_checks()
        ok = GaugeMetricFamily(
            "iotsphere_health_check_ok",
            "This process's checks of its workers' loops and connections: 1 passing, 0 failing.",
            labels=["check"],
        )
        connected = GaugeMetricFamily(
            "iotsphere_broker_connected", "1 while an MQTT client of this process is connected.", labels=["client"]
        )
        for check in checks:
            ok.add_metric([check.name], float(check.ok))
            if check.name.startswith("broker:"):
                connected.add_metric([check.name.removeprefix("broker:")], float(check.ok))
        yield ok
        yield connected
