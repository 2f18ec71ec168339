"""``fastproxy bench --compare`` / ``--save`` / ``--results`` without running any load.

Synthetic runs are built the way a real one is: a load generator's raw JSON per scenario goes
through ``bench_scenario.summarize`` and ``bench_report.document``. The comparison is then driven
both as a function (``bench_compare.compare``) and through the command line (``fastproxy.cli``
in-process, and once as ``python -m fastproxy bench`` in a subprocess): a baseline better than
the run by more than the threshold fails and names every regressed figure, lower-is-better and
higher-is-better alike; within the threshold it passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fastproxy import cli
from fastproxy.tools import bench_compare, bench_report
from fastproxy.tools.bench_scenario import Scenario, summarize

REPO_ROOT = Path(__file__).resolve().parents[2]


def _stream_raw(cpu_us: float, p50: float, p99: float, lost: int, sessions: int) -> dict[str, Any]:
    sent = sessions * 50 * 10
    return {
        "sessions_ready": sessions,
        "sessions_failed": 0,
        "setup_rate_per_s": 800.0,
        "setup_ms": {"p50": 10.0},
        "setup_cpu": {"sessions": sessions, "proxy_cpu_seconds": sessions * 9e-4},
        "frames": {"sent": sent, "matched": sent - lost, "lost": lost, "misordered": 0},
        "rtt_ms": {"p50": p50, "p90": p50 * 2, "p99": p99, "p99.9": p99 * 2},
        "window": {
            "seconds": 10.0,
            "relayed_frames": 2 * sent,
            "proxy_cpu_us_per_frame": cpu_us,
            "proxy_cpu_percent": 2 * sent * cpu_us / 1e6 * 10,
            "loadgen_cpu_percent": 30.0,
            "mock_cpu_percent": 25.0,
        },
        "memory_kib": {"proxy_before": {"VmRSS": 40000}, "proxy_end": {"VmRSS": 60000}},
        "errors": [],
    }


def _idle_raw(kib_per_session: float, rate: float, sessions: int) -> dict[str, Any]:
    return {
        "sessions_ready": sessions,
        "setup_rate_per_s": rate,
        "setup_ms": {"p50": 40.0, "p99": 70.0},
        "setup_cpu": {
            "sessions": sessions,
            "proxy_cpu_seconds": sessions * 9e-4,
            "proxy_cpu_percent": 90.0,
            "loadgen_cpu_percent": 50.0,
            "mock_cpu_percent": 30.0,
        },
        "memory_kib": {
            "proxy_before": {"VmRSS": 40000},
            "proxy_ready": {"VmRSS": 40000 + int(kib_per_session * sessions)},
        },
        "idle": {"proxy_cpu_percent": 0.1},
        "errors": [],
    }


def make_doc(
    *,
    cpu_c: float = 10.0,
    cpu_py: float = 14.0,
    p99: float = 1.5,
    lost: int = 0,
    kib: float = 30.0,
    setup_rate: float = 1000.0,
    ramp_ok: tuple[int, ...] = (500, 750),
    ramp_fail: int = 1000,
) -> dict[str, Any]:
    """A whole synthetic run: passthrough c/py at 300, idle, setup and a ramp."""
    results = []
    for impl, cpu in (("c", cpu_c), ("py", cpu_py)):
        s = Scenario(group="passthrough", sessions=300, impl=impl)
        raw = _stream_raw(cpu, 0.5, p99 if impl == "c" else 5.0, lost if impl == "c" else 0, 300)
        results.append(summarize(s, impl, raw, [], "proxy on CPU 0", 0.1))
    idle = Scenario(kind="idle", group="idle", sessions=1000, impl="c", warm=50)
    results.append(summarize(idle, "c", _idle_raw(kib, 1100.0, 950), [], "pinned", 0.1))
    setup = Scenario(kind="idle", group="setup", sessions=2000, impl="c")
    results.append(summarize(setup, "c", _idle_raw(40.0, setup_rate, 2000), [], "pinned", 0.1))
    for n in (*ramp_ok, ramp_fail):
        s = Scenario(group="ramp", sessions=n, impl="c", seconds=10.0)
        ok = n != ramp_fail
        raw = _stream_raw(cpu_c, 0.8, 3.0 if ok else 80.0, 0 if ok else 12, n)
        results.append(summarize(s, "c", raw, [], "pinned", 0.1))
    return bench_report.document(results, "full", ["bench"])


# --------------------------------------------------------------------------- the function


def test_figures_cover_every_kind_of_result() -> None:
    figs = make_doc()["figures"]
    assert figs["24k-300-c:cpu_us_per_frame"] == pytest.approx(10.0)
    assert figs["24k-300-py:cpu_us_per_frame"] == pytest.approx(14.0)
    assert figs["ratio-24k-300:c_over_py_cpu"] == pytest.approx(10.0 / 14.0)
    assert figs["24k-300-c:rtt_p99_ms"] == pytest.approx(1.5)
    assert figs["24k-300-c:frames_lost"] == 0
    assert figs["idle-1000-c:rss_kib_per_idle_session"] == pytest.approx(30.0, abs=0.01)
    assert figs["setup-2000-c:setup_per_s"] == pytest.approx(1000.0)
    assert figs["ramp:max_realtime_sessions"] == 750
    assert not any(k.startswith("ramp-") and k.endswith("frames_lost") for k in figs)


def test_identical_runs_pass() -> None:
    result = bench_compare.compare(make_doc(), make_doc(), threshold=10.0)
    assert result.ok and result.rows and not result.only_baseline


def test_worse_beyond_threshold_fails_and_names_each_figure() -> None:
    baseline = make_doc()
    current = make_doc(cpu_c=12.0, kib=36.0, setup_rate=800.0, ramp_ok=(500,), ramp_fail=750)
    result = bench_compare.compare(baseline, current, threshold=10.0)
    regressed = {r.key for r in result.regressions}
    assert regressed >= {
        "24k-300-c:cpu_us_per_frame",  # lower is better: +20%
        "idle-1000-c:rss_kib_per_idle_session",  # +20%
        "setup-2000-c:setup_per_s",  # higher is better: -20%
        "ramp:max_realtime_sessions",  # 750 -> 500
        "ratio-24k-300:c_over_py_cpu",  # 0.71 -> 0.86
    }
    text = bench_compare.format_comparison(result, "main")
    assert "REGRESSION" in text
    for key in regressed:
        assert bench_compare.describe(key) in text


def test_worse_within_threshold_passes() -> None:
    baseline = make_doc()
    current = make_doc(cpu_c=10.9, cpu_py=15.0, kib=32.5, setup_rate=920.0)
    result = bench_compare.compare(baseline, current, threshold=10.0)
    assert result.ok, bench_compare.format_comparison(result, "main")


def test_better_is_never_a_regression() -> None:
    baseline = make_doc()
    current = make_doc(
        cpu_c=5.0, kib=20.0, setup_rate=3000.0, ramp_ok=(500, 750, 1000), ramp_fail=1250
    )
    result = bench_compare.compare(baseline, current, threshold=10.0)
    assert result.ok
    assert {r.status for r in result.rows} >= {"improved"}


def test_lost_frames_from_zero_is_a_regression_and_latency_has_a_noise_floor() -> None:
    baseline = make_doc()
    assert not bench_compare.compare(baseline, make_doc(lost=3), threshold=50.0).ok
    # p99 1.5 -> 2.2 ms is +47%, but within the 1 ms noise floor of a round-trip p99
    assert bench_compare.compare(baseline, make_doc(p99=2.2), threshold=10.0).ok
    regressed = bench_compare.compare(baseline, make_doc(p99=4.0), threshold=10.0).regressions
    assert [r.key for r in regressed] == ["24k-300-c:rtt_p99_ms"]


def test_plain_figure_mappings_and_figures_missing_on_one_side() -> None:
    base = {"24k-100-c:cpu_us_per_frame": 10.0, "24k-300-c:cpu_us_per_frame": 11.0}
    cur = {"24k-100-c:cpu_us_per_frame": 10.5, "mulaw-100-c:cpu_us_per_frame": 9.0}
    result = bench_compare.compare(base, cur, threshold=10.0)
    assert result.ok
    assert result.only_baseline == ["24k-300-c:cpu_us_per_frame"]
    assert result.only_current == ["mulaw-100-c:cpu_us_per_frame"]


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def run_files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "base": tmp_path / "baselines" / "main.json",
        "same": tmp_path / "same.json",
        "worse": tmp_path / "worse.json",
        "slightly": tmp_path / "slightly.json",
    }
    docs = {
        "same": make_doc(),
        "worse": make_doc(cpu_c=13.0, setup_rate=700.0),
        "slightly": make_doc(cpu_c=10.5),
    }
    for name, doc in docs.items():
        paths[name].write_text(json.dumps(doc))
    return paths


def _bench(*args: str) -> int:
    return cli.main(["bench", *args], {})


def test_cli_save_then_compare(
    run_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baselines = str(tmp_path / "baselines")
    assert (
        _bench("--results", str(run_files["same"]), "--save", "main", "--baselines-dir", baselines)
        == 0
    )
    saved = json.loads(run_files["base"].read_text())
    assert saved["figures"] == json.loads(run_files["same"].read_text())["figures"]
    assert all("timeline" not in r["raw"] for r in saved["results"])
    capsys.readouterr()

    compare = ["--compare", "main", "--baselines-dir", baselines, "--threshold", "10"]
    assert _bench("--results", str(run_files["same"]), *compare) == 0
    assert "no regression" in capsys.readouterr().out

    assert _bench("--results", str(run_files["slightly"]), *compare) == 0  # +5% < 10%
    capsys.readouterr()

    assert _bench("--results", str(run_files["worse"]), *compare) == 1
    out = capsys.readouterr().out
    assert "regressed: 24k-300-c: proxy CPU µs per relayed frame" in out
    assert "regressed: setup-2000-c: session setups per second" in out
    assert "higher is better" in out

    # a wider threshold lets the same run pass
    wide = ["--compare", "main", "--baselines-dir", baselines, "--threshold", "50"]
    assert _bench("--results", str(run_files["worse"]), *wide) == 0


def test_cli_errors_are_usage_errors(
    run_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = ["--compare", "nope", "--baselines-dir", str(tmp_path)]
    assert _bench("--results", str(run_files["same"]), *missing) == 2
    assert "cannot read" in capsys.readouterr().err
    not_a_run = tmp_path / "x.json"
    not_a_run.write_text("{}")
    assert _bench("--results", str(not_a_run)) == 2
    assert _bench("--results", str(run_files["same"]), "--save", "bad name!") == 2


def test_python_dash_m_compare_exit_status(run_files: dict[str, Path], tmp_path: Path) -> None:
    bench_compare.save_baseline(json.loads(run_files["same"].read_text()), "main", tmp_path)
    cmd = [sys.executable, "-m", "fastproxy", "bench", "--results", str(run_files["worse"])]
    cmd += ["--compare", "main", "--baselines-dir", str(tmp_path), "--threshold", "10"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert "regressed: 24k-300-c: proxy CPU µs per relayed frame" in proc.stdout


def test_a_percentage_figure_is_compared_in_points() -> None:
    base = {"metrics:metrics_overhead_pct": 1.0}
    assert bench_compare.compare(base, {"metrics:metrics_overhead_pct": 3.5}, 10.0).ok
    worse = bench_compare.compare(base, {"metrics:metrics_overhead_pct": 4.5}, 50.0)
    assert [r.key for r in worse.regressions] == ["metrics:metrics_overhead_pct"]
