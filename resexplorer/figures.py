"""Every chart of the app as a Vega-Lite specification (a plain dict), built
from plain data (curves.py etc.) and drawn with `st.vega_lite_chart`.

Vega-Lite rather than plotly because of first-render time: Streamlit's
plotly.js bundle is 4.7 MB of JavaScript that every new tab has to parse
and start (about 1-2 s on a 2-core CPU), against 0.8 MB for Vega, and
bench/app_speed.py showed it as the largest part of each page's first
render. The specs stay small: rows of plain values under "data", one
layer per kind of mark."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Sequence

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


Spec = dict  # a Vega-Lite specification

MAX_POINTS = 240  # per line: more is invisible at chart width and slows the browser
DASHES = {"solid": [1, 0], "dash": [6, 4], "dot": [2, 3], "dashdot": [6, 3, 2, 3], "longdash": [12, 4], "longdashdot": [12, 4, 2, 4]}  # Series.dash -> strokeDash
# SVG rather than canvas: every mark becomes an element labelled with its
# values (screen readers; the browser tests read them), cheap at our sizes.
_SVG = {"embedOptions": {"renderer": "svg"}}


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


def _number(value) -> float | None:
    """A plain float for the chart's rows; None (a gap) for missing or non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _colour_scale(labels_and_models: Sequence[tuple[str, str]]) -> dict:
    """Each label in its model's colour (see model_colour), in first-seen order."""
    domain: list[str] = []
    colours: list[str] = []
    for label, model in labels_and_models:
        if label not in domain:
            domain.append(label)
            colours.append(model_colour(model))
    return {"domain": domain, "range": colours}


def _literal_colour(field: str) -> dict:
    """Colour straight from a column of CSS colours: no scale, no legend."""
    return {"field": field, "type": "nominal", "scale": None, "legend": None}


CURVE_KINDS = ["training error", "test error"]


def error_curves(
    curves: Sequence[Curve],
    x_axis: str = "epoch",
    log_y: bool = False,
    paper_markers: bool = False,
    faded: Sequence[Curve] = (),
    title: str = "",
) -> Spec:
    """The paper's Fig. 6 layout: training error thin and dashed, test error
    bold, one colour per model; `faded` curves (reference runs) underneath.
    Clicking a model in the legend brings its lines forward; drag to pan,
    scroll to zoom."""
    x_title = "iterations" if x_axis == "iteration" else "epochs"
    rows, reference, markers = [], [], []
    for curve in curves:
        for kind, xs, ys in (("training error", curve.train_epoch, curve.train_error), ("test error", curve.test_epoch, curve.test_error)):
            x, y = _xy(curve, xs, ys, x_axis)
            rows += [{"run": curve.label, "curve": kind, "x": a, "error": b} for a, b in zip(x, y)]
        reported = paper_test_error(curve.arch, curve.depth) if paper_markers else None
        if reported and "-" not in curve.model[len(curve.arch) + 1 :]:  # option A / plain only
            value, source = reported
            markers.append({"error": value, "text": f"paper {curve.model}: {value}% ({source})", "colour": model_colour(curve.model)})
    for curve in faded:
        for kind, xs, ys in (("training error", curve.train_epoch, curve.train_error), ("test error", curve.test_epoch, curve.test_error)):
            x, y = _xy(curve, xs, ys, x_axis, limit=MAX_POINTS // 3)  # faded lines need less detail
            reference += [{"run": curve.label, "curve": kind, "x": a, "error": b} for a, b in zip(x, y)]

    x = {"field": "x", "type": "quantitative", "title": x_title}
    y = {"field": "error", "type": "quantitative", "title": "error (%)", "scale": {}}
    positive = [r["error"] for r in rows + reference + markers if r["error"] > 0]
    if log_y and positive:  # Vega's own log domain rounds out to whole decades (1 to 1,000 for errors of 5 to 90)
        y["scale"] = {"type": "log", "domain": [round(min(positive) / 1.2, 3), round(min(100.0, max(positive) * 1.2), 3)], "nice": False}
    dash = {"field": "curve", "type": "nominal", "title": None, "scale": {"domain": CURVE_KINDS, "range": [DASHES["dash"], DASHES["solid"]]}}
    tooltip = [{"field": "run", "title": "model"}, {"field": "curve", "title": "curve"}, {"field": "x", "title": x_title, "format": ".2f"}, {"field": "error", "title": "error (%)", "format": ".2f"}]
    layers = []
    if reference:
        layers.append(
            {
                "data": {"values": reference},
                "mark": {"type": "line", "opacity": 0.3, "strokeWidth": 1.5},
                "encoding": {
                    "x": x,
                    "y": y,
                    "color": {"field": "run", "type": "nominal", "title": "reference runs (faded)", "scale": _colour_scale([(c.label, c.model) for c in faded]), "legend": {"labelLimit": 260, "symbolOpacity": 0.4}},
                    "strokeDash": dash,
                    "tooltip": [{**tooltip[0], "title": "reference run"}, *tooltip[1:]],
                },
            }
        )
    if rows:
        colour = {"field": "run", "type": "nominal", "title": "model", "scale": _colour_scale([(c.label, c.model) for c in curves]), "legend": {"labelLimit": 260}}
        layers.append(
            {
                "mark": {"type": "line"},
                "params": [{"name": "highlight", "select": {"type": "point", "fields": ["run"]}, "bind": "legend"}],
                "encoding": {
                    "x": x,
                    "y": y,
                    "color": colour,
                    "strokeDash": dash,
                    "strokeWidth": {"field": "curve", "type": "nominal", "title": None, "scale": {"domain": CURVE_KINDS, "range": [1.2, 3]}},  # one legend with the dash
                    "opacity": {"condition": {"param": "highlight", "value": 1}, "value": 0.15},
                },
            }
        )
        # Points carry the hover text: visible on test error, invisible on the
        # training curve. (An opacity encoded by curve would merge into the
        # dash legend and hide the training entry.)
        layers.append(
            {
                "transform": [{"filter": "datum.curve === 'test error'"}],
                "mark": {"type": "point", "filled": True, "size": 40},
                "params": [{"name": "zoom", "select": "interval", "bind": "scales"}],
                "encoding": {"x": x, "y": y, "color": {**colour, "legend": None}, "opacity": {"condition": {"param": "highlight", "value": 1}, "value": 0.15}, "tooltip": tooltip},
            }
        )
        layers.append(
            {
                "transform": [{"filter": "datum.curve === 'training error'"}],
                "mark": {"type": "point", "size": 40, "opacity": 0},
                "encoding": {"x": x, "y": y, "tooltip": tooltip},
            }
        )
    if markers:
        layers.append({"data": {"values": markers}, "mark": {"type": "rule", "strokeDash": DASHES["dot"]}, "encoding": {"y": {"field": "error", "type": "quantitative"}, "color": _literal_colour("colour")}})
        layers.append(
            {
                "data": {"values": markers},
                "mark": {"type": "text", "align": "left", "dx": 4, "dy": -7, "fontSize": 10},
                "encoding": {"x": {"value": 0}, "y": {"field": "error", "type": "quantitative"}, "text": {"field": "text"}, "color": _literal_colour("colour")},
            }
        )
    spec: Spec = {
        "usermeta": _SVG,
        "height": 460,
        "data": {"values": rows},
        "layer": layers or [{"mark": "line", "encoding": {"x": x, "y": y}}],
        "resolve": {"scale": {"color": "independent"}},
    }
    if title:
        spec["title"] = title
    return spec


# --- inside the nets -------------------------------------------------------------


@dataclass
class Series:
    """One model's line: label for the legend, model name for the colour."""

    label: str
    model: str
    x: Sequence
    y: Sequence  # None where undefined (drawn as a gap)
    dash: str = "solid"  # a key of DASHES
    hover: Sequence[str] | None = None  # per point, e.g. layer names


def lines_chart(series: Sequence[Series], x_title: str, y_title: str, log_y: bool = False, markers: bool = True, height: int = 360) -> Spec:
    """Several models' values on one axis (across depth, over epochs, along
    a slice), coloured as everywhere else in the app. Points carry the hover
    text (a layer or block name where the series has one)."""
    numeric = all(isinstance(v, numbers.Real) for s in series for v in s.x)  # numpy scalars too
    rows = []
    for s in series:
        hover = list(s.hover) if s.hover else [None] * len(s.x)
        for x, y, what in zip(s.x, s.y, hover):
            rows.append({"series": s.label, "x": _number(x) if numeric else str(x), "y": _number(y), "at": str(what if what is not None else x)})
    x = {"field": "x", "type": "quantitative", "title": x_title} if numeric else {"field": "x", "type": "ordinal", "title": x_title, "sort": None}
    y = {"field": "y", "type": "quantitative", "title": y_title, "scale": {"type": "log"} if log_y else {"zero": False}}
    scale = _colour_scale([(s.label, s.model) for s in series])
    legend = {"orient": "bottom", "columns": 1 if len(scale["domain"]) <= 4 else 2, "labelLimit": 320, "symbolType": "stroke"}
    colour = {"field": "series", "type": "nominal", "title": None, "scale": scale, "legend": legend}
    dashes = {s.label: DASHES[s.dash] for s in series}
    # Colour and dash on the same field merge into one legend whose samples show both.
    dash = {"field": "series", "type": "nominal", "title": None, "scale": {"domain": scale["domain"], "range": [dashes[label] for label in scale["domain"]]}, "legend": legend}
    return {
        "usermeta": _SVG,
        "height": height,
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "line", "strokeWidth": 2}, "encoding": {"x": x, "y": y, "color": colour, "strokeDash": dash}},
            {
                "mark": {"type": "point", "filled": True, "size": 30, "opacity": 1 if markers else 0},
                "encoding": {"x": x, "y": y, "color": colour, "tooltip": [{"field": "series", "title": "model"}, {"field": "at", "title": x_title}, {"field": "y", "title": y_title, "format": ".4g"}]},
            },
        ],
    }


def heatmap_panels(panels: Sequence[tuple[str, Sequence[float], Sequence[Sequence[float]]]], z_title: str, cell_px: int = 240) -> Spec:
    """2-D loss slices side by side, one panel per model, on one colour scale
    (log10 of the loss, so the basins show). z[j][i] is the loss at
    (alpha=axis[i], beta=axis[j]). Draw with width="content"."""
    rows = [
        {"panel": title, "alpha": round(float(a), 3), "beta": round(float(b), 3), "z": round(math.log10(max(float(v), 1e-6)), 4)}
        for title, axis, z in panels
        for j, b in enumerate(axis)
        for i, (a, v) in enumerate(zip(axis, z[j]))
    ]
    ticks = sorted({r["alpha"] for r in rows})
    shown = ticks[:: max(1, len(ticks) // 4)]
    return {
        "usermeta": _SVG,
        "data": {"values": rows},
        "facet": {"column": {"field": "panel", "type": "nominal", "title": None, "sort": [title for title, _, _ in panels]}},
        "spec": {
            "width": cell_px,
            "height": cell_px,
            "mark": "rect",
            "encoding": {
                "x": {"field": "alpha", "type": "ordinal", "title": "α", "axis": {"values": shown, "labelAngle": 0}},
                "y": {"field": "beta", "type": "ordinal", "title": "β", "sort": "descending", "axis": {"values": shown}},
                "color": {"field": "z", "type": "quantitative", "title": z_title, "scale": {"scheme": "viridis"}},
                "tooltip": [{"field": "panel", "title": "model"}, {"field": "alpha", "title": "α"}, {"field": "beta", "title": "β"}, {"field": "z", "title": z_title, "format": ".3f"}],
            },
        },
    }


def heatmap(z: Sequence[Sequence[float | None]], x: Sequence[str], y: Sequence[str], colour_title: str, diverging: bool = False, text_format: str = ".1f", height: int | None = None) -> Spec:
    """A labelled grid of numbers (accuracy per strategy x merge, change
    under corruptions), each cell written out in a colour that reads on it."""
    values = [float(v) for row in z for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    reach = max(abs(low), abs(high)) or 1.0

    def ink(v: float) -> str:  # light text on the dark ends of the colour scale
        if diverging:
            return "white" if abs(v) > 0.6 * reach else "black"
        return "white" if (v - low) < 0.55 * ((high - low) or 1.0) else "black"

    rows = [
        {"row": str(name), "column": str(column), "value": _number(v), "label": "" if v is None else format(float(v), text_format), "ink": "black" if v is None else ink(float(v))}
        for name, line in zip(y, z)
        for column, v in zip(x, line)
    ]
    position = {
        "x": {"field": "column", "type": "nominal", "sort": [str(c) for c in x], "title": None, "axis": {"labelAngle": 0, "orient": "top"}},
        "y": {"field": "row", "type": "nominal", "sort": [str(r) for r in y], "title": None},
    }
    scale = {"scheme": "redblue", "domainMid": 0} if diverging else {"scheme": "viridis"}
    return {
        "usermeta": _SVG,
        "height": height or 32 * len(y),
        "data": {"values": rows},
        "layer": [
            {"mark": "rect", "encoding": {**position, "color": {"field": "value", "type": "quantitative", "title": colour_title, "scale": scale}, "tooltip": [{"field": "row"}, {"field": "column"}, {"field": "value", "format": ".2f"}]}},
            {"mark": {"type": "text", "fontSize": 12}, "encoding": {**position, "text": {"field": "label"}, "color": _literal_colour("ink")}},
        ],
        "resolve": {"scale": {"color": "independent"}},
    }


def probability_bars(classes: Sequence[str], series: dict[str, Sequence[float]]) -> Spec:
    """Class probabilities, one group of bars per class, one bar per strategy."""
    names = list(series)
    rows = [{"class": c, "strategy": name, "probability": round(100 * float(p), 3)} for name, probs in series.items() for c, p in zip(classes, probs)]
    return {
        "usermeta": _SVG,
        "height": 300,
        "data": {"values": rows},
        "mark": "bar",
        "encoding": {
            "x": {"field": "class", "type": "nominal", "sort": list(classes), "title": None, "axis": {"labelAngle": -30}},
            "xOffset": {"field": "strategy", "type": "nominal", "sort": names},
            "y": {"field": "probability", "type": "quantitative", "title": "probability (%)"},
            "color": {"field": "strategy", "type": "nominal", "sort": names, "title": None, "legend": {"orient": "bottom"}},
            "tooltip": [{"field": "strategy"}, {"field": "class"}, {"field": "probability", "title": "probability (%)", "format": ".1f"}],
        },
    }


def spec_html(spec: Spec, title: str) -> str:
    """A chart as a standalone web page (Vega from a CDN, like any Vega-Lite
    export), for the download buttons."""
    page_spec = {**spec, "width": 900, "$schema": "https://vega.github.io/schema/vega-lite/v6.json"}
    page_spec.pop("usermeta", None)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>" + title + "</title>\n"
        "<script src='https://cdn.jsdelivr.net/npm/vega@6'></script>\n"
        "<script src='https://cdn.jsdelivr.net/npm/vega-lite@6'></script>\n"
        "<script src='https://cdn.jsdelivr.net/npm/vega-embed@7'></script>\n"
        "</head><body><div id='chart'></div>\n<script>vegaEmbed('#chart', " + json.dumps(page_spec) + ");</script>\n</body></html>\n"
    )


def error_curves_png(curves: Sequence[Curve], width_px: int = 1100, height_px: int = 420) -> bytes:
    """The Fig. 6 chart of `error_curves` as a PNG drawn on the server
    (matplotlib), for the Train page's "Chart (PNG)" download."""
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
