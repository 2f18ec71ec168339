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
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _OnFirstUse(Generic[T]):
    """A tally attribute built by ``factory`` when first read, kept in the slot ``_<name>``."""

    def __init__(self, factory: Callable[[], T], doc: str) -> None:
        self.factory = factory
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:  # read on the class (help(), introspection)
            return self  # type: ignore[return-value]
        value: T | None = getattr(obj, self.slot)
        if value is None:
            value = self.factory()
            setattr(obj, self.slot, value)
        return value


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

    turns_started = _OnFirstUse[Counter[str]](Counter, "kind: reply|tool|audio|scripted|server")
    turns_completed = _OnFirstUse[Counter[str]](Counter, "status: completed|cancelled|failed|...")
    violations = _OnFirstUse[Counter[str]](Counter, "kind: §12.3 plus the §10.4 refusals")
    upstream_errors = _OnFirstUse[Counter[str]](Counter, "code C of §10.1")
    response_latencies = _OnFirstUse[list[float]](list, "seconds: turn start -> first audio")
    settings_applied = _OnFirstUse[list[float]](list, "seconds: Settings -> SettingsApplied")

    def __init__(self) -> None:
        self._turns_started = self._turns_completed = None
        self._violations = self._upstream_errors = None
        self._response_latencies = self._settings_applied = None
        self.barge_ins = 0

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
