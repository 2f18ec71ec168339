"""fastproxy.testing.waiters: the waits of the mock upstream and the test clients."""

from __future__ import annotations

import asyncio

import pytest

from fastproxy.testing.waiters import Waiters


class Box:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.waiters: Waiters[Box] = Waiters(self)

    def add(self, item: int) -> None:
        self.items.append(item)
        self.waiters.notify()


def test_a_wait_ends_when_a_notify_makes_its_predicate_true() -> None:
    async def main() -> None:
        box = Box()
        task = asyncio.create_task(box.waiters.wait(lambda b: len(b.items) >= 2, 1.0, str))
        await asyncio.sleep(0)
        assert box.waiters  # pending
        box.add(1)
        await asyncio.sleep(0)
        assert not task.done()
        box.add(7)
        assert await task is True
        assert not box.waiters  # removed once done

    asyncio.run(main())


def test_an_already_true_predicate_returns_its_value_at_once() -> None:
    async def main() -> None:
        box = Box()
        box.items.append(5)
        assert await box.waiters.wait(lambda b: b.items[-1], 0.001, str) == 5

    asyncio.run(main())


def test_a_timeout_names_the_subject_and_a_broken_predicate_fails_its_wait() -> None:
    async def main() -> None:
        box = Box()
        with pytest.raises(TimeoutError, match=r"box with \[\]: condition not met within 0.01s"):
            await box.waiters.wait(lambda b: False, 0.01, lambda: f"box with {box.items}")
        assert not box.waiters
        broken = asyncio.create_task(
            box.waiters.wait(lambda b: b.items[3] if b.items else None, 1.0, str)
        )
        await asyncio.sleep(0)
        assert box.waiters and not broken.done()
        box.add(1)  # IndexError inside the predicate: that wait fails, notify() does not
        with pytest.raises(IndexError):
            await broken

    asyncio.run(main())


def test_cancel_all_ends_every_pending_wait() -> None:
    async def main() -> None:
        box = Box()
        tasks = [asyncio.create_task(box.waiters.wait(lambda b: False, 5.0, str)) for _ in "ab"]
        await asyncio.sleep(0)
        box.waiters.cancel_all()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not box.waiters

    asyncio.run(main())
