"""Runs the conformance suite's ``async def`` tests under both event loops.

Every coroutine test gets the ``loop_kind`` fixture, parametrized over ``uvloop`` and the default
asyncio loop, and is run to completion in a fresh loop of that kind by ``e2e_kit.run`` (a tiny
runner instead of pytest-asyncio). ``env`` gives a factory of :class:`e2e_kit.Env` bound to the
test's loop kind: ``async with env(confirming=True, sequencer_timeout_ms=500) as e: ...``.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import pytest
from e2e_kit import LOOP_KINDS, Env, run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "loop_kind" in metafunc.fixturenames and inspect.iscoroutinefunction(metafunc.function):
        metafunc.parametrize("loop_kind", LOOP_KINDS)


@pytest.fixture
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "uvloop"))


@pytest.fixture
def env(loop_kind: str) -> Any:
    return functools.partial(Env, loop_kind)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    funcargs = pyfuncitem.funcargs
    kwargs = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    run(pyfuncitem.obj(**kwargs), funcargs["loop_kind"])
    return True


HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # every coroutine test here must run under both loops: make sure it asked for loop_kind
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and HERE in item.path.parents
            and inspect.iscoroutinefunction(item.obj)
        ):
            assert "loop_kind" in item.fixturenames, f"{item.nodeid} needs env or loop_kind"
