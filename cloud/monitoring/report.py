"""Performance reports as one self-contained HTML file with inline SVG charts, drawn from the JSON-ready report
``cloud.monitoring.performance.generate_performance_report`` makes.

The HTML loads nothing (no script, stylesheet, font or image from anywhere), so it opens offline and can be
mailed or archived as it is. Every number in its tables carries ``data-key``, the path of the JSON value it
shows, so a reader (or a test) can tie any figure back to the report it came from.
"""

from __future__ import annotations

import re
from html import escape

from cloud.monitoring.performance import ANY_FAILURE, parse_window
from cloud.storage import from_iso, iso

#: the figures the summary table and the charts show: (JSON path within a cell, heading)
_SUMMARY = [
    ("predictions", "predictions"),
    ("latency_ms.p50", "latency p50 (ms)"),
    ("latency_ms.p95", "latency p95 (ms)"),
    ("latency_ms.p99", "latency p99 (ms)"),
    (f"classification.{ANY_FAILURE}.n", "labelled"),
    (f"classification.{ANY_FAILURE}.roc_auc", "ROC AUC (any failure)"),
    (f"classification.{ANY_FAILURE}.f1", "F1 (any failure)"),
    (f"classification.{ANY_FAILURE}.brier", "Brier (any failure)"),
    ("regression.n", "measured"),
    ("regression.mae", "MAE (litres)"),
    ("regression.mape", "MAPE"),
    ("ratings.n", "ratings"),
    ("ratings.mean", "mean rating"),
    ("ratings.share_low", "share rated ≤ 2"),
]
_COMPONENT_FIGURES = ["n", "positives", "alerts", "precision", "recall", "f1", "roc_auc", "brier"]
_CHARTS = [
    ("predictions", "Predictions per window"),
    ("latency_ms.p95", "Latency p95 (ms)"),
    (f"classification.{ANY_FAILURE}.roc_auc", "ROC AUC, any failure"),
    ("regression.mae", "MAE (litres)"),
    ("ratings.mean", "Mean rating"),
]
_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


# ---- HTML ----------------------------------------------------------------------------------------------------


def _get(data: dict, path: str):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def format_number(value: object) -> str:
    """How the HTML shows a figure: integers whole, other numbers to 4 significant digits, missing as —."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape(str(value))
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _cell(value: object, *path: object) -> str:
    """A table cell showing ``value``; ``data-key`` is its path in the report, parts joined by '/'."""
    key = "/".join(str(part) for part in path)
    return f'<td class="num" data-key="{escape(key)}">{format_number(value)}</td>'


def _label(cell: dict) -> str:
    return " / ".join(str(cell[d]) for d in ("model_version", "device_type", "arm") if cell.get(d) is not None)


def _figure(title: str, svg: list[str]) -> str:
    """A captioned chart from the parts of its ``<svg>`` element (opening tag first)."""
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(svg)}</svg></figure>"


def _line_chart(title: str, x_labels: list[str], series: dict[str, list[float | None]]) -> str:
    """An inline SVG line chart, one line per series; points carry their value as a hover title."""
    width, height, left, bottom, top, right = 640, 220, 56, 36, 28, 120
    values = [v for line in series.values() for v in line if v is not None]
    if not values or not x_labels:
        return f'<figure><figcaption>{escape(title)}</figcaption><p class="empty">no data</p></figure>'
    low, high = min(0.0, min(values)), max(values)
    high = high if high > low else low + 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(x_labels) - 1) if len(x_labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{format_number(high)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{format_number(low)}</text>',
        f'<text x="{left}" y="{height - 8}">{escape(x_labels[0][:10])}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(x_labels[-1][:10])}</text>',
    ]
    for n, (name, line) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        points = [(x(i), y(v), v, x_labels[i]) for i, v in enumerate(line) if v is not None]
        runs = "".join("x" if v is not None else " " for v in line)  # a window without data breaks the line
        for run in re.finditer(r"x{2,}", runs):
            path = " ".join(f"{x(i):.1f},{y(line[i]):.1f}" for i in range(run.start(), run.end()))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for px, py, v, when in points:
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(when)}: {format_number(v)}</title></circle>"
            )
        parts.append(
            f'<text x="{width - right + 10}" y="{top + 14 * n + 8}" fill="{colour}">{escape(name)[:18]}</text>'
        )
    return _figure(title, parts)


def _calibration_chart(title: str, series: dict[str, list[dict]]) -> str:
    """Observed failure rate against predicted probability per bin; the diagonal is perfect calibration."""
    size, pad = 260, 34
    plot = size - 2 * pad

    def at(v: float) -> float:
        return pad + plot * v

    parts = [
        f'<svg width="{size + 110}" height="{size}" viewBox="0 0 {size + 110} {size}" role="img">',
        f'<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" class="frame"/>',
        f'<line x1="{at(0)}" y1="{at(1)}" x2="{at(1)}" y2="{at(0)}" class="diagonal"/>',
        f'<text x="{pad}" y="{size - 8}">expected 0</text>',
        f'<text x="{pad + plot}" y="{size - 8}" text-anchor="end">1</text>',
        f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end">1</text>',
    ]
    for n, (name, bins) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        points = [(at(b["expected"]), at(1 - b["observed"]), b) for b in bins]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for px, py, b in points:
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{escape(name)}: expected '
                f"{format_number(b['expected'])}, observed {format_number(b['observed'])}, n {b['n']}</title></circle>"
            )
        parts.append(f'<text x="{size + 4}" y="{pad + 14 * n + 8}" fill="{colour}">{escape(name)[:14]}</text>')
    return _figure(title, parts)


def _bar_chart(title: str, bars: dict[str, int]) -> str:
    width, height, pad = 300, 160, 24
    top = max(bars.values(), default=0) or 1
    slot = (width - 2 * pad) / max(len(bars), 1)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (name, count) in enumerate(bars.items()):
        bar_h = (height - 2 * pad) * count / top
        bx, by = pad + i * slot + 4, height - pad - bar_h
        parts.append(
            f'<rect x="{bx:.1f}" y="{by:.1f}" width="{slot - 8:.1f}" height="{bar_h:.1f}" class="bar">'
            f"<title>{escape(name)}: {count}</title></rect>"
            f'<text x="{bx + (slot - 8) / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(name)}</text>'
            f'<text x="{bx + (slot - 8) / 2:.1f}" y="{by - 3:.1f}" text-anchor="middle">{count}</text>'
        )
    return _figure(title, parts)


def _summary_table(model: dict, m: int) -> str:
    """The figures some cell of this model has (a failure model has no MAE), a row per version and arm."""
    shown = [(path, heading) for path, heading in _SUMMARY if any(_get(c, path) is not None for c in model["summary"])]
    head = "".join(f"<th>{escape(heading)}</th>" for _, heading in shown)
    rows = []
    for c, cell in enumerate(model["summary"]):
        figures = "".join(_cell(_get(cell, path), "models", m, "summary", c, *path.split(".")) for path, _ in shown)
        rows.append(f"<tr><th>{escape(_label(cell))}</th>{figures}</tr>")
    return f"<table><tr><th>version / arm</th>{head}</tr>{''.join(rows)}</table>"


def _component_table(model: dict, m: int) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in _COMPONENT_FIGURES)
    rows = []
    for c, cell in enumerate(model["summary"]):
        for component, figures in cell.get("classification", {}).items():
            base = ("models", m, "summary", c, "classification", component)
            values = "".join(_cell(figures.get(name), *base, name) for name in _COMPONENT_FIGURES)
            rows.append(f"<tr><th>{escape(_label(cell))}</th><th>{escape(component)}</th>{values}</tr>")
    if not rows:
        return ""
    return (
        "<h3>Per component, at each version's alert thresholds</h3>"
        f"<table><tr><th>version / arm</th><th>component</th>{head}</tr>{''.join(rows)}</table>"
    )


def _baseline_table(model: dict, m: int) -> str:
    names = sorted({k for figures in model["baseline"].values() for k in figures})
    if not names:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    rows = [
        f"<tr><th>{escape(version)}</th>"
        + "".join(_cell(figures.get(name), "models", m, "baseline", version, name) for name in names)
        + "</tr>"
        for version, figures in model["baseline"].items()
    ]
    return f"<h3>Training-time holdout (baseline)</h3><table><tr><th>version</th>{head}</tr>{''.join(rows)}</table>"


def _events_table(model: dict, m: int) -> str:
    kinds = sorted({kind for entry in model["errors"] for kind in entry["events"]})
    if not kinds:
        return "<h3>Gateway events</h3><p>none in this period</p>"
    head = "".join(f"<th>{escape(kind)}</th>" for kind in kinds)
    rows = [
        f"<tr><th>{escape(str(entry['model_version']))}</th>"
        + "".join(_cell(entry["events"].get(kind, 0), "models", m, "errors", e, "events", kind) for kind in kinds)
        + "</tr>"
        for e, entry in enumerate(model["errors"])
    ]
    return f"<h3>Gateway events</h3><table><tr><th>version</th>{head}</tr>{''.join(rows)}</table>"


def _tracked_table(model: dict, m: int) -> str:
    if not model["tracked"]:
        return ""
    rows = [
        f"<tr><td>{escape(p['at'])}</td><td>{escape(p['metric'])}</td><td>{escape(p['model_version'] or 'all')}</td>"
        f"<td>{escape(p['device_type'] or 'all')}</td><td>{escape(p['arm'] or 'all')}</td>"
        + _cell(p["value"], "models", m, "tracked", t, "value")
        + "</tr>"
        for t, p in enumerate(model["tracked"])
    ]
    return (
        "<h3>Tracked metrics</h3><table><tr><th>at</th><th>metric</th><th>version</th><th>device type</th>"
        f"<th>arm</th><th>value</th></tr>{''.join(rows)}</table>"
    )


def _window_starts(report: dict) -> list[str]:
    """Every window of the period, those without predictions too, so a chart's x axis is time."""
    start, end = from_iso(report["start"]), from_iso(report["end"])
    step = parse_window(report["window"], end - start)
    return [iso(start + step * i) for i in range(-(-(end - start) // step))]


def _charts(model: dict, windows: list[str]) -> str:
    position = {w: i for i, w in enumerate(windows)}
    versions = sorted({str(cell["model_version"]) for cell in model["series"]})
    charts = []
    for path, title in _CHARTS:
        series: dict[str, list[float | None]] = {f"v{v}": [None] * len(windows) for v in versions}
        for cell in model["series"]:
            series[f"v{cell['model_version']}"][position[cell["window_start"]]] = _get(cell, path)
        if any(v is not None for line in series.values() for v in line):
            charts.append(_line_chart(title, windows, series))
    calibration = {
        _label(cell): bins
        for cell in model["summary"]
        if (bins := _get(cell, f"classification.{ANY_FAILURE}.calibration"))
    }
    if calibration:
        charts.append(_calibration_chart("Calibration, any failure (observed vs expected)", calibration))
    ratings: dict[str, int] = {str(r): 0 for r in range(1, 6)}
    for cell in model["summary"]:
        for rating, count in (_get(cell, "ratings.distribution") or {}).items():
            ratings[rating] += count
    if any(ratings.values()):
        charts.append(_bar_chart("Ratings (1–5)", ratings))
    return f'<div class="charts">{"".join(charts)}</div>'


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { font-weight: 600; }
svg text { font-size: 11px; fill: #444; }
.axis { stroke: #888; } .frame { fill: none; stroke: #888; } .diagonal { stroke: #bbb; stroke-dasharray: 4 3; }
.bar { fill: #1f77b4; } .empty { color: #888; }
"""


def render_html(report: dict) -> str:
    """One HTML file holding everything it shows: inline CSS and SVG, no script, nothing fetched."""
    sections = []
    windows = _window_starts(report)
    for m, model in enumerate(report["models"]):
        sections.append(
            f"<section><h2>{escape(model['model_name'])} <small>({escape(model['prediction_type'])})</small></h2>"
            f"<h3>Over the period, per version and arm</h3>{_summary_table(model, m)}"
            f"{_component_table(model, m)}{_charts(model, windows)}{_baseline_table(model, m)}"
            f"{_events_table(model, m)}{_tracked_table(model, m)}</section>"
        )
    body = "".join(sections) or "<p>No predictions in this period.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Model performance {escape(report['start'][:10])} to {escape(report['end'][:10])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Model performance</h1><p>{escape(report['time_period'])}: {escape(report['start'])} to "
        f"{escape(report['end'])}, series per {escape(report['window'])}; labels over a "
        f"{format_number(report['horizon_days'])}-day horizon; generated {escape(report['generated_at'])}. "
        f'Dead letters in the period: <span data-key="dead_letters">{report["dead_letters"]}</span>.</p>'
        f"{body}</body></html>"
    )
