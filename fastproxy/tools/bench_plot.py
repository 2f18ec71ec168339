"""``fastproxy bench --plot out.png``: latency and CPU per frame against session count.

One line per (audio format, implementation) over the streaming scenarios of the run, and one for
the ramp's steps (24 kHz passthrough, compiled, 10 s each). Left: round-trip p50 (solid)
and p99 (dashed) on a log scale, with the real-time limit; right: proxy CPU µs per relayed frame.
The metrics on/off runs are left out (their figure is a difference, in the summary).
matplotlib is imported here only, and is part of the ``bench`` extra
(``pip install -e '.[bench]'``), never of the proxy's dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["plot"]


def _series(results: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        s = r["scenario"]
        if s["kind"] != "stream" or s["group"] in ("profile", "metrics"):
            continue
        if not r.get("proxy_cpu_us_per_frame"):
            continue
        name = f"{s['audio']} {r['impl']}" + (" ramp" if s["group"] == "ramp" else "")
        out.setdefault(name, []).append(r)
    for points in out.values():
        points.sort(key=lambda r: r["scenario"]["sessions"])
    return out


def _clip(axis: Any, values: list[float]) -> None:
    """Linear axis from 0; a far outlier (the twin resampling) is cut and labelled."""
    ordered = sorted(values)
    typical = ordered[(len(ordered) * 3) // 4]
    top = max(ordered)
    if top > 4 * typical:
        limit = 4 * typical
        axis.set_ylim(0, limit)
        axis.text(
            0.01,
            0.97,
            f"off scale: up to {top:.0f} µs",
            transform=axis.transAxes,
            fontsize=8,
            va="top",
            color="grey",
        )
    else:
        axis.set_ylim(bottom=0)


def plot(results: Sequence[dict[str, Any]], path: str, title: str = "") -> str:
    """Draw the chart into ``path`` (PNG, SVG ... by extension); returns ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError(
            "--plot needs matplotlib: pip install -e '.[bench]' (or pip install matplotlib)"
        ) from exc
    series = _series(results)
    if not series:
        raise RuntimeError("--plot: the run has no streaming scenario with figures")
    fig, (lat, cpu) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    for index, (name, points) in enumerate(sorted(series.items())):
        color = f"C{index % 10}"
        x = [p["scenario"]["sessions"] for p in points]
        p50 = [p["rtt_ms"].get("p50") for p in points]
        p99 = [p["rtt_ms"].get("p99") for p in points]
        lat.plot(x, p50, "o-", color=color, label=f"{name} p50")
        lat.plot(x, p99, "s--", color=color, label=f"{name} p99")
        cpu.plot(x, [p["proxy_cpu_us_per_frame"] for p in points], "o-", color=color, label=name)
    lat.axhline(50.0, color="grey", linewidth=0.8, linestyle=":")
    lat.text(lat.get_xlim()[0], 52.0, "real-time limit (p99 50 ms)", fontsize=8, color="grey")
    lat.set_yscale("log")
    lat.set_xlabel("concurrent sessions (50 frames/s each way)")
    lat.set_ylabel("round trip client → proxy → mock → proxy → client (ms)")
    lat.set_title("latency")
    lat.grid(True, which="both", alpha=0.3)
    lat.legend(fontsize=7)
    _clip(cpu, [p["proxy_cpu_us_per_frame"] for ps in series.values() for p in ps])
    cpu.set_xlabel("concurrent sessions")
    cpu.set_ylabel("proxy CPU µs per relayed frame")
    cpu.set_title("proxy CPU per frame (both directions)")
    cpu.grid(True, alpha=0.3)
    cpu.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
