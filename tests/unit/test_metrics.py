"""fastproxy.metrics: each counter moves exactly when PROTOCOL.md says; README lists /metrics."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fastproxy.metrics import Metrics, RelayCounters
from fastproxy.protocol import events as ev
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.session import Session

README = Path(__file__).resolve().parents[2] / "README.md"


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def ready_session(metrics: Metrics) -> Session:
    s = Session(SessionOptions(), connection_id="c", stats=metrics.stats())
    s.start(0)
    s.handle(ev.UpstreamOpened(), 0)
    s.handle(ev.ClientText(b'{"type":"Settings"}'), 0)
    s.handle(ev.UpstreamText(b'{"type":"session.updated"}'), 1)
    return s


def test_bad_client_message_counts_its_kind_once() -> None:
    metrics = Metrics(CollectorRegistry())
    s = ready_session(metrics)
    s.handle(ev.ClientText(b'{"type":"CustomProbe"}'), 2)
    s.handle(ev.ClientText(b"not json"), 3)
    kind = "fastproxy_protocol_violations_total"
    assert sample(metrics, kind, kind="disallowed_client_message_type") == 1
    assert sample(metrics, kind, kind="invalid_client_json") == 1
    assert sample(metrics, kind, kind="sequencer_timeout") == 0


def test_completed_turn_counts_kind_and_status_once() -> None:
    metrics = Metrics(CollectorRegistry())
    s = ready_session(metrics)
    s.handle(ev.UpstreamText(b'{"type":"response.created","response":{"id":"r1"}}'), 10)
    s.handle(
        ev.UpstreamText(b'{"type":"response.done","response":{"id":"r1","status":"completed"}}'), 20
    )
    s.handle(
        ev.UpstreamText(b'{"type":"response.done","response":{"id":"r1","status":"completed"}}'), 21
    )
    assert sample(metrics, "fastproxy_turns_total", kind="server") == 1
    assert sample(metrics, "fastproxy_turns_completed_total", status="completed") == 1
    assert sample(metrics, "fastproxy_turns_total", kind="reply") == 0


def test_upstream_error_codes_are_bounded() -> None:
    metrics = Metrics(CollectorRegistry())
    s = ready_session(metrics)
    s.handle(ev.UpstreamText(b'{"type":"error","error":{"code":"rate_limit_exceeded"}}'), 2)
    s.handle(ev.UpstreamText(b'{"type":"error","error":{"code":"client-chosen-\\u2603"}}'), 3)
    assert sample(metrics, "fastproxy_upstream_errors_total", code="rate_limit_exceeded") == 1
    assert sample(metrics, "fastproxy_upstream_errors_total", code="other") == 1


class FakeRelay:
    frames_in = 3
    bytes_in = 2880
    frames_out = 2
    bytes_out = 1920


def test_relay_counters_flush_deltas_only() -> None:
    metrics = Metrics(CollectorRegistry())
    counters = RelayCounters(metrics)
    relay = FakeRelay()
    counters.flush(relay)
    counters.flush(relay)
    assert sample(metrics, "fastproxy_audio_frames_total", direction="client_in") == 3
    assert sample(metrics, "fastproxy_audio_bytes_total", direction="client_out") == 1920
    relay.frames_in, relay.bytes_in = 5, 4800
    counters.flush(relay)
    assert sample(metrics, "fastproxy_audio_frames_total", direction="client_in") == 5


def test_readme_lists_exactly_the_exposed_metrics() -> None:
    metrics = Metrics(CollectorRegistry(), implementation="py")
    body, _ = metrics.render()
    exposed = set()
    for family in text_string_to_metric_families(body.decode()):
        name = family.name
        if family.type == "counter":
            name += "_total"
        elif family.type == "info":
            name += "_info"
        exposed.add(name)
    section = README.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(fastproxy_[a-z_]+)`", section, flags=re.M))
    assert listed == exposed
    assert (
        sample(metrics, "fastproxy_build_info", version=metrics_version(), implementation="py") == 1
    )


def metrics_version() -> str:
    from fastproxy import __version__

    return __version__
