"""Every Prometheus metric fastproxy exports, defined once, with its help text.

Label values come only from fixed sets defined here (never a client- or upstream-supplied
string): an upstream error code outside ``KNOWN_UPSTREAM_CODES`` is counted as ``other``.
Protocol events reach these metrics through ``MetricsStats``, the Session's counting hook
(fastproxy.protocol.stats); audio frame and byte counts live in C fields of the relay and are
copied here by ``RelayCounters.flush`` on a timer and at session end — never a prometheus call
per frame (each increment takes a lock).

Multi-worker mode (``--workers N``, N > 1; fastproxy.net.supervisor): prometheus-client's
multiprocess mode. The supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh per-run directory
before any process imports prometheus_client, so every metric value lives in a per-process mmap
file there; ``Metrics(multiprocess_dir=...)`` then renders ``/metrics`` with a
``MultiProcessCollector`` over that directory, so whichever worker answers a scrape reports the
totals of all workers. Gauges therefore declare their ``multiprocess_mode`` (``livesum`` for
active sessions, ``livemax`` for build info), and build info is a gauge rather than an ``Info``
(which multiprocess mode does not support); its text exposition is the same either way.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from fastproxy import __version__
from fastproxy.protocol.stats import SessionStats

TURN_KINDS: Final = ("reply", "tool", "audio", "scripted", "server")
TURN_STATUSES: Final = ("completed", "cancelled", "failed", "incomplete", "timeout")
VIOLATION_KINDS: Final = (
    # PROTOCOL.md §12.3
    "invalid_client_json",
    "disallowed_client_message_type",
    "unmapped_upstream_event",
    "malformed_upstream_event",
    "invalid_upstream_json",
    "unexpected_upstream_binary",
    "active_response_conflict",
    "sequencer_timeout",
    # the proxy's refusals (§10.4, §3.4) and its own failures
    "unsupported_audio_format",
    "client_queue_overflow",
    "message_too_large",
    "client_send_buffer_overflow",
    "internal_error",
)
SESSION_OUTCOMES: Final = (
    "ok",
    "client_closed",
    "upstream_failed",
    "refused_auth",
    "refused_limit",
    "error",
)
KNOWN_UPSTREAM_CODES: Final = frozenset(
    {
        "unknown",
        "server_error",
        "rate_limit_exceeded",
        "insufficient_quota",
        "invalid_api_key",
        "invalid_value",
        "invalid_type",
        "invalid_event",
        "missing_required_parameter",
        "unknown_parameter",
        "decimal_below_min_value",
        "decimal_above_max_value",
        "integer_below_min_value",
        "integer_above_max_value",
        "string_above_max_length",
        "conversation_already_has_active_response",
        "response_cancel_not_active",
        "input_audio_buffer_commit_empty",
        "item_truncate_invalid_item_id",
        "cannot_update_voice",
        "session_expired",
        "session_max_duration",
        "idle_timeout",
    }
)
DIRECTIONS: Final = ("client_in", "client_out")  # audio from the client / to the client
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
DURATION_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def worker_restarts_counter(registry: CollectorRegistry | None) -> Counter:
    """``fastproxy_worker_restarts_total``: incremented by the supervisor, 0 in every worker."""
    return Counter(
        "fastproxy_worker_restarts",
        "Worker processes the supervisor restarted after they died (--workers > 1).",
        registry=registry,
    )


class Metrics:
    """The metric objects, registered in ``registry`` (the default one in production).

    ``worker`` labels this process's ``fastproxy_worker_sessions_total`` (the worker index, "0"
    in single-process mode). ``multiprocess_dir``: render ``/metrics`` by aggregating every
    process's files in that directory (multi-worker mode, see the module docstring).
    """

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        implementation: str = "c",
        *,
        worker: str = "0",
        multiprocess_dir: str | None = None,
    ) -> None:
        self.registry = registry
        self.render_registry = registry
        if multiprocess_dir is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            self.render_registry = CollectorRegistry()
            MultiProcessCollector(self.render_registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        r = registry
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: no use here
        self.sessions_active = Gauge(
            "fastproxy_sessions_active",
            "Client sessions (pairs) currently open.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sessions = Counter(
            "fastproxy_sessions",
            "Client sessions ended or refused, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.turns = Counter(
            "fastproxy_turns",
            "Responses the upstream ran (turns started), by kind (PROTOCOL.md §12.3).",
            ["kind"],
            registry=r,
        )
        self.turns_completed = Counter(
            "fastproxy_turns_completed",
            "Turns completed, by response status (timeout: the sequencer gave up).",
            ["status"],
            registry=r,
        )
        self.violations = Counter(
            "fastproxy_protocol_violations",
            "Protocol rules broken by the client or the upstream, and the proxy's refusals.",
            ["kind"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "fastproxy_upstream_errors",
            "Upstream error events, by error code (unlisted codes as 'other').",
            ["code"],
            registry=r,
        )
        self.barge_ins = Counter(
            "fastproxy_barge_ins",
            "User speech that interrupted audible agent audio (truncations).",
            registry=r,
        )
        self.audio_frames = Counter(
            "fastproxy_audio_frames",
            "Audio messages relayed: client_in = client to upstream, client_out = to the client.",
            ["direction"],
            registry=r,
        )
        self.audio_bytes = Counter(
            "fastproxy_audio_bytes",
            "Audio bytes relayed (upstream format for client_in, client format for client_out).",
            ["direction"],
            registry=r,
        )
        self.response_latency = Histogram(
            "fastproxy_response_latency_seconds",
            "End of the user's turn to the first agent audio (AgentStartedSpeaking.total_latency).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.settings_applied = Histogram(
            "fastproxy_settings_applied_seconds",
            "First Settings received to SettingsApplied sent.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_connect = Histogram(
            "fastproxy_upstream_connect_seconds",
            "Upstream WebSocket connect (TCP, TLS and upgrade) duration.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.session_duration = Histogram(
            "fastproxy_session_duration_seconds",
            "Client session duration, from the upgrade to the end of both legs.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.worker_sessions = Counter(
            "fastproxy_worker_sessions",
            "Client sessions accepted, by worker process index (0 with a single process).",
            ["worker"],
            registry=r,
        )
        self.worker_restarts = worker_restarts_counter(r)
        self.build_info = Gauge(
            "fastproxy_build_info",
            "fastproxy version and hot-path implementation (c or py); always 1.",
            ["version", "implementation"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.build_info.labels(__version__, implementation).set(1)
        self._worker_sessions = self.worker_sessions.labels(worker)
        # Every bounded label value exists from the start, at 0, so dashboards and rate()
        # see each series before its first event.
        for kind in TURN_KINDS:
            self.turns.labels(kind)
        for status in TURN_STATUSES:
            self.turns_completed.labels(status)
        for kind in VIOLATION_KINDS:
            self.violations.labels(kind)
        for outcome in SESSION_OUTCOMES:
            self.sessions.labels(outcome)
        for direction in DIRECTIONS:
            self.audio_frames.labels(direction)
            self.audio_bytes.labels(direction)
        self._violation = {k: self.violations.labels(k) for k in VIOLATION_KINDS}
        self._turn = {k: self.turns.labels(k) for k in TURN_KINDS}
        self._completed = {s: self.turns_completed.labels(s) for s in TURN_STATUSES}

    def render(self) -> tuple[bytes, str]:
        """The exposition text for ``/metrics``."""
        return generate_latest(self.render_registry), CONTENT_TYPE_LATEST

    def session_accepted(self) -> None:
        self._worker_sessions.inc()

    def stats(self) -> MetricsStats:
        return MetricsStats(self)

    def violation(self, kind: str) -> None:
        counter = self._violation.get(kind)
        (counter if counter is not None else self.violations.labels("internal_error")).inc()

    def turn_started(self, kind: str) -> None:
        counter = self._turn.get(kind)
        if counter is not None:
            counter.inc()

    def turn_completed(self, status: str) -> None:
        counter = self._completed.get(status) or self._completed["incomplete"]
        counter.inc()

    def upstream_error(self, code: str) -> None:
        self.upstream_errors.labels(code if code in KNOWN_UPSTREAM_CODES else "other").inc()


class MetricsStats(SessionStats):
    """The Session's counting hook, exporting to Prometheus (keeps the base tallies too)."""

    __slots__ = ("metrics",)

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def turn_started(self, kind: str) -> None:
        super().turn_started(kind)
        self.metrics.turn_started(kind)

    def turn_completed(self, status: str) -> None:
        super().turn_completed(status)
        self.metrics.turn_completed(status)

    def violation(self, kind: str) -> None:
        super().violation(kind)
        self.metrics.violation(kind)

    def upstream_error(self, code: str) -> None:
        super().upstream_error(code)
        self.metrics.upstream_error(code)

    def barge_in(self) -> None:
        super().barge_in()
        self.metrics.barge_ins.inc()

    def response_latency(self, seconds: float) -> None:
        self.metrics.response_latency.observe(seconds)

    def settings_applied_latency(self, seconds: float) -> None:
        self.metrics.settings_applied.observe(seconds)


class RelayCounters:
    """Copies one relay's C counters into the Prometheus counters, as deltas."""

    __slots__ = ("bytes_in", "bytes_out", "frames_in", "frames_out", "metrics")

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.frames_in = self.bytes_in = self.frames_out = self.bytes_out = 0

    def flush(self, relay: Any) -> None:
        m = self.metrics
        frames_in, bytes_in = relay.frames_in, relay.bytes_in
        frames_out, bytes_out = relay.frames_out, relay.bytes_out
        if frames_in != self.frames_in:
            m.audio_frames.labels("client_in").inc(frames_in - self.frames_in)
            m.audio_bytes.labels("client_in").inc(bytes_in - self.bytes_in)
            self.frames_in, self.bytes_in = frames_in, bytes_in
        if frames_out != self.frames_out:
            m.audio_frames.labels("client_out").inc(frames_out - self.frames_out)
            m.audio_bytes.labels("client_out").inc(bytes_out - self.bytes_out)
            self.frames_out, self.bytes_out = frames_out, bytes_out
