"""Baselines of the end-to-end benchmark: ``--save NAME`` and ``--compare NAME --threshold PCT``.

A baseline is a run's JSON document (:func:`fastproxy.tools.bench_report.document`, timelines
dropped) stored as ``benchmarks/baselines/NAME.json``. Comparing takes the flat ``figures`` of
both documents and, for each figure present in both, decides by the figure's direction
(:data:`~fastproxy.tools.bench_report.METRICS`): a lower-is-better figure regressed when
``current > baseline × (1 + PCT/100) + slack``, a higher-is-better one when
``current < baseline × (1 − PCT/100) − slack``. ``slack`` is the figure's absolute noise floor
(e.g. 1 ms for a round-trip p99), so a figure near zero cannot fail on a rounding wobble; for CPU
per frame, lost frames and rates it is zero. A figure that is itself a percentage (the metrics'
CPU overhead) is compared in points: it regresses when it rises by more than its slack.
:func:`compare` is pure (documents in, verdict out)
so the tests drive it with synthetic documents, no load needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastproxy.tools.bench_report import METRICS, Metric, baseline_document, summarize_run
from fastproxy.tools.bench_report import figures as compute_figures

__all__ = [
    "Comparison",
    "baseline_path",
    "compare",
    "doc_figures",
    "format_comparison",
    "load_document",
    "save_baseline",
]

DEFAULT_BASELINES = Path(__file__).resolve().parents[2] / "benchmarks" / "baselines"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def baseline_path(name: str, directory: str | Path | None = None) -> Path:
    """``NAME`` → ``<directory>/NAME.json``; a name with ``/`` or ending in ``.json`` is a path."""
    if "/" in name or name.endswith(".json"):
        return Path(name)
    if not _NAME.match(name):
        raise ValueError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-'")
    base = Path(directory) if directory is not None else DEFAULT_BASELINES
    return base / f"{name}.json"


def load_document(path: str | Path) -> dict[str, Any]:
    """A run or baseline document; ``ValueError`` when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("benchmark") != "fastproxy-e2e-load":
        raise ValueError(f"{path} is not a fastproxy benchmark document")
    return doc


def save_baseline(doc: Mapping[str, Any], name: str, directory: str | Path | None = None) -> Path:
    """Store ``doc`` as baseline ``name``; returns its path."""
    path = baseline_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline_document(dict(doc)), indent=1, sort_keys=False) + "\n")
    return path


def doc_figures(doc: Mapping[str, Any]) -> dict[str, float]:
    """The document's ``figures``; recomputed from its results when it has none."""
    figs = doc.get("figures")
    if isinstance(figs, dict):
        return {str(k): float(v) for k, v in figs.items() if isinstance(v, int | float)}
    results = doc.get("results") or []
    return compute_figures(results, summarize_run(results))


def metric_of(key: str) -> Metric | None:
    """The :class:`Metric` of a figure key ``scope:metric`` (None for an unknown metric)."""
    return METRICS.get(key.rpartition(":")[2])


@dataclass
class Row:
    key: str
    baseline: float
    current: float
    change_pct: float | None  # None when the baseline is 0
    status: str  # "ok" | "regressed" | "improved"


@dataclass
class Comparison:
    threshold: float
    rows: list[Row] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    @property
    def ok(self) -> bool:
        return not self.regressions


def _status(metric: Metric, base: float, cur: float, threshold: float) -> str:
    factor = threshold / 100.0 if metric.relative else 0.0
    if metric.better == "lower":
        if cur > base * (1 + factor) + metric.slack:
            return "regressed"
        return "improved" if cur < base * (1 - factor) - metric.slack else "ok"
    if cur < base * (1 - factor) - metric.slack:
        return "regressed"
    return "improved" if cur > base * (1 + factor) + metric.slack else "ok"


def compare(
    baseline: Mapping[str, Any], current: Mapping[str, Any], threshold: float
) -> Comparison:
    """Compare two documents (or two plain ``figures`` mappings) figure by figure."""
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    base = doc_figures(baseline) if "benchmark" in baseline else dict(baseline)
    cur = doc_figures(current) if "benchmark" in current else dict(current)
    result = Comparison(threshold)
    for key in sorted(set(base) | set(cur)):
        metric = metric_of(key)
        if key not in cur:
            result.only_baseline.append(key)
        elif key not in base:
            result.only_current.append(key)
        elif metric is not None:
            b, c = float(base[key]), float(cur[key])
            change = 100.0 * (c - b) / abs(b) if b else None
            result.rows.append(Row(key, b, c, change, _status(metric, b, c, threshold)))
    return result


def describe(key: str) -> str:
    """``24k-300-c:cpu_us_per_frame`` → ``24k-300-c: proxy CPU µs per relayed frame``."""
    scope, _, name = key.rpartition(":")
    metric = METRICS.get(name)
    return f"{scope}: {metric.label if metric else name}"


def format_comparison(comparison: Comparison, name: str) -> str:
    """The comparison as text: every regression named first, then the full table."""
    lines = []
    regressions = comparison.regressions
    if regressions:
        lines.append(
            f"REGRESSION against baseline {name!r} (threshold {comparison.threshold:g}%): "
            f"{len(regressions)} figure(s)"
        )
        for r in regressions:
            change = f"{r.change_pct:+.1f}%" if r.change_pct is not None else "from 0"
            better = METRICS[r.key.rpartition(":")[2]].better
            lines.append(
                f"  regressed: {describe(r.key)}: {r.baseline:.4g} -> {r.current:.4g} "
                f"({change}; {better} is better)"
            )
    else:
        lines.append(
            f"no regression against baseline {name!r} beyond {comparison.threshold:g}% "
            f"({len(comparison.rows)} figures compared)"
        )
    width = max((len(describe(r.key)) for r in comparison.rows), default=10)
    lines.append("")
    lines.append(
        f"{'figure'.ljust(width)}  {'baseline':>10}  {'current':>10}  {'change':>8}  status"
    )
    for r in comparison.rows:
        change = f"{r.change_pct:+.1f}%" if r.change_pct is not None else "-"
        lines.append(
            f"{describe(r.key).ljust(width)}  {r.baseline:>10.4g}  {r.current:>10.4g}  "
            f"{change:>8}  {r.status}"
        )
    for title, keys in (
        ("not in this run", comparison.only_baseline),
        ("not in the baseline", comparison.only_current),
    ):
        if keys:
            more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
            lines.append(f"{title} ({len(keys)}): {', '.join(keys[:6])}{more}")
    return "\n".join(lines)
