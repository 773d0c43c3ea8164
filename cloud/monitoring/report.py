"""Performance reports as one self-contained HTML file, from the JSON-ready report
``cloud.monitoring.performance.generate_performance_report`` makes.

Its charts are the dashboard's: each is its data as JSON, drawn by ``cloud/web/static/charts.js`` with uPlot, both
inlined with uPlot's stylesheet. The HTML loads nothing (no script, stylesheet, font or image from anywhere), so
it opens offline and can be mailed or archived as it is. Every number in its tables carries ``data-key``, the path
of the JSON value it shows, so a reader (or a test) can tie any figure back to the report it came from.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from cloud.monitoring.performance import ANY_FAILURE, CALIBRATION_BINS, parse_window
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
    ("predictions", "Predictions per window", "predictions"),
    ("latency_ms.p95", "Latency p95 (ms)", "ms"),
    (f"classification.{ANY_FAILURE}.roc_auc", "ROC AUC, any failure", "ROC AUC"),
    ("regression.mae", "MAE (litres)", "litres"),
    ("ratings.mean", "Mean rating", "rating"),
]
#: the dashboard's static files: its chart helper and the vendored uPlot
_STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
_UPLOT = _STATIC / "vendor" / "uplot"


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


def _json(data: object) -> str:
    """JSON to sit inside a ``<script>`` element: ``<``, ``>`` and ``&`` escaped, so no text closes it."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def chart(title: str, data: dict) -> str:
    """A captioned chart: its data as the JSON ``charts.js`` draws (the dashboard's chart helper)."""
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<script type="application/json" class="time-series">{_json(data)}</script></figure>'
    )


def _line_chart(title: str, windows: list[str], series: dict[str, list[float | None]], axis: str) -> str:
    """One line per series over the windows' starts; a window without data breaks the line."""
    x = [from_iso(window).timestamp() for window in windows]
    lines = [{"label": name, "values": values} for name, values in series.items()]
    return chart(title, {"x": x, "y": axis, "series": lines})


def calibration_chart(curves: dict[str, list[dict]]) -> dict:
    """Observed failure share per probability bin of each curve (a cell's ``calibration``: its bins with
    predictions), against perfect calibration; x is each bin's middle, a bin a curve lacks is a gap."""
    middles = [round((b + 0.5) / CALIBRATION_BINS, 4) for b in range(CALIBRATION_BINS)]
    series = [{"label": "perfectly calibrated", "values": middles}]
    for label, bins in curves.items():
        values: list[float | None] = [None] * CALIBRATION_BINS
        for found in bins:
            values[min(int(round(found["bin_low"] * CALIBRATION_BINS)), CALIBRATION_BINS - 1)] = found["observed"]
        series.append({"label": label, "values": values})
    return {"x": middles, "time": False, "x_label": "predicted probability", "y": "observed share", "series": series}


def _bar_chart(title: str, bars: dict[str, int]) -> str:
    x = [int(name) for name in bars]
    data = {"x": x, "time": False, "bars": True, "x_label": "rating", "y": "count"}
    return chart(title, data | {"series": [{"label": "ratings", "values": list(bars.values())}]})


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
    for path, title, axis in _CHARTS:
        series: dict[str, list[float | None]] = {f"v{v}": [None] * len(windows) for v in versions}
        for cell in model["series"]:
            series[f"v{cell['model_version']}"][position[cell["window_start"]]] = _get(cell, path)
        if any(v is not None for line in series.values() for v in line):
            charts.append(_line_chart(title, windows, series, axis))
    calibration = {
        _label(cell): bins
        for cell in model["summary"]
        if (bins := _get(cell, f"classification.{ANY_FAILURE}.calibration"))
    }
    if calibration:
        charts.append(
            chart("Calibration, any failure (observed share per predicted probability)", calibration_chart(calibration))
        )
    ratings: dict[str, int] = {str(r): 0 for r in range(1, 6)}
    for cell in model["summary"]:
        for rating, count in (_get(cell, "ratings.distribution") or {}).items():
            ratings[rating] += count
    if any(ratings.values()):
        charts.append(_bar_chart("Ratings (1–5)", ratings))
    return f'<div class="charts">{"".join(charts)}</div>'


def _chart_code() -> tuple[str, str]:
    """uPlot's stylesheet, and uPlot with ``charts.js``, as the dashboard serves them: inlined, so the file
    fetches nothing."""
    css = (_UPLOT / "uPlot.min.css").read_text(encoding="utf-8")
    code = "\n".join(path.read_text(encoding="utf-8") for path in (_UPLOT / "uPlot.iife.min.js", _STATIC / "charts.js"))
    if "</script" in code.lower() or "</style" in css.lower():
        raise ValueError("the chart code cannot be inlined: it would close its own element")
    return css, code


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; min-width: 560px; } figcaption { font-weight: 600; }
"""


def render_html(report: dict) -> str:
    """One HTML file holding everything it shows: inline CSS, chart data and chart code, nothing fetched."""
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
    css, code = _chart_code() if sections else ("", "")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Model performance {escape(report['start'][:10])} to {escape(report['end'][:10])}</title>"
        f"<style>{_STYLE}{css}</style></head><body>"
        f"<h1>Model performance</h1><p>{escape(report['time_period'])}: {escape(report['start'])} to "
        f"{escape(report['end'])}, series per {escape(report['window'])}; labels over a "
        f"{format_number(report['horizon_days'])}-day horizon; generated {escape(report['generated_at'])}. "
        f'Dead letters in the period: <span data-key="dead_letters">{report["dead_letters"]}</span>.</p>'
        f"{body}{f'<script>{code}</script>' if code else ''}</body></html>"
    )
