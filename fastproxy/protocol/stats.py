"""Counting hooks of the Session (PROTOCOL.md §12.3).

The Session reports every counted event to a ``SessionStats`` object. This base class only
tallies them (what the tests read); fastproxy.metrics subclasses it to export the same events to
Prometheus without touching the protocol logic.

The tallies are created on first use: most sessions never count a violation or an upstream
error, and a proxy holding thousands of idle sessions should not pay four Counters and two lists
for each (CPU per session setup, RSS per idle session).
"""

from __future__ import annotations

from collections import Counter


class SessionStats:
    """Tallies of one connection's counted events. Override the methods to export them."""

    __slots__ = (
        "_response_latencies",
        "_settings_applied",
        "_turns_completed",
        "_turns_started",
        "_upstream_errors",
        "_violations",
        "barge_ins",
    )

    def __init__(self) -> None:
        self._turns_started: Counter[str] | None = None
        self._turns_completed: Counter[str] | None = None
        self._violations: Counter[str] | None = None
        self._upstream_errors: Counter[str] | None = None
        self._response_latencies: list[float] | None = None
        self._settings_applied: list[float] | None = None
        self.barge_ins = 0

    # -- the tallies -----------------------------------------------------------------------------

    @property
    def turns_started(self) -> Counter[str]:
        """kind: reply|tool|audio|scripted|server"""
        if self._turns_started is None:
            self._turns_started = Counter()
        return self._turns_started

    @property
    def turns_completed(self) -> Counter[str]:
        """status: completed|cancelled|failed|incomplete|timeout|..."""
        if self._turns_completed is None:
            self._turns_completed = Counter()
        return self._turns_completed

    @property
    def violations(self) -> Counter[str]:
        """kind: §12.3 plus the §10.4 refusals"""
        if self._violations is None:
            self._violations = Counter()
        return self._violations

    @property
    def upstream_errors(self) -> Counter[str]:
        """code C of §10.1"""
        if self._upstream_errors is None:
            self._upstream_errors = Counter()
        return self._upstream_errors

    @property
    def response_latencies(self) -> list[float]:
        """seconds: turn start -> first agent audio"""
        if self._response_latencies is None:
            self._response_latencies = []
        return self._response_latencies

    @property
    def settings_applied(self) -> list[float]:
        """seconds: first Settings -> SettingsApplied"""
        if self._settings_applied is None:
            self._settings_applied = []
        return self._settings_applied

    # -- the hooks -------------------------------------------------------------------------------

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
