"""deploy/grafana/fastproxy.json only queries metrics fastproxy exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fastproxy.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fastproxy.json"


def test_dashboard_queries_only_exposed_metrics() -> None:
    body, _ = Metrics(CollectorRegistry()).render()
    exposed: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        exposed.update(sample.name for sample in family.samples)
        exposed.add(family.name + "_total" if family.type == "counter" else family.name)
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bfastproxy_[a-z_]+", target["expr"])
    }
    assert used, "the dashboard has no queries"
    assert used <= exposed, used - exposed
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("sessions", "turns", "violations", "latency"):
        assert topic in titles
