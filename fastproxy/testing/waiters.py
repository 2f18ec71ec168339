"""Waiting for a condition on something that changes as messages arrive.

The mock upstream, each of its connections and the test clients all offer "wait until
``predicate(subject)`` holds": a predicate is checked at once, then again every time the subject
calls :meth:`Waiters.notify` (a message, a connect, a close). No polling, no sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


class Waiters(Generic[S]):
    """The pending waits on one subject (``S``), and the one place that re-checks them."""

    __slots__ = ("_pending", "_subject")

    def __init__(self, subject: S) -> None:
        self._subject = subject
        self._pending: list[tuple[Callable[[S], Any], asyncio.Future[Any]]] = []

    def __bool__(self) -> bool:
        return bool(self._pending)

    async def wait(
        self, predicate: Callable[[S], T | None], timeout: float, describe: Callable[[], str]
    ) -> T:
        """The first truthy ``predicate(subject)``; ``TimeoutError`` with ``describe()`` (what
        the subject has seen so far) after ``timeout`` seconds."""
        value = predicate(self._subject)
        if value:
            return value
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiter: tuple[Callable[[S], Any], asyncio.Future[Any]] = (predicate, fut)
        self._pending.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"{describe()}: condition not met within {timeout}s") from None
        finally:
            if waiter in self._pending:
                self._pending.remove(waiter)

    def notify(self) -> None:
        """Re-check every pending predicate (the subject changed)."""
        for predicate, fut in list(self._pending):
            if fut.done():
                continue
            try:
                value = predicate(self._subject)
            except Exception as exc:  # a broken predicate fails its wait, not the caller
                fut.set_exception(exc)
                continue
            if value:
                fut.set_result(value)

    def cancel_all(self) -> None:
        """End every pending wait (the subject is gone)."""
        for _predicate, fut in self._pending:
            if not fut.done():
                fut.cancel()
