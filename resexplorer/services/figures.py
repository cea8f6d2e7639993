"""Every chart of the app as a plotly figure, built from plain data (curves,
probe results, accuracies). The pages draw them with `st.plotly_chart(fig,
config=chart_config(name))`; this module never imports streamlit."""

from __future__ import annotations

import html
import math
import numbers
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from ..errors import ConfigError
from ..nets.config import DEPTHS, ModelConfig
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


def model_colour(model: str) -> str:
    """A stable colour per model name: family by shortcut, shade by depth."""
    try:
        config = ModelConfig.from_name(model)
    except ConfigError:  # a name this version does not know: a middle residual blue
        return PALETTES["resnet"][DEPTHS.index(20)]
    family = config.arch
    if config.arch == "resnet" and config.zero_init_residual:
        family = "resnet-zero"
    elif config.arch == "resnet" and config.shortcut != "A":
        family = f"resnet-{config.shortcut}"
    palette = PALETTES[family]
    depth = config.depth
    index = DEPTHS.index(depth) if depth in DEPTHS else depth % len(palette)
    return palette[min(index, len(palette) - 1)]


def _paper_model(model: str) -> bool:
    """A model Table 6 reports: a plain net, or a residual net with option A
    shortcuts started the usual way."""
    try:
        config = ModelConfig.from_name(model)
    except ConfigError:
        return False
    return config.shortcut == "A" and not config.zero_init_residual


MAX_POINTS = 240  # per line: more is invisible at chart width and slows the browser
REFERENCE_GROUP = "reference runs (faded)"


def _kept(n: int, limit: int = MAX_POINTS) -> Sequence[int]:
    """Indices of every k-th point (and always the last), so a long run draws fast."""
    if n <= limit:
        return range(n)
    keep = list(range(0, n, -(-n // limit)))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return keep


def _number(value) -> float | None:
    """A plain float for the figure; None (a gap) for missing or non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def figure(data: list, layout: dict) -> go.Figure:
    """The figure of plain trace and layout dicts, validated once (building
    each go.Scatter first and then the figure validates everything twice).
    No template: plotly's default applies, unvalidated, and under Streamlit
    it is Streamlit's theme, which st.plotly_chart restyles for light and
    dark mode; a named template is validated on every figure."""
    return go.Figure({"data": data, "layout": layout})


def _latest(epochs: Sequence[float], errors: Sequence[float], at: float) -> str:
    """The error (percent, as text) at the curve's last point at or before `at`."""
    i = bisect_right(epochs, at) - 1
    return f"{100 * errors[i]:.2f}%" if i >= 0 else "not yet"


CURVE_KINDS = ("training error", "test error")


def _curve_traces(
    curve: Curve, x_axis: str, reference: bool, first_reference: bool, group_title: str = REFERENCE_GROUP
) -> list[dict]:
    """A model's training (thin, dashed) and test (bold, with markers) traces.
    Each point's customdata, [epoch, iteration, the other curve's error then
    (at its last point at or before)], completes one hover with both errors."""
    colour = model_colour(curve.model)
    limit = MAX_POINTS // 3 if reference else MAX_POINTS  # faded lines need less detail
    steps = curve.steps_per_epoch
    sources = {
        "training error": (curve.train_epoch, curve.train_error, curve.test_epoch, curve.test_error),
        "test error": (curve.test_epoch, curve.test_error, curve.train_epoch, curve.train_error),
    }
    traces = []
    for kind in CURVE_KINDS:
        epochs, errors, other_epochs, other_errors = sources[kind]
        keep = _kept(len(epochs), limit)
        ep = [float(epochs[i]) for i in keep]
        iterations = [round(e * steps) for e in ep]
        other = "test error" if kind == "training error" else "training error"
        # The other error as text: plotly.js would format a missing value (null) as 0.00.
        custom = [[round(e, 3), it, _latest(other_epochs, other_errors, e)] for e, it in zip(ep, iterations)]
        label = curve.label.replace("%{", "% {")  # the label goes into the template verbatim
        training = kind == "training error"
        trace = {
            "type": "scatter",  # SVG, never scattergl: a browser gives a page only a few WebGL contexts
            "mode": "lines" if training else "lines+markers",
            "name": f"{curve.label} {kind}",
            "legendgroup": "reference" if reference else curve.label,
            "meta": {"run": curve.label, "curve": kind, "reference": reference},
            "x": iterations if x_axis == "iteration" else [round(e, 4) for e in ep],
            "y": [round(100 * float(errors[i]), 3) for i in keep],
            "customdata": custom,
            "hovertemplate": (
                f"<b>{'reference run ' if reference else ''}{label}</b><br>"
                f"{kind} %{{y:.2f}}% · {other} %{{customdata[2]}}<br>"
                "epoch %{customdata[0]:.2f} · iteration %{customdata[1]:,}<extra></extra>"
            ),
            "line": {"color": colour, "width": 1.2 if training else 3, "dash": "dash" if training else "solid"},
        }
        if not training:
            trace["marker"] = {"size": 5, "color": colour}
        if reference:
            trace["opacity"] = 0.3
            trace["legendrank"] = 2000  # drawn first (underneath) but listed after the models (default rank 1000)
            if first_reference and training:
                trace["legendgrouptitle"] = {"text": group_title}
        traces.append(trace)
    return traces


def error_curves(
    curves: Sequence[Curve],
    x_axis: str = "epoch",
    log_y: bool = False,
    paper_markers: bool = False,
    faded: Sequence[Curve] = (),
    title: str = "",
    uirevision: str | None = None,
) -> go.Figure:
    """The paper's Fig. 6 layout: training error thin and dashed, test error
    bold, one colour per model (a legend click hides both of its curves);
    `faded` curves (reference runs) underneath in a legend group of their own.
    `uirevision` keeps the user's zoom and hidden traces across redraws while
    it stays the same. Under runs of their own the x axis fits those runs'
    schedule: longer reference runs would squeeze them into a corner, so
    they are clipped to it, as their legend says (a double-click on the
    chart shows them whole)."""
    span = _scheduled_span(curves, x_axis) if faded else None
    group_title = REFERENCE_GROUP
    if span is not None and (_scheduled_span(faded, x_axis) or 0) > span:  # only said where something is cut
        group_title = f"{REFERENCE_GROUP}<br>clipped to this job's {span:,.0f} {_x_unit(x_axis)};<br>"
        group_title += "double-click the chart for all"
    data: list[dict] = []
    for n, curve in enumerate(faded):
        data += _curve_traces(curve, x_axis, reference=True, first_reference=n == 0, group_title=group_title)
    for curve in curves:
        data += _curve_traces(curve, x_axis, reference=False, first_reference=False)

    shapes, annotations, marked = [], [], []
    if paper_markers:
        for curve in curves:
            reported = paper_test_error(curve.arch, curve.depth)
            if reported and _paper_model(curve.model):
                value, source = reported
                colour = model_colour(curve.model)
                marked.append(value)
                # Shapes take data values on a log axis; annotations take its log10.
                shapes.append(
                    {
                        "type": "line",
                        "xref": "paper",
                        "x0": 0,
                        "x1": 1,
                        "yref": "y",
                        "y0": value,
                        "y1": value,
                        "line": {"color": colour, "width": 1.5, "dash": "dot"},
                        "layer": "below",
                    }
                )
                annotations.append(
                    {
                        "text": f"paper {curve.model}: {value}% ({source})",
                        "xref": "paper",
                        "x": 0,
                        "xanchor": "left",
                        "yref": "y",
                        "y": math.log10(value) if log_y else value,
                        "yanchor": "bottom",
                        "showarrow": False,
                        "font": {"size": 10, "color": colour},
                    }
                )

    yaxis: dict = {"title": {"text": "error (%)"}}
    if log_y:
        yaxis["type"] = "log"
        positive = [v for trace in data for v in trace["y"] if v > 0] + [v for v in marked if v > 0]
        if positive:  # fitted: plotly's own log range rounds out to whole decades
            yaxis["range"] = [math.log10(min(positive) / 1.2), math.log10(min(100.0, max(positive) * 1.2))]
    xaxis: dict = {"title": {"text": _x_unit(x_axis)}}
    if span is not None:
        xaxis["range"] = [0, span * 1.02]  # room for the last marker
    layout = {
        "height": 460,
        "margin": {"l": 60, "r": 20, "t": 40 if title else 20, "b": 50},
        "xaxis": xaxis,
        "yaxis": yaxis,
        "legend": {"groupclick": "togglegroup", "tracegroupgap": 6},
        "hovermode": "closest",
        "uirevision": uirevision if uirevision is not None else f"error-curves {x_axis} {log_y}",
        "shapes": shapes,
        "annotations": annotations,
    }
    if title:
        layout["title"] = {"text": title}
    return figure(data, layout)


def _x_unit(x_axis: str) -> str:
    return "iterations" if x_axis == "iteration" else "epochs"


def _scheduled_span(curves: Sequence[Curve], x_axis: str) -> float | None:
    """How far the longest of these runs goes when it ends (its planned
    epochs, or how far it got where the plan is unknown), in the axis's
    units; None without runs. The plan, not the progress, so the axis
    stays put while a job trains."""
    ends = []
    for curve in curves:
        epochs = curve.planned_epochs or max([*curve.train_epoch, *curve.test_epoch], default=0)
        ends.append(epochs * curve.steps_per_epoch if x_axis == "iteration" else epochs)
    longest = max(ends, default=0)
    return longest if longest > 0 else None


# --- inside the nets -------------------------------------------------------------


@dataclass
class Series:
    """One model's line: label for the legend, model name for the colour."""

    label: str
    model: str
    x: Sequence
    y: Sequence  # None where undefined (drawn as a gap)
    dash: str = "solid"  # plotly's dash name: solid, dash, dot, dashdot, longdash, longdashdot
    hover: Sequence[str] | None = None  # per point, e.g. layer names
    band: Sequence[float] | None = None  # per point, a half-width drawn shaded around the line (its noise)


def _translucent(colour: str, alpha: float = 0.18) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _band(s: Series, x: list) -> dict:
    """The shaded band y +/- band around a series, as one closed shape."""
    upper = [y + b for y, b in zip(s.y, s.band)]
    lower = [y - b for y, b in zip(s.y, s.band)]
    return {
        "type": "scatter",
        "mode": "lines",
        "x": list(x) + list(x)[::-1],
        "y": [_number(v) for v in upper + lower[::-1]],
        "fill": "toself",
        "fillcolor": _translucent(model_colour(s.model)),
        "line": {"width": 0},
        "hoverinfo": "skip",
        "showlegend": False,
        "legendgroup": s.label,
        "name": f"{s.label} (band)",
    }


LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0}
LEGEND_ABOVE = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0}


def lines_chart(
    series: Sequence[Series], x_title: str, y_title: str, log_y: bool = False, markers: bool = True, height: int = 360
) -> go.Figure:
    """Several models' values on one axis (across depth, over epochs, along
    a slice), coloured as everywhere else in the app. Points carry the hover
    text (a layer or block name where the series has one)."""
    numeric = all(isinstance(v, numbers.Real) for s in series for v in s.x)  # numpy scalars too
    data = []
    for s in series:
        label = s.label.replace("%{", "% {")
        trace = {
            "type": "scatter",
            "mode": "lines+markers" if markers else "lines",
            "name": s.label,
            "x": [_number(v) for v in s.x] if numeric else [str(v) for v in s.x],
            "y": [_number(v) for v in s.y],
            "connectgaps": False,
            "line": {"color": model_colour(s.model), "width": 2, "dash": s.dash},
            "marker": {"size": 6, "color": model_colour(s.model)},
        }
        where = f"{x_title}: %{{x}}"
        if s.hover:
            trace["text"] = [str(h) for h in s.hover]
            where += " · %{text}"
        trace["hovertemplate"] = f"<b>{label}</b><br>{where}<br>{y_title}: %{{y:.4g}}<extra></extra>"
        if s.band:
            data.append(_band(s, trace["x"]))
            trace["legendgroup"] = s.label  # hiding the line hides its band
        data.append(trace)
    xaxis = {"title": {"text": x_title}}
    if not numeric:
        xaxis["type"] = "category"  # in the order given
    return figure(
        data,
        {
            "height": height,
            "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
            "xaxis": xaxis,
            "yaxis": {"title": {"text": y_title}, **({"type": "log"} if log_y else {})},
            "legend": LEGEND_BELOW,
            "hovermode": "closest",
        },
    )


def heatmap_panels(
    panels: Sequence[tuple[str, Sequence[float], Sequence[Sequence[float]]]], z_title: str, cell_px: int = 240
) -> go.Figure:
    """2-D loss slices side by side, one panel per model, on one colour scale
    (log10 of the loss, so the basins show). z[j][i] is the loss at
    (alpha=axis[i], beta=axis[j]). Sized by cell_px: draw with width="content"."""
    count, gap = max(1, len(panels)), 0.04
    width = (1 - gap * (count - 1)) / count  # of the plotting area, per panel
    # The subplot grid spelled out: plotly.subplots.make_subplots costs more than the data.
    data, layout = [], {}
    annotations = []
    for n, (title, axis, z) in enumerate(panels):
        suffix = str(n + 1) if n else ""
        left = n * (width + gap)
        axis = [round(float(a), 3) for a in axis]
        data.append(
            {
                "type": "heatmap",
                "x": axis,
                "y": axis,
                "z": [[round(math.log10(max(float(v), 1e-6)), 4) for v in row] for row in z],
                "coloraxis": "coloraxis",
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "hovertemplate": f"<b>{title.replace('%{', '% {')}</b><br>α %{{x}} · β %{{y}}<br>"
                f"{z_title}: %{{z:.3f}}<extra></extra>",
            }
        )
        layout[f"xaxis{suffix}"] = {"domain": [left, left + width], "anchor": f"y{suffix}", "title": {"text": "α"}}
        # β labelled once, at the left: the other panels share (match) its axis
        others = {"matches": "y", "showticklabels": False}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", **({"title": {"text": "β"}} if n == 0 else others)}
        annotations.append(
            {
                "text": title,
                "xref": "paper",
                "yref": "paper",
                "x": left + width / 2,
                "y": 1,
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 14},
            }
        )
    return figure(
        data,
        {
            **layout,
            "annotations": annotations,
            "coloraxis": {"colorscale": "Viridis", "colorbar": {"title": {"text": z_title}}},
            "width": count * cell_px + 160,
            "height": cell_px + 110,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        },
    )


def heatmap(
    z: Sequence[Sequence[float | None]],
    x: Sequence[str],
    y: Sequence[str],
    colour_title: str,
    diverging: bool = False,
    text_format: str = ".1f",
    height: int | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
) -> go.Figure:
    """A labelled grid of numbers (accuracy per strategy x merge, change
    under corruptions), each cell written out, rows top to bottom as given.
    Diverging: red below zero, blue above. zmin/zmax fix the colour range.
    Every number a person reads is in text_format: the cells, their hover,
    and the colour bar's ticks where the range is fixed."""
    values = [[_number(v) for v in row] for row in z]
    text = [["" if v is None else format(v, text_format) for v in row] for row in values]
    fixed = zmin is not None and zmax is not None
    # A fixed range (accuracy 0-100) gets round ticks, written as the cells are, without their sign (a "+"
    # reads oddly on a scale). A range that follows the data can be narrow, where a fixed number of
    # decimals writes one label several times (88.0, 88.0, 88.1): there plotly's own tick labels, which
    # carry the decimals the tick spacing needs, no more.
    ticks = {"tickformat": text_format.lstrip("+- ")} if fixed else {}
    trace = {
        "type": "heatmap",
        "z": values,
        "x": [str(c) for c in x],
        "y": [str(r) for r in y],
        "text": text,
        "texttemplate": "%{text}",
        "hoverongaps": False,
        "xgap": 1,
        "ygap": 1,
        "colorscale": "RdBu" if diverging else "Viridis",  # plotly.py's RdBu: red low, blue high
        "colorbar": {"title": {"text": colour_title, "side": "right"}, **ticks},
        "hovertemplate": "%{y} · %{x}: %{text}<extra></extra>",  # the cell's own text
    }
    if diverging:
        trace["zmid"] = 0
    if zmin is not None:
        trace["zmin"] = zmin
    if zmax is not None:
        trace["zmax"] = zmax
    return figure(
        [trace],
        {
            "height": height or max(32 * len(y) + 70, 160),  # a colour bar long enough to read
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "xaxis": {"side": "top", "type": "category", "showgrid": False},
            "yaxis": {"autorange": "reversed", "type": "category", "showgrid": False},
        },
    )


def probability_bars(classes: Sequence[str], series: dict[str, Sequence[float]]) -> go.Figure:
    """Class probabilities, one group of bars per class, one bar per strategy."""
    names = [str(c) for c in classes]
    data = [
        {
            "type": "bar",
            "name": name,
            "x": names,
            "y": [round(100 * float(p), 3) for p in probs],
            "hovertemplate": f"{name.replace('%{', '% {')} · %{{x}}: %{{y:.1f}}%<extra></extra>",
        }
        for name, probs in series.items()
    ]
    return figure(
        data,
        {
            "height": 300,
            "barmode": "group",
            "margin": {"l": 60, "r": 20, "t": 20, "b": 40},
            # Slanted class names reach further down than a legend below leaves room for: it covered the
            # longest ("automobile" read "tomobile"), so the legend goes above and the names get the space.
            "xaxis": {"type": "category", "tickangle": -30, "automargin": True},
            "yaxis": {"title": {"text": "probability (%)"}},
            "legend": LEGEND_ABOVE,
        },
    )


def with_view(fig: go.Figure, view: dict) -> go.Figure:
    """The figure as the user last left it: `view` is {"x": [low, high],
    "auto" or None, "y": ..., "hidden": [trace names]} (axis ranges in
    plotly's own units, log10 on a log axis). "auto" fits the axis to all
    the data; None leaves it as the figure has it."""
    for axis, update in (("x", fig.update_xaxes), ("y", fig.update_yaxes)):
        span = view.get(axis)
        if span == "auto":  # the user asked for the whole data (a double-click), over any range the figure set
            update(range=None, autorange=True)
        elif span and len(span) == 2 and all(isinstance(v, (int, float)) for v in span):
            update(range=list(span), autorange=False)
    hidden = set(view.get("hidden") or ())
    for trace in fig.data:
        if trace.name in hidden:
            trace.visible = "legendonly"
    return fig


def chart_config(filename: str) -> dict:
    """The `config` for st.plotly_chart: no plotly logo, and the mode bar's
    camera button saves a sharp PNG named after the chart."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def figure_html(fig: go.Figure, title: str) -> str:
    """A chart as a standalone web page for download, plotly.js inlined so it
    opens offline, on a white template (Streamlit's theme template only has
    placeholder colours that its front end fills in). Build it on click (a
    callable for st.download_button): the library makes the page megabytes."""
    page = go.Figure(fig)
    page.update_layout(template="plotly_white")
    if not page.layout.title.text:
        page.layout.title.text = title
    page.layout.margin.t = max(page.layout.margin.t or 0, 60)  # room for the title
    text = page.to_html(include_plotlyjs=True, full_html=True)
    return text.replace("<head>", f"<head>\n    <title>{html.escape(title)}</title>", 1)
