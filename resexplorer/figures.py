"""Every plotly figure of the app, built from plain data (curves.py etc.)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import plotly.graph_objects as go

from .curves import Curve
from .paper import paper_test_error

# Plain nets in warm colours, residual nets in cool ones, darker when deeper,
# so a Fig. 6 chart reads at a glance.
PALETTES = {
    "plain": ["#f6bd60", "#f4a261", "#e76f51", "#d62828", "#9d0208", "#6a040f", "#370617"],
    "resnet": ["#a9d6e5", "#61a5c2", "#2c7da0", "#1f6f9f", "#01497c", "#013a63", "#012a4a"],
    "resnet-B": ["#b7e4c7", "#74c69d", "#52b788", "#40916c", "#2d6a4f", "#1b4332", "#081c15"],
    "resnet-C": ["#d0bfff", "#b197fc", "#9775fa", "#845ef7", "#7048e8", "#5f3dc4", "#3b1f8f"],
    "resnet-zero": ["#99e9f2", "#66d9e8", "#3bc9db", "#22b8cf", "#15aabf", "#1098ad", "#0b7285"],
}
DEPTH_ORDER = [8, 14, 20, 32, 44, 56, 110]


def model_colour(model: str) -> str:
    """A stable colour per model name: family by shortcut, shade by depth."""
    parts = model.split("-")
    arch, depth = parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 20
    family = arch
    if arch == "resnet":
        if "zero" in parts:
            family = "resnet-zero"
        elif "B" in parts or "C" in parts:
            family = f"resnet-{'B' if 'B' in parts else 'C'}"
    palette = PALETTES.get(family, PALETTES["resnet"])
    index = DEPTH_ORDER.index(depth) if depth in DEPTH_ORDER else depth % len(palette)
    return palette[min(index, len(palette) - 1)]


MAX_POINTS = 240  # per line: more is invisible at chart width and slows the browser


def _thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list, list]:
    """Every k-th point (and always the last), so a long run draws fast."""
    if len(xs) <= limit:
        return list(xs), list(ys)
    keep = list(range(0, len(xs), -(-len(xs) // limit)))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _xy(curve: Curve, epochs: Sequence[float], errors: Sequence[float], axis: str, limit: int = MAX_POINTS) -> tuple[list, list]:
    """x in epochs or iterations, y in percent rounded for a small payload."""
    xs, ys = _thin(epochs, errors, limit)
    xs = [round(e * curve.steps_per_epoch) if axis == "iteration" else round(e, 4) for e in xs]
    return xs, [round(100 * y, 3) for y in ys]


def error_curves(
    curves: Sequence[Curve],
    x_axis: str = "epoch",
    log_y: bool = False,
    paper_markers: bool = False,
    faded: Sequence[Curve] = (),
    title: str = "",
) -> go.Figure:
    """The paper's Fig. 6 layout: training error thin and dashed, test error
    bold, one colour per model; `faded` curves (reference runs) underneath."""
    fig = go.Figure()
    for index, curve in enumerate(faded):
        colour = model_colour(curve.model)
        for xs, ys, dash, width in ((curve.train_epoch, curve.train_error, "dot", 1), (curve.test_epoch, curve.test_error, "solid", 2)):
            x, y = _xy(curve, xs, ys, x_axis, limit=MAX_POINTS // 3)  # faded lines need less detail
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line={"color": colour, "dash": dash, "width": width},
                    opacity=0.3,
                    name="reference runs (faded)",
                    legendgroup="reference",
                    showlegend=index == 0 and dash == "solid",
                    hovertemplate=f"reference {curve.label}<br>%{{x:.2f}}: %{{y:.2f}}%<extra></extra>",
                )
            )
    for curve in curves:
        colour = model_colour(curve.model)
        for kind, xs, ys, style in (
            ("train", curve.train_epoch, curve.train_error, {"mode": "lines", "line": {"color": colour, "dash": "dash", "width": 1.2}}),
            ("test", curve.test_epoch, curve.test_error, {"mode": "lines+markers", "line": {"color": colour, "width": 3}, "marker": {"size": 6}}),
        ):
            x, y = _xy(curve, xs, ys, x_axis)
            what = "training error" if kind == "train" else "test error"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    name=f"{curve.label} {kind}",
                    legendgroup=curve.label,
                    hovertemplate=f"{curve.label} {what}<br>{x_axis} %{{x:.2f}}: %{{y:.2f}}%<extra></extra>",
                    **style,
                )
            )
        reported = paper_test_error(curve.arch, curve.depth) if paper_markers else None
        if reported and "-" not in curve.model[len(curve.arch) + 1 :]:  # option A / plain only
            value, source = reported
            fig.add_hline(
                y=value,
                line={"color": colour, "dash": "dot", "width": 1},
                annotation_text=f"paper {curve.model}: {value}% ({source})",
                annotation_position="top left",
                annotation_font={"size": 10, "color": colour},
            )
    fig.update_layout(
        title=title or None,
        xaxis_title="iterations" if x_axis == "iteration" else "epochs",
        yaxis_title="error (%)",
        yaxis_type="log" if log_y else "linear",
        hovermode="closest",
        legend={"groupclick": "togglegroup"},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        height=460,
    )
    return fig


# --- inside the nets -------------------------------------------------------------


@dataclass
class Series:
    """One model's line: label for the legend, model name for the colour."""

    label: str
    model: str
    x: Sequence
    y: Sequence  # None where undefined (drawn as a gap)
    dash: str = "solid"
    hover: Sequence[str] | None = None  # per point, e.g. layer names


def lines_chart(series: Sequence[Series], x_title: str, y_title: str, log_y: bool = False, markers: bool = True, height: int = 360) -> go.Figure:
    """Several models' values on one axis (across depth, over epochs, along
    a slice), coloured as everywhere else in the app."""
    fig = go.Figure()
    for s in series:
        fig.add_trace(
            go.Scatter(
                x=list(s.x),
                y=list(s.y),
                name=s.label,
                mode="lines+markers" if markers else "lines",
                line={"color": model_colour(s.model), "dash": s.dash, "width": 2},
                marker={"size": 5},
                text=list(s.hover) if s.hover else None,
                hovertemplate=f"{s.label}<br>%{{text}}<br>%{{y:.4g}}<extra></extra>" if s.hover else f"{s.label}<br>%{{x}}: %{{y:.4g}}<extra></extra>",
                connectgaps=False,
            )
        )
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis_type="log" if log_y else "linear",
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        height=height,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def contour_grid(panels: Sequence[tuple[str, Sequence[float], Sequence[Sequence[float]]]], z_title: str) -> go.Figure:
    """2-D loss slices side by side, one per model, on one colour scale
    (log10 of the loss, so the basins show)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for title, _, _ in panels], horizontal_spacing=0.08)
    values = [math.log10(max(v, 1e-6)) for _, _, z in panels for row in z for v in row]
    low, high = min(values), max(values)
    for col, (title, axis, z) in enumerate(panels, start=1):
        fig.add_trace(
            go.Contour(
                x=list(axis),
                y=list(axis),
                z=[[math.log10(max(v, 1e-6)) for v in row] for row in z],
                zmin=low,
                zmax=high,
                colorscale="Viridis",
                showscale=col == len(panels),
                colorbar={"title": z_title},
                contours={"showlabels": False},
                hovertemplate=f"{title}<br>α=%{{x}}, β=%{{y}}<br>log10 loss %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=360)
    return fig


def image_grid(cells: Sequence[Sequence[object]], row_titles: Sequence[str], column_titles: Sequence[str], cell_px: int = 150) -> go.Figure:
    """Images (uint8 [H, W, 3] arrays, or None) in a grid of subplots with
    titles: rows are models, columns are methods on the attribution page."""
    from plotly.subplots import make_subplots

    rows, cols = len(row_titles), len(column_titles)
    fig = make_subplots(rows=rows, cols=cols, column_titles=list(column_titles), row_titles=list(row_titles), horizontal_spacing=0.01, vertical_spacing=0.03)
    for r, row in enumerate(cells, start=1):
        for c, image in enumerate(row, start=1):
            if image is not None:
                fig.add_trace(go.Image(z=image, hoverinfo="skip"), row=r, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=rows * cell_px + 40, width=cols * cell_px + 60, margin={"l": 10, "r": 40, "t": 30, "b": 10})
    return fig


def heatmap(z: Sequence[Sequence[float | None]], x: Sequence[str], y: Sequence[str], colour_title: str, diverging: bool = False, text_format: str = ".1f", height: int | None = None) -> go.Figure:
    """A labelled grid of numbers (accuracy per strategy x merge, change
    under corruptions), each cell written out."""
    fig = go.Figure(
        go.Heatmap(
            z=[list(row) for row in z],
            x=list(x),
            y=list(y),
            colorscale="RdBu" if diverging else "Viridis",
            zmid=0 if diverging else None,
            texttemplate=f"%{{z:{text_format}}}",
            colorbar={"title": colour_title},
            hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=height or 60 + 32 * len(y), yaxis={"autorange": "reversed"})
    return fig


def probability_bars(classes: Sequence[str], series: dict[str, Sequence[float]]) -> go.Figure:
    """Class probabilities, one group of bars per class, one bar per strategy."""
    fig = go.Figure([go.Bar(name=name, x=list(classes), y=[100 * p for p in probs], hovertemplate=f"{name}<br>%{{x}}: %{{y:.1f}}%<extra></extra>") for name, probs in series.items()])
    fig.update_layout(barmode="group", yaxis_title="probability (%)", margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=320, legend={"orientation": "h", "y": -0.25})
    return fig


def error_curves_png(curves: Sequence[Curve], width_px: int = 1100, height_px: int = 420) -> bytes:
    """The Fig. 6 chart of `error_curves` as a PNG drawn on the server
    (matplotlib): it shows at once, without the browser first loading and
    starting plotly.js (about 1.5-2 s), so Home's first screen is quick."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    ax = fig.add_subplot()
    for curve in curves:
        colour = model_colour(curve.model)
        x, y = _xy(curve, curve.train_epoch, curve.train_error, "epoch")
        ax.plot(x, y, color=colour, linestyle="--", linewidth=1.0, label=f"{curve.label} train")
        x, y = _xy(curve, curve.test_epoch, curve.test_error, "epoch")
        ax.plot(x, y, color=colour, linewidth=2.6, marker="o", markersize=3.5, label=f"{curve.label} test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
