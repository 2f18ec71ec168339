"""What a benchmark run reports: the tables, the headline summary and the comparable figures.

A run is a list of result dicts, one per scenario
(:func:`fastproxy.tools.bench_scenario.summarize`). From it this module derives:

- :func:`summarize_run`: the figures that need several scenarios — compiled/twin CPU ratio,
  metrics on vs off, the ramp's largest real-time session count and what limited it, the session
  setup rate and whether the proxy or the load side was its limit;
- :func:`figures`: one flat ``{"scope:metric": number}`` mapping, the unit of ``--save`` and
  ``--compare`` (:data:`METRICS` says for each metric whether lower or higher is better);
- :func:`format_tables` / :func:`format_summary`: what is printed;
- :func:`document`: the JSON written by ``--json`` and ``--save``.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "METRICS",
    "Metric",
    "document",
    "figures",
    "format_summary",
    "format_tables",
    "summarize_run",
]

REAL_TIME_P99_MS = 50.0
BUSY_PERCENT = 85.0  # a process above this share of its core is taken as the limit


@dataclass(frozen=True)
class Metric:
    """How to read one figure: its name in reports, which way is better, and its noise floor
    (an absolute change smaller than ``slack`` is never a regression, whatever the percentage)."""

    label: str
    better: str  # "lower" | "higher"
    slack: float = 0.0


METRICS: dict[str, Metric] = {
    "cpu_us_per_frame": Metric("proxy CPU µs per relayed frame", "lower"),
    "rtt_p50_ms": Metric("round trip p50 (ms)", "lower", 0.25),
    "rtt_p99_ms": Metric("round trip p99 (ms)", "lower", 1.0),
    "frames_lost": Metric("frames lost", "lower"),
    "rss_kib_per_idle_session": Metric("proxy RSS per idle session (KiB)", "lower", 1.0),
    "setup_per_s": Metric("session setups per second", "higher"),
    "setup_cpu_us_per_session": Metric("proxy CPU µs per session setup", "lower"),
    "max_realtime_sessions": Metric("largest real-time session count", "higher"),
    "c_over_py_cpu": Metric("compiled / twin CPU per frame", "lower", 0.02),
    "metrics_overhead_pct": Metric("metrics CPU overhead (%)", "lower", 3.0),
}


_PREFIXED = ("ramp", "metrics", "profile")  # groups whose runs are not the plain comparison


def scope(r: dict[str, Any]) -> str:
    """The stable name of one result in figures: ``24k-300-c``, ``idle-1000-c`` ..."""
    s = r["scenario"]
    if s["kind"] == "idle":
        return f"{s['group']}-{s['sessions']}-{r['impl']}"
    name = f"{s['audio']}-{s['sessions']}-{r['impl']}"
    if not s.get("metrics", True):
        name += "-nometrics"
    if s["group"] in _PREFIXED:
        name = f"{s['group']}-{name}"
    return name


def _rtt(r: dict[str, Any], key: str) -> float | None:
    value = r.get("rtt_ms", {}).get(key)
    return None if value is None else float(value)


# --------------------------------------------------------------------------- derived figures


def _stream(results: Sequence[dict[str, Any]], group: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in results
        if r["scenario"]["kind"] == "stream" and (group is None or r["scenario"]["group"] == group)
    ]


def _cpu_ratios(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in _stream(results):
        s = r["scenario"]
        if s["group"] in _PREFIXED or not s.get("metrics", True):
            continue
        by_key.setdefault((s["audio"], s["sessions"]), {})[r["impl"]] = r
    out = []
    for (audio, sessions), pair in sorted(by_key.items()):
        c, py = pair.get("c"), pair.get("py")
        if c is None or py is None:
            continue
        c_cpu, py_cpu = c.get("proxy_cpu_us_per_frame"), py.get("proxy_cpu_us_per_frame")
        if c_cpu and py_cpu:
            ratio = c_cpu / py_cpu
            out.append(
                {"audio": audio, "sessions": sessions, "c": c_cpu, "py": py_cpu, "ratio": ratio}
            )
    return out


def _metrics_overhead(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    group = _stream(results, "metrics")
    on = [r["proxy_cpu_us_per_frame"] for r in group if r["scenario"]["metrics"]]
    off = [r["proxy_cpu_us_per_frame"] for r in group if not r["scenario"]["metrics"]]
    on, off = [v for v in on if v], [v for v in off if v]
    if not on or not off:
        return None
    on_mid, off_mid = statistics.median(on), statistics.median(off)
    return {
        "on_us": on_mid,
        "off_us": off_mid,
        "runs": len(on) + len(off),
        "overhead_pct": 100.0 * (on_mid - off_mid) / off_mid,
        "sessions": group[0]["scenario"]["sessions"],
    }


def limiter(r: dict[str, Any], prefix: str = "") -> str:
    """What most likely bounded a run: the proxy's core, the load side's core, or the machine."""
    proxy = r.get(f"{prefix}proxy_cpu_percent") or 0.0
    load = (r.get(f"{prefix}loadgen_cpu_percent") or 0.0) + (
        r.get(f"{prefix}mock_cpu_percent") or 0.0
    )
    if proxy >= BUSY_PERCENT:
        return f"the proxy (its core at {proxy:.0f}%)"
    if load >= BUSY_PERCENT:
        return (
            f"the load side (load generator + mock upstream at {load:.0f}% of their shared "
            f"core; proxy at {proxy:.0f}%)"
        )
    others = r.get("other_processes_cpu_percent") or 0.0
    if others >= 30.0:
        return f"a busy machine (other processes used {others:.0f}% of a core; proxy {proxy:.0f}%)"
    return (
        f"neither core saturated (proxy {proxy:.0f}%, load side {load:.0f}%, others {others:.0f}%)"
    )


def _ramp(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    from fastproxy.tools.bench_scenario import holds_real_time

    steps = sorted(_stream(results, "ramp"), key=lambda r: r["scenario"]["sessions"])
    if not steps:
        return None
    passed = [r for r in steps if holds_real_time(r, REAL_TIME_P99_MS)]
    failed = [r for r in steps if not holds_real_time(r, REAL_TIME_P99_MS)]
    best = max(passed, key=lambda r: r["scenario"]["sessions"]) if passed else None
    first_fail = min(failed, key=lambda r: r["scenario"]["sessions"]) if failed else None
    out: dict[str, Any] = {
        "steps": [
            {
                "sessions": r["scenario"]["sessions"],
                "holds": holds_real_time(r, REAL_TIME_P99_MS),
                "p99_ms": _rtt(r, "p99"),
                "lost": r.get("frames_lost"),
                "proxy_cpu_percent": r.get("proxy_cpu_percent"),
                "load_cpu_percent": (r.get("loadgen_cpu_percent") or 0.0)
                + (r.get("mock_cpu_percent") or 0.0),
            }
            for r in steps
        ],
        "max_realtime_sessions": best["scenario"]["sessions"] if best else 0,
        "first_failing_sessions": first_fail["scenario"]["sessions"] if first_fail else None,
        "limited_by": limiter(first_fail) if first_fail else "not reached (every step held)",
    }
    if best is not None and best.get("proxy_cpu_us_per_frame"):
        rate = best["scenario"]["rate"]
        # one session = rate frames in + rate frames out per second
        out["projected_proxy_sessions_per_core"] = 1e6 / (best["proxy_cpu_us_per_frame"] * 2 * rate)
    return out


def _setup(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    group = [r for r in results if r["scenario"]["group"] == "setup"]
    if not group or group[-1].get("setup_rate_per_s") is None:
        return None
    r = group[-1]
    rate = r["setup_rate_per_s"]
    cpu_us = r.get("setup_proxy_cpu_us_per_session")
    return {
        "sessions": r["scenario"]["sessions"],
        "rate_per_s": rate,
        "proxy_cpu_us_per_setup": cpu_us,
        "projected_proxy_setups_per_core": 1e6 / cpu_us if cpu_us else None,
        "limited_by": limiter(r, "setup_"),
        "target_met": rate >= 2000.0,
    }


def _idle(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    group = [r for r in results if r["scenario"]["group"] == "idle"]
    if not group or group[-1].get("proxy_rss_kib_per_idle_session") is None:
        return None
    r = group[-1]
    return {
        "sessions": r["sessions_ready"],
        "kib_per_session": r["proxy_rss_kib_per_idle_session"],
        "proxy_rss_mib": r.get("proxy_rss_mib"),
        "idle_proxy_cpu_percent": r.get("idle_proxy_cpu_percent"),
        "target_met": r["proxy_rss_kib_per_idle_session"] <= 32.0,
    }


def summarize_run(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures that combine several scenarios (absent parts are None)."""
    return {
        "cpu_ratio": _cpu_ratios(results),
        "metrics": _metrics_overhead(results),
        "ramp": _ramp(results),
        "setup": _setup(results),
        "idle": _idle(results),
    }


def figures(results: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, float]:
    """Every comparable figure of a run as ``{"scope:metric": value}`` (see :data:`METRICS`)."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)

    for r in results:
        name = scope(r)
        if r["scenario"]["kind"] == "stream":
            put(f"{name}:cpu_us_per_frame", r.get("proxy_cpu_us_per_frame"))
            put(f"{name}:rtt_p50_ms", _rtt(r, "p50"))
            put(f"{name}:rtt_p99_ms", _rtt(r, "p99"))
            if r["scenario"]["group"] != "ramp":  # ramp steps past the limit lose on purpose
                put(f"{name}:frames_lost", r.get("frames_lost"))
        elif r["scenario"]["group"] == "idle":
            put(f"{name}:rss_kib_per_idle_session", r.get("proxy_rss_kib_per_idle_session"))
        elif r["scenario"]["group"] == "setup":
            put(f"{name}:setup_per_s", r.get("setup_rate_per_s"))
            put(f"{name}:setup_cpu_us_per_session", r.get("setup_proxy_cpu_us_per_session"))
    for row in summary.get("cpu_ratio") or []:
        put(f"ratio-{row['audio']}-{row['sessions']}:c_over_py_cpu", row["ratio"])
    if summary.get("metrics"):
        put("metrics:metrics_overhead_pct", summary["metrics"]["overhead_pct"])
    if summary.get("ramp"):
        put("ramp:max_realtime_sessions", summary["ramp"]["max_realtime_sessions"])
    return out


# --------------------------------------------------------------------------- tables


def _num(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _rtts(r: dict[str, Any]) -> str:
    return " / ".join(_num(_rtt(r, k), ".2f") for k in ("p50", "p99", "p99.9"))


Row = tuple[str, Callable[[dict[str, Any]], str]]

STREAM_ROWS: list[Row] = [
    (
        "sessions ready / requested",
        lambda r: f"{r['sessions_ready']} / {r['scenario']['sessions']}",
    ),
    ("session setup rate (/s)", lambda r: _num(r["setup_rate_per_s"], ".0f")),
    ("measured window (s)", lambda r: _num(r["window_seconds"], ".1f")),
    (
        "frames sent / received / lost",
        lambda r: f"{r['frames_sent']} / {r['frames_received']} / {r['frames_lost']}",
    ),
    ("proxy CPU µs per relayed frame", lambda r: _num(r["proxy_cpu_us_per_frame"], ".2f")),
    ("proxy CPU (% of one core)", lambda r: _num(r["proxy_cpu_percent"])),
    ("round trip p50 / p99 / p99.9 (ms)", _rtts),
    ("proxy RSS (MiB)", lambda r: _num(r["proxy_rss_mib"])),
    ("proxy RSS per session (KiB)", lambda r: _num(r["proxy_rss_kib_per_session"], ".0f")),
    ("load generator CPU (%)", lambda r: _num(r["loadgen_cpu_percent"])),
    ("mock upstream CPU (%)", lambda r: _num(r["mock_cpu_percent"])),
    ("max send lag (ms)", lambda r: _num(r["max_send_lag_ms"])),
    ("other processes' CPU (% of one core)", lambda r: _num(r["other_processes_cpu_percent"])),
    ("proxy preempted (/s)", lambda r: _num(r["proxy_preempted_per_s"], ".0f")),
]

IDLE_ROWS: list[Row] = [
    (
        "sessions ready / requested",
        lambda r: f"{r['sessions_ready']} / {r['scenario']['sessions']}",
    ),
    ("session setup rate (/s)", lambda r: _num(r["setup_rate_per_s"], ".0f")),
    (
        "setup time p50 / p99 (ms)",
        lambda r: " / ".join(_num(r["setup_ms"].get(k), ".1f") for k in ("p50", "p99")),
    ),
    ("proxy CPU µs per setup", lambda r: _num(r["setup_proxy_cpu_us_per_session"], ".0f")),
    ("proxy CPU during setup (%)", lambda r: _num(r["setup_proxy_cpu_percent"])),
    (
        "load gen. + mock CPU during setup (%)",
        lambda r: _num(
            (r["setup_loadgen_cpu_percent"] or 0.0) + (r["setup_mock_cpu_percent"] or 0.0)
        ),
    ),
    ("proxy RSS (MiB)", lambda r: _num(r["proxy_rss_mib"])),
    ("proxy RSS per idle session (KiB)", lambda r: _num(r["proxy_rss_kib_per_idle_session"])),
    ("proxy CPU while idle (%)", lambda r: _num(r["idle_proxy_cpu_percent"])),
]

GROUP_TITLES = {
    "passthrough": "24 kHz passthrough",
    "resample": "16 kHz client (resampled both ways)",
    "mulaw": "μ-law 8 kHz",
    "metrics": "metrics on vs off (--no-metrics)",
    "ramp": f"ramp: real time holds? (p99 < {REAL_TIME_P99_MS:g} ms, 0 lost)",
    "idle": "idle sessions: memory",
    "setup": "session setup rate",
    "custom": "custom",
    "profile": "under the profiler (figures disturbed by sampling)",
}


def _table(results: Sequence[dict[str, Any]], rows: list[Row], title: str) -> list[str]:
    head = [title, *[f"{r['label']} {r['impl']}" for r in results]]
    body = [head, *[[label, *[fn(r) for r in results]] for label, fn in rows]]
    widths = [max(len(row[i]) for row in body) for i in range(len(head))]
    lines = []
    for index, row in enumerate(body):
        cells = [
            row[0].ljust(widths[0]),
            *[c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)],
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_tables(results: Sequence[dict[str, Any]], max_columns: int = 5) -> str:
    """One table per suite group (at most ``max_columns`` scenarios wide), then the notes."""
    lines = ["fastproxy end-to-end load benchmark (loopback; mock upstream in echo mode)"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["scenario"]["group"], []).append(r)
    for group, members in groups.items():
        rows = IDLE_ROWS if members[0]["scenario"]["kind"] == "idle" else STREAM_ROWS
        for start in range(0, len(members), max_columns):
            lines.append("")
            lines.extend(
                _table(members[start : start + max_columns], rows, GROUP_TITLES.get(group, group))
            )
    lines.append("")
    for r in results:
        tag = f"[{r['label']}, {r['impl']}]"
        lines.append(f"{tag} {r['pinning']}; load avg before {r['loadavg_before']:.2f}")
        lines.extend(f"{tag} note: {n}" for n in r["notes"])
        lines.extend(f"{tag} error: {e}" for e in r["errors"][:5])
    return "\n".join(lines)


def format_summary(summary: dict[str, Any], results: Sequence[dict[str, Any]]) -> str:
    """The headline: the figures the benchmarks issue asks for, each with its target."""
    lines = ["", "summary"]
    for row in summary.get("cpu_ratio") or []:
        c = next(
            (r for r in _stream(results) if scope(r) == f"{row['audio']}-{row['sessions']}-c"), None
        )
        rtt = (
            f"; compiled p99 {_num(_rtt(c, 'p99'), '.2f')} ms, lost {c['frames_lost']}" if c else ""
        )
        lines.append(
            f"  {row['audio']} x {row['sessions']} sessions: compiled {row['c']:.2f} µs/frame, "
            f"twin {row['py']:.2f} µs/frame -> ratio {row['ratio']:.2f}"
            f"{' (target <= 0.80)' if row['audio'] == '24k' else ''}{rtt}"
        )
    m = summary.get("metrics")
    if m:
        lines.append(
            f"  metrics on vs off ({m['sessions']} sessions, median of {m['runs']} runs): "
            f"{m['on_us']:.2f} vs {m['off_us']:.2f} µs/frame -> {m['overhead_pct']:+.1f}% "
            "(target within 3%)"
        )
    ramp = summary.get("ramp")
    if ramp:
        steps = ", ".join(
            f"{s['sessions']}{'' if s['holds'] else ' (fails)'}" for s in ramp["steps"]
        )
        lines.append(
            f"  largest session count holding real time: {ramp['max_realtime_sessions']} "
            f"(steps {steps}); limited by {ramp['limited_by']}"
        )
        if ramp.get("projected_proxy_sessions_per_core"):
            lines.append(
                "    at that step's CPU per frame the proxy alone would fill one core at "
                f"~{ramp['projected_proxy_sessions_per_core']:.0f} sessions"
            )
    idle = summary.get("idle")
    if idle:
        lines.append(
            f"  RSS per idle session: {idle['kib_per_session']:.1f} KiB over {idle['sessions']} "
            f"sessions (target <= 32 KiB: {'met' if idle['target_met'] else 'NOT met'})"
        )
    setup = summary.get("setup")
    if setup:
        projected = setup.get("projected_proxy_setups_per_core")
        extra = ""
        if projected:
            extra = (
                f"; proxy CPU {setup['proxy_cpu_us_per_setup']:.0f} µs per setup "
                f"(~{projected:.0f}/s per core)"
            )
        lines.append(
            f"  session setups: {setup['rate_per_s']:.0f}/s over {setup['sessions']} "
            f"(target >= 2000/s: {'met' if setup['target_met'] else 'not met'}); limited by "
            f"{setup['limited_by']}{extra}"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


# --------------------------------------------------------------------------- documents


def _strip(r: dict[str, Any]) -> dict[str, Any]:
    raw = dict(r.get("raw", {}))
    raw.pop("timeline", None)
    return {**r, "raw": raw}


def document(
    results: Sequence[dict[str, Any]], suite: str, argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """The JSON of a run: machine, results (per-second timelines included), summary, figures."""
    summary = summarize_run(results)
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "benchmark": "fastproxy-e2e-load",
        "version": 2,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "suite": suite,
        "command": list(argv) if argv is not None else None,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_after": list(load),
        },
        "results": list(results),
        "summary": summary,
        "figures": figures(results, summary),
    }


def baseline_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the bulky per-second timelines (what ``--save`` stores)."""
    return {**doc, "results": [_strip(r) for r in doc.get("results", [])]}
