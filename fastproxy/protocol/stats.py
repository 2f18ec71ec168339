"""Counting hooks of the Session (PROTOCOL.md §12.3).

The Session reports every counted event to a ``SessionStats`` object. This base class only
tallies them in dicts (what the unit tests read); fastproxy.metrics subclasses it to export the
same events to Prometheus without touching the protocol logic.
"""

from __future__ import annotations

from collections import Counter


class SessionStats:
    """Tallies of one connection's counted events. Override the methods to export them."""

    def __init__(self) -> None:
        self.turns_started: Counter[str] = Counter()  # kind: reply|tool|audio|scripted|server
        self.turns_completed: Counter[str] = Counter()  # status: completed|cancelled|failed|...
        self.violations: Counter[str] = Counter()  # kind, §12.3 plus §10.4 refusals
        self.upstream_errors: Counter[str] = Counter()  # code C of §10.1
        self.barge_ins = 0
        self.response_latencies: list[float] = []  # seconds: turn start -> first agent audio
        self.settings_applied: list[float] = []  # seconds: first Settings -> SettingsApplied

    def turn_started(self, kind: str) -> None:
        self.turns_started[kind] += 1

    def turn_completed(self, status: str) -> None:
        self.turns_completed[status] += 1

    def violation(self, kind: str) -> None:
        self.violations[kind] += 1

    def upstream_error(self, code: str) -> None:
        self.upstream_errors[code] += 1

    def barge_in(self) -> None:
        self.barge_ins += 1

    def response_latency(self, seconds: float) -> None:
        self.response_latencies.append(seconds)

    def settings_applied_latency(self, seconds: float) -> None:
        self.settings_applied.append(seconds)
