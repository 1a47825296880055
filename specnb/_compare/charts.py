"""Plotly figures of a `Comparison`: quality against latency and cost, latency, confusion, reliability, memory.

The only module of specnb that imports plotly. Figures carry summary numbers only, except the
latency chart (per-item latencies, and for large runs just the box statistics), so a notebook
that shows them stays small. Text from users and models is entity-escaped: plotly.js reads a
subset of HTML in every label, and decodes ``&lt;``, ``&gt;`` and ``&amp;`` back to characters.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from ..presentation import MISSING, finite_or_nan, format_bytes, format_interval, format_value

__all__ = ["figures", "learning_curve_figure", "model_colors", "pareto_front", "plotly_js", "POINTS_LIMIT", "TEXT_LIMIT"]

#: Latency charts draw each item as a point up to this many items per model; above, box statistics only.
POINTS_LIMIT = 2000
#: Confusion heatmaps write counts in the cells up to this many labels.
TEXT_LIMIT = 30

_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
_GRID = "#e5e7eb"
_AXIS = {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": "#9ca3af", "automargin": True}
# A small template instead of plotly's default one, which adds ~7 kB to every serialized figure.
_TEMPLATE = go.layout.Template(layout={
    "font": {"family": _FONT, "size": 13, "color": "#1f2937"},
    "paper_bgcolor": "white", "plot_bgcolor": "white",
    "xaxis": _AXIS, "yaxis": _AXIS,
    "hoverlabel": {"font": {"family": _FONT}},
    "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
    "margin": {"l": 70, "r": 30, "t": 70, "b": 60},
})
_PALETTE = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.D3 + plotly.colors.qualitative.Dark24
_FRONT = "#6b7280"  # a mid grey: the front shows on light and dark paper


def _text(value) -> str:
    """``value`` as plotly label text: ``&``, ``<`` and ``>`` as entities, which plotly shows as typed."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plotly_js() -> str:
    """The plotly.js bundle these figures are drawn with, as one script (about 4.8 MB)."""
    return plotly.offline.get_plotlyjs()


def model_colors(models) -> dict[str, str]:
    """One colour per model, by position, the same in every chart of a comparison."""
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}


def pareto_front(points: dict) -> list:
    """The keys of ``points`` (key -> (cost, quality)) that no other point beats: none has lower or
    equal cost and higher or equal quality, strictly better on one. Points with NaN are left out.
    Returned in order of cost."""
    finite = {k: (float(x), float(y)) for k, (x, y) in points.items() if math.isfinite(x) and math.isfinite(y)}
    front = [
        k for k, (x, y) in finite.items()
        if not any(ox <= x and oy >= y and (ox < x or oy > y) for o, (ox, oy) in finite.items() if o != k)
    ]
    return sorted(front, key=lambda k: (finite[k][0], -finite[k][1]))


def _layout(fig: go.Figure, title: str, **kwargs) -> go.Figure:
    fig.update_layout(template=_TEMPLATE, title={"text": title, "x": 0.01, "xanchor": "left"}, **kwargs)
    return fig


def _quality_label(comparison) -> str:
    return "F1 (exact entity spans)" if comparison.quality_column == "f1" else "accuracy"


def _tradeoff(comparison, x_column: str, x_title: str, title: str, colors: dict) -> go.Figure:
    """Quality (with its bootstrap interval) against ``x_column``, one marker per model, front marked."""
    summary = comparison.summary
    q = comparison.quality_column
    points = {m: (finite_or_nan(summary.at[m, x_column]), finite_or_nan(summary.at[m, q])) for m in comparison.models}
    xs = [x for x, _ in points.values() if math.isfinite(x)]
    log_x = bool(xs) and all(x > 0 for x in xs)
    if log_x:  # a log axis cannot show 0 or less: leave such points off rather than draw them nowhere
        points = {m: (x if x > 0 else float("nan"), y) for m, (x, y) in points.items()}
    fig = go.Figure()
    label = _quality_label(comparison)
    for m in comparison.models:
        x, y = points[m]
        low, high = finite_or_nan(summary.at[m, f"{q}_low"]), finite_or_nan(summary.at[m, f"{q}_high"])
        shown = math.isfinite(x) and math.isfinite(y)
        price = _price_text(comparison, m)
        fig.add_trace(go.Scatter(
            x=[x] if shown else [], y=[y] if shown else [], name=_text(m), mode="markers+text",
            text=[_text(m)], textposition="top center", marker={"color": colors[m], "size": 12},
            error_y={"type": "data", "symmetric": False, "color": colors[m], "thickness": 1.5, "width": 4,
                     "array": [max(high - y, 0.0) if math.isfinite(high) else 0.0],
                     "arrayminus": [max(y - low, 0.0) if math.isfinite(low) else 0.0]},
            customdata=[[_interval_text(low, high), price]],
            hovertemplate=(f"<b>{_text(m)}</b><br>{x_title}: %{{x:.4g}}<br>{label}: %{{y:.3f}} %{{customdata[0]}}"
                           "<br>price assumed: %{customdata[1]}<extra></extra>"),
        ))
    front = pareto_front(points)
    if front:
        fig.add_trace(go.Scatter(
            x=[points[m][0] for m in front], y=[points[m][1] for m in front], name="Pareto front",
            mode="lines+markers", line={"color": _FRONT, "dash": "dot", "width": 1.5, "shape": "hv"},
            marker={"symbol": "diamond-open", "size": 20, "color": _FRONT, "line": {"width": 2}},
            text=[_text(m) for m in front], hovertemplate="Pareto front: %{text}<extra></extra>",
        ))
    if log_x:
        xs = [points[m][0] for m in points]
        fig.update_xaxes(title_text=f"{x_title[:-1]}, log scale)", type="log", **_log_ticks(min(xs), max(xs)))
    else:
        fig.update_xaxes(title_text=x_title, type="linear")
    fig.update_yaxes(title_text=f"{label} (95 % bootstrap interval)")
    return _layout(fig, title, height=460, legend={"title": {"text": "model"}})


def _log_ticks(low: float, high: float) -> dict:
    """Tick values 1, 2, 5 x 10^k over [low, high] (with a margin), labelled plainly: plotly's own
    log ticks label every minor digit, which reads as noise."""
    if not (low > 0 and high > 0):
        return {}
    values = []
    for power in range(math.floor(math.log10(low / 2)), math.ceil(math.log10(high * 2)) + 1):
        for step in (1, 2, 5):
            value = step * 10.0**power
            if low / 2 <= value <= high * 2:
                values.append(value)
    return {"tickvals": values, "ticktext": [f"{v:g}" for v in values]} if len(values) >= 2 else {}


def _interval_text(low: float, high: float) -> str:
    """``[low, high]`` as the summary writes it, or "" when a bound is unknown."""
    _, bounds = format_interval(0.0, low, high)
    return "" if bounds is None else bounds.strip()


def _price_text(comparison, model: str) -> str:
    """The price a model's cost is computed at: per device-hour, or an endpoint's per 1M tokens."""
    tokens = comparison.model_stats.get(model, {}).get("price_per_1m_tokens")
    if tokens:
        return f"{format_value(tokens['input'], 'price')} in / {format_value(tokens['output'], 'price')} out per 1M tokens"
    price = finite_or_nan(comparison.summary.at[model, "price_per_hour"])
    return MISSING if math.isnan(price) else f"{format_value(price, 'price')}/h"


def _prices_text(comparison) -> str:
    prices = {m: finite_or_nan(comparison.summary.at[m, "price_per_hour"]) for m in comparison.models}
    known = {m: p for m, p in prices.items() if math.isfinite(p)}
    by_token = [m for m in comparison.models if comparison.model_stats.get(m, {}).get("price_per_1m_tokens")]
    tokens = f"; {', '.join(_text(m) for m in by_token)} by the token" if by_token else ""
    if not known:
        return ("no price per hour known" + tokens) if not by_token else f"{', '.join(map(_text, by_token))} by the token"
    if len(set(known.values())) == 1 and len(known) + len(by_token) == len(prices):
        every = "every model" if not by_token else "every model in the kernel"
        return f"assuming {format_value(next(iter(known.values())), 'price')} per device-hour for {every}{tokens}"
    return "assuming $/hour: " + ", ".join(f"{_text(m)} {format_value(p, 'price')}" for m, p in known.items()) + tokens


def _latency(comparison, colors: dict) -> go.Figure:
    fig = go.Figure()
    for m in comparison.models:
        seconds = np.array([s for s in comparison.item_seconds[m] if s is not None and s > 0], dtype=np.float64)
        ms = seconds * 1000
        common = {"name": _text(m), "marker": {"color": colors[m], "size": 3, "opacity": 0.5},
                  "line": {"color": colors[m]}, "boxmean": False}
        if len(ms) <= POINTS_LIMIT:
            fig.add_trace(go.Box(y=ms.astype(np.float32), x0=_text(m), boxpoints="all", jitter=0.4, pointpos=0,
                                 hovertemplate="%{y:.3g} ms<extra>" + _text(m) + "</extra>", **common))
            continue
        # Box statistics only: per-item values of a large run would make the figure megabytes.
        q1, median, q3 = np.quantile(ms, [0.25, 0.5, 0.75])
        reach = 1.5 * (q3 - q1)
        low = float(ms[ms >= q1 - reach].min())
        high = float(ms[ms <= q3 + reach].max())
        fig.add_trace(go.Box(x=[_text(m)], q1=[q1], median=[median], q3=[q3], lowerfence=[low], upperfence=[high],
                             boxpoints=False, **common))
    every = [v for m in comparison.models for v in comparison.item_seconds[m] if v is not None and v > 0]
    ticks = _log_ticks(min(every) * 1000, max(every) * 1000) if every else {}
    fig.update_yaxes(title_text="latency per item (ms, log scale)", type="log", **ticks)
    fig.update_xaxes(title_text="model")
    n = len(comparison.inputs)
    note = "each point is one item" if n <= POINTS_LIMIT else f"box statistics of {n:,} items"
    return _layout(fig, f"Latency per item ({note}; whiskers: 1.5 × IQR)", height=440, showlegend=False)


def _confusion(comparison) -> go.Figure:
    frames = [comparison.confusion(m) for m in comparison.models]
    n = len(frames)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[_text(m) for m in comparison.models],
                        horizontal_spacing=min(0.08, 0.3 / max(n - 1, 1)))
    size = max(max(frame.shape) for frame in frames)
    texts = size <= TEXT_LIMIT
    top = max((int(frame.to_numpy().max()) for frame in frames if frame.size), default=0)  # a model may have no items
    for i, (m, frame) in enumerate(zip(comparison.models, frames), start=1):
        fig.add_trace(go.Heatmap(
            z=frame.to_numpy(), x=[_text(c) for c in frame.columns], y=[_text(r) for r in frame.index],
            coloraxis="coloraxis", texttemplate="%{z}" if texts else None, name=_text(m),
            hovertemplate="gold: %{y}<br>answer: %{x}<br>items: %{z}<extra>" + _text(m) + "</extra>",
        ), row=1, col=i)
        fig.update_xaxes(title_text="model answer", row=1, col=i, type="category", tickangle=-45 if size > 6 else 0,
                         showticklabels=size <= 60)
        fig.update_yaxes(autorange="reversed", row=1, col=i, type="category", showticklabels=i == 1 and size <= 60)
    fig.update_yaxes(title_text="gold label", row=1, col=1)
    unit = "entities" if comparison.ner else "items"
    side = min(max(260, 22 * size), 700)
    return _layout(fig, f"Confusion matrices (counts of {unit})", height=side + 160,
                   coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": max(top, 1),
                              "colorbar": {"title": {"text": unit}}})


def _memory(comparison, colors: dict) -> go.Figure:
    """Weights (solid) and the run's peak above them (hatched), stacked, one bar per model. One trace per model
    and part, each of one colour: a trace coloured per bar shows its first bar's colour in the legend, so the
    legend lists the models in their colours (the peak toggles with its model)."""
    summary = comparison.summary
    fig = go.Figure()
    parts = [("weight_bytes", "weights", ""), ("run_peak_bytes", "peak above weights during the run", "/")]
    for m in comparison.models:
        name = _text(m)
        for column, label, pattern in parts:
            value = finite_or_nan(summary.at[m, column])
            fig.add_trace(go.Bar(
                x=[name], y=[0.0 if math.isnan(value) else value / 2**20], name=name, legendgroup=name,
                showlegend=not pattern, opacity=0.55 if pattern else 1.0,
                marker={"color": colors[m], "pattern": {"shape": pattern}, "line": {"color": colors[m], "width": 1}},
                customdata=[format_bytes(value)],
                hovertemplate="<b>%{x}</b><br>" + label + ": %{customdata}<extra></extra>",
            ))
    fig.update_yaxes(title_text="memory (MiB)")
    fig.update_xaxes(title_text="model")
    return _layout(fig, "Memory per model: weights (solid) and run peak above them (hatched)", height=420,
                   barmode="stack", legend={"title": {"text": "model"}})


def _reliability(comparison, colors: dict) -> go.Figure | None:
    """Per model that gives scores: accuracy against mean score in equal-mass bins; the diagonal is calibrated."""
    from .calibration import reliability_bins, scored_answers

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", hoverinfo="skip",
                             line={"color": _FRONT, "dash": "dot", "width": 1}))
    ece = comparison.summary["ece"]
    drawn = 0
    for m in comparison.models:
        parts = reliability_bins(*scored_answers(comparison, m))
        if not parts:
            continue
        drawn += 1
        fig.add_trace(go.Scatter(
            x=[p["score"] for p in parts], y=[p["accuracy"] for p in parts], mode="lines+markers",
            name=f"{_text(m)} (ECE {format_value(ece[m], 'score')})", line={"color": colors[m]},
            customdata=[[p["items"], p["low"], p["high"]] for p in parts],
            hovertemplate=("mean score %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata[0]} answers scored "
                           "%{customdata[1]:.3f}–%{customdata[2]:.3f}<extra>" + _text(m) + "</extra>"),
        ))
    if not drawn:
        return None
    unit = "entities" if comparison.ner else "answers"
    fig.update_xaxes(title_text="mean score in the bin", range=[0, 1.02])
    fig.update_yaxes(title_text=f"share of {unit} right", range=[0, 1.02])
    return _layout(fig, f"Reliability (equal-mass bins of {unit}; on the diagonal: calibrated)", height=440,
                   legend={"title": {"text": "model"}})


def figures(comparison) -> dict[str, go.Figure]:
    """Plotly figures of a comparison, by name.

    Returns
    -------
    dict of str to plotly.graph_objects.Figure
        ``quality_vs_latency`` and ``quality_vs_cost`` (quality with 95 % bootstrap intervals
        against median latency and dollars per million items, Pareto front marked; with gold
        labels), ``latency`` (per item), ``confusion`` and ``reliability`` (with gold labels; the
        reliability diagram of the models that give scores, when one does) and ``memory``.
    """
    colors = model_colors(comparison.models)
    out = {}
    if comparison.quality_column is not None:
        label = _quality_label(comparison)
        out["quality_vs_latency"] = _tradeoff(comparison, "p50_ms", "median latency per item (ms)",
                                              f"{label.capitalize()} vs median latency", colors)
        out["quality_vs_cost"] = _tradeoff(comparison, "usd_per_1m", "cost per 1M items (US$)",
                                           f"{label.capitalize()} vs cost ({_prices_text(comparison)})", colors)
    out["latency"] = _latency(comparison, colors)
    if comparison.labels is not None:
        out["confusion"] = _confusion(comparison)
        reliability = _reliability(comparison, colors)
        if reliability is not None:
            out["reliability"] = reliability
    out["memory"] = _memory(comparison, colors)
    return out


def _rgba(color: str, alpha: float) -> str:
    r, g, b = plotly.colors.hex_to_rgb(color) if color.startswith("#") else plotly.colors.unlabel_rgb(color)
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def learning_curve_figure(curve) -> go.Figure:
    """A `LearningCurve` as a figure: the specialist's mean held-out accuracy per size (band: min to max over
    seeds; error bars: the Wilson interval at the mean; dots: each seed), each ``against`` model as a dashed
    horizontal line with its interval as a band, each crossover as a star, examples per class on a log-2 axis."""
    summary, frame, against = curve.summary, curve.frame, curve.against
    name = f"specialist ({curve.method} on {curve.base})"
    colors = model_colors([name, *map(str, against.index)])
    sizes = [int(s) for s in summary.index]
    fig = go.Figure()
    if sizes:
        edge = (sizes[0] / 1.25, sizes[-1] * 1.25)
        for m, row in against.iterrows():
            color, label = colors[str(m)], _text(m)
            fig.add_trace(go.Scatter(x=[*edge, *edge[::-1]], y=[row["high"]] * 2 + [row["low"]] * 2, mode="lines",
                                     fill="toself", fillcolor=_rgba(color, 0.12), line={"width": 0},
                                     hoverinfo="skip", legendgroup=label, showlegend=False, name=label))
            fig.add_trace(go.Scatter(
                x=list(edge), y=[row["accuracy"]] * 2, mode="lines", name=label, legendgroup=label,
                line={"color": color, "dash": "dash", "width": 2},
                hovertemplate=(f"<b>{label}</b><br>accuracy: {row['accuracy']:.3f} "
                               f"{_interval_text(row['low'], row['high'])}<extra></extra>")))
        color = colors[name]
        fig.add_trace(go.Scatter(x=[*sizes, *sizes[::-1]], y=[*summary["max"], *summary["min"][::-1]], mode="lines",
                                 fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0}, hoverinfo="skip",
                                 name="min to max over seeds"))
        fig.add_trace(go.Scatter(
            x=frame["size"].tolist(), y=frame["accuracy"].tolist(), mode="markers", name="each seed",
            marker={"color": color, "size": 6, "opacity": 0.45}, customdata=frame[["seed", "n_train"]].to_numpy(),
            hovertemplate="%{x} per class, seed %{customdata[0]} (%{customdata[1]} texts): %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=sizes, y=summary["mean"].tolist(), mode="lines+markers", name=_text(name),
            line={"color": color, "width": 2.5}, marker={"color": color, "size": 8},
            error_y={"type": "data", "symmetric": False, "color": color, "thickness": 1, "width": 3,
                     "array": (summary["high"] - summary["mean"]).clip(lower=0).tolist(),
                     "arrayminus": (summary["mean"] - summary["low"]).clip(lower=0).tolist()},
            customdata=summary[["low", "high", "seeds"]].to_numpy(),
            hovertemplate=("%{x} per class: mean %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}] over "
                           "%{customdata[2]} seeds<extra></extra>")))
        for m, size in curve.crossover.items():
            if size is None:
                continue
            label = _text(m)
            fig.add_trace(go.Scatter(
                x=[size], y=[summary.at[size, "mean"]], mode="markers+text", name=f"beats {label}",
                legendgroup=label, marker={"symbol": "star", "size": 16, "color": colors[str(m)],
                                           "line": {"color": "#1f2937", "width": 1}},
                text=[f"beats {label} from {size}/class"], textposition="top left" if size == sizes[-1] else "top right",
                hovertemplate=f"beats {label} from {size} examples per class on<extra></extra>"))
        fig.update_xaxes(type="log", tickvals=sizes, ticktext=[str(s) for s in sizes],
                         range=[math.log10(edge[0]), math.log10(edge[1])])
    fig.update_xaxes(title_text="labelled examples per class (log scale)")
    fig.update_yaxes(title_text=f"held-out accuracy ({curve.n_held_out} items, 95 % Wilson)")
    never = [_text(m) for m, size in curve.crossover.items() if size is None]
    note = f"; never beats {', '.join(never)}" if never else ""
    return _layout(fig, f"Learning curve: {_text(curve.base)} {_text(curve.method)} specialist{note}", height=480,
                   legend={"title": {"text": "model"}})
