"""The benchmark tool's pure parts: suite plans and their time bounds, the profile analysis,
the load generator's formats, the plot. No load runs here (``test_bench_compare`` covers
``--save``/``--compare``; the load itself is ``fastproxy bench --quick``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastproxy.tools import bench, bench_profile, bench_report
from fastproxy.tools.bench_options import GROUPS
from fastproxy.tools.bench_scenario import Scenario, worst_case_seconds
from fastproxy.tools.loadgen import frame_bytes, settings_message


def _planned_seconds(quick: bool) -> float:
    plan = bench.suite(quick, ["c", "py"], GROUPS)
    ramp = [
        bench.ramp_step(quick, n, "c") for n in (bench.RAMP_QUICK if quick else bench.RAMP_FULL)
    ]
    typical = 8.0  # process start, setup, drain and stop around each scenario's own seconds
    return sum(s.seconds + typical if s.kind == "stream" else 15.0 for s in plan + ramp)


def test_suites_cover_every_group_and_fit_their_budgets() -> None:
    full = bench.suite(False, ["c", "py"], GROUPS)
    assert {s.group for s in full} == set(GROUPS) - {"ramp"}  # the ramp is planned while running
    assert {(s.audio, s.sessions, s.impl) for s in full if s.group == "passthrough"} == {
        ("24k", n, i) for n in (100, 300) for i in ("c", "py")
    }
    assert [s.metrics for s in full if s.group == "metrics"] == [True, False, True, False]
    assert [s.sessions for s in full if s.kind == "idle"] == [1000, 2000]
    assert _planned_seconds(quick=True) < bench.QUICK_RUNTIME_S
    assert _planned_seconds(quick=False) < bench.FULL_RUNTIME_S
    assert bench.FULL_RUNTIME_S + 60 <= 15 * 60 and bench.QUICK_RUNTIME_S + 20 <= 3 * 60


def test_every_scenario_is_bounded() -> None:
    for s in bench.suite(False, ["c", "py"], GROUPS):
        s.validate()
        assert worst_case_seconds(s) < 300


def test_only_c_when_asked_and_bad_groups_are_refused() -> None:
    plan = bench.suite(True, ["c"], ["passthrough", "resample"])
    assert {s.impl for s in plan} == {"c"} and {s.group for s in plan} == {
        "passthrough",
        "resample",
    }
    ns = bench.parser().parse_args(["--only", "passthrough,nope"])
    with pytest.raises(ValueError, match="nope"):
        bench._groups(ns)


def test_scenario_validation() -> None:
    with pytest.raises(ValueError):
        Scenario(audio="8k").validate()
    with pytest.raises(ValueError):
        Scenario(kind="idle", sessions=10, warm=10).validate()
    assert Scenario(sessions=300, metrics=False).label == "24k 300 no-metrics"


def test_formats() -> None:
    assert frame_bytes("linear16", 24000) == 960
    assert frame_bytes("linear16", 16000) == 640
    assert frame_bytes("mulaw", 8000) == 160
    settings = json.loads(settings_message("mulaw", 8000))
    assert settings["audio"]["output"] == {
        "encoding": "mulaw",
        "sample_rate": 8000,
        "container": "none",
    }


_LOOP = "<module> (fastproxy/__main__.py:8);run (uvloop/__init__.py:92);run_forever (loop.c:1)"
_READ = "uv__read (stream.c:1);buffer_updated (picows.so)"


def _stack(*frames: str, count: int) -> str:
    return ";".join(frames) + f" {count}"


COLLAPSED = "\n".join(
    [
        _stack(
            _LOOP,
            _READ,
            "ClientLeg_on_ws_frame (_relay_c.pyx:303)",
            "Relay__append (_relay_c.pyx:167)",
            "send (libc.so.6)",
            count=90,
        ),
        _stack(
            _LOOP,
            _READ,
            "UpstreamLeg_on_ws_frame (_relay_c.pyx:320)",
            "Relay__fast_delta (_relay_c.pyx:230)",
            "_sc_b64_decode (scanner.pxi:232)",
            count=10,
        ),
        _stack(_LOOP, "_flush_counters (fastproxy/net/server.py:134)", count=2),
        _stack(_LOOP, "epoll_pwait (libc.so.6)", count=50),
    ]
)

TWIN = _stack(
    _LOOP,
    _READ,
    "on_ws_frame (fastproxy/net/relay_py.py:307)",
    "send_audio_upstream (fastproxy/net/relay_py.py:218)",
    "send (libc.so.6)",
    count=7,
)


def test_profile_analysis_separates_the_loop_from_python_above_it() -> None:
    s = bench_profile.analyse(COLLAPSED)
    assert s.samples == 152
    assert s.audio == 100 and s.audio_with_python == 0 and s.audio_in_syscalls == 90
    assert s.python_above_loop == 2  # the metrics timer, not the audio path
    assert "no Python on the audio path" in bench_profile.format_summary(s, "c", "p.svg", 4.0)
    twin = bench_profile.analyse(TWIN)
    assert twin.audio == twin.audio_with_python == 7


def test_plot_from_a_saved_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from fastproxy.tools.bench_plot import plot
    from tests.integration.test_bench_compare import make_doc

    out = tmp_path / "p.png"
    plot(make_doc()["results"], str(out), title="synthetic")
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("rate", "proxy_core", "load_core", "verdict"),
    [
        (2100.0, 90.0, 90.0, "met"),
        (1200.0, 60.0, 99.0, "at the load generator's limit"),  # only the load side saturated
        (1200.0, 95.0, 99.0, "not met"),  # the proxy's core is saturated too
        (1200.0, 95.0, 40.0, "not met"),  # the proxy is the limit
    ],
)
def test_setup_target_names_who_set_the_limit(
    rate: float, proxy_core: float, load_core: float, verdict: str
) -> None:
    run = {
        "scenario": {"kind": "idle", "group": "setup", "sessions": 2000},
        "setup_rate_per_s": rate,
        "setup_proxy_cpu_us_per_session": 700.0,
        "setup_proxy_core_busy_percent": proxy_core,
        "setup_load_core_busy_percent": load_core,
    }
    setup = bench_report.summarize_run([run])["setup"]
    assert setup["verdict"] == verdict
    assert setup["target_met"] is (verdict != "not met")
    assert round(setup["projected_proxy_setups_per_core"]) == 1429
