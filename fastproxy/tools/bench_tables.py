"""How a benchmark run is printed: one table per suite group, the summary, the README's Markdown.

Everything here reads result dicts (:func:`fastproxy.tools.bench_scenario.summarize`) and the
derived figures of :mod:`fastproxy.tools.bench_report`; nothing is computed that is not printed.
A run disturbed by other processes (more than ``NOISY_PERCENT`` of a core) is marked ``*``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastproxy.tools.bench_report import (
    NOISY_PERCENT,
    REAL_TIME_P99_MS,
    rtt_ms,
    scope,
    stream_runs,
    summarize_run,
)

__all__ = ["GROUP_TITLES", "format_markdown", "format_summary", "format_tables"]

Row = tuple[str, Callable[[dict[str, Any]], str]]


def _num(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _rtts(r: dict[str, Any]) -> str:
    return " / ".join(_num(rtt_ms(r, k), ".2f") for k in ("p50", "p99", "p99.9"))


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
    (
        "kernel softirq, all CPUs (% of one core)",
        lambda r: _num(r.get("softirq_cpu_percent")),
    ),
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
    for group in ("passthrough", "resample", "mulaw"):
        runs = [r for r in stream_runs(results, group) if r["impl"] == "c"]
        if runs:
            cells = ", ".join(
                f"{r['scenario']['sessions']}: {_num(r['proxy_cpu_us_per_frame'], '.2f')} µs/frame "
                f"p99 {_num(rtt_ms(r, 'p99'), '.2f')} ms lost {r['frames_lost']}{_mark(r)}"
                for r in sorted(runs, key=lambda r: r["scenario"]["sessions"])
            )
            lines.append(f"  compiled, {GROUP_TITLES[group]}: {cells}")
    for row in summary.get("cpu_ratio") or []:
        c = next(
            (r for r in stream_runs(results) if scope(r) == f"{row['audio']}-{row['sessions']}-c"),
            None,
        )
        rtt = (
            f"; compiled p99 {_num(rtt_ms(c, 'p99'), '.2f')} ms, lost {c['frames_lost']}"
            if c
            else ""
        )
        lines.append(
            f"  {row['audio']} x {row['sessions']} sessions: compiled {row['c']:.2f} µs/frame, "
            f"twin {row['py']:.2f} µs/frame -> ratio {row['ratio']:.2f}"
            f"{' (target <= 0.80)' if row['audio'] == '24k' else ''}{rtt}"
        )
    m = summary.get("metrics")
    if m:
        pairs = ", ".join(f"{p:+.1f}%" for p in m.get("pairs_pct", []))
        lines.append(
            f"  metrics on vs off ({m['sessions']} sessions, {m['runs']} alternating runs): "
            f"median {m['on_us']:.2f} vs {m['off_us']:.2f} µs/frame; per pair {pairs} -> "
            f"{m['overhead_pct']:+.1f}% (target within 3%)"
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
            f"(target >= 2000/s or the load generator's limit: "
            f"{setup.get('verdict', 'met' if setup['target_met'] else 'not met')}); limited by "
            f"{setup['limited_by']}{extra}"
        )
    noisy = [r for r in results if _mark(r)]
    if noisy:
        lines.append(
            f"  (*) {len(noisy)} of {len(results)} scenarios ran while other processes used more "
            f"than {NOISY_PERCENT:g}% of a core: their latency and CPU figures are disturbed; "
            "run again on a quiet machine"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def _mark(r: dict[str, Any]) -> str:
    """``*`` for a run disturbed by other processes on the machine."""
    others = r.get("other_processes_cpu_percent")
    return "*" if others is not None and others > NOISY_PERCENT else ""


def format_markdown(results: Sequence[dict[str, Any]], doc: dict[str, Any] | None = None) -> str:
    """The README's figures: one Markdown table of the streaming runs, then the summary."""
    machine = (doc or {}).get("machine", {})
    head = (
        f"Run `{(doc or {}).get('created', '?')}`, {(doc or {}).get('suite', '?')} suite, "
        f"{machine.get('cpus', '?')} CPUs (proxy pinned to one), "
        f"Python {machine.get('python', '?')}."
    )
    lines = [
        head,
        "",
        "| Scenario | Build | Proxy CPU µs / relayed frame | Proxy CPU % of a core "
        "| Round trip p50 / p99 / p99.9 (ms) | Frames lost | Load gen. + mock CPU % "
        "| Others' CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in stream_runs(results):
        s = r["scenario"]
        if s["group"] == "profile":
            continue
        name = f"{GROUP_TITLES.get(s['group'], s['group']).split(':')[0]}, {s['sessions']} sessions"
        if not s.get("metrics", True):
            name += ", --no-metrics"
        load = (r.get("loadgen_cpu_percent") or 0.0) + (r.get("mock_cpu_percent") or 0.0)
        lines.append(
            f"| {name}{_mark(r)} | {'compiled' if r['impl'] == 'c' else 'twin'} | "
            f"{_num(r.get('proxy_cpu_us_per_frame'), '.2f')} | "
            f"{_num(r.get('proxy_cpu_percent'), '.0f')} | "
            f"{_rtts(r)} | {r.get('frames_lost')} | {load:.0f} | "
            f"{_num(r.get('other_processes_cpu_percent'), '.0f')} |"
        )
    summary = format_summary(summarize_run(results), results).strip().splitlines()[1:]
    lines += ["", "Summary:", "", *[f"- {line.strip()}" for line in summary]]
    return "\n".join(lines)
