"""The Playground's charts, from a PointRace snapshot (plain numbers):
each model's decision surface with the points on it, the loss and error
curves of every model, the gradient norm per layer and ||F(x)|| / ||x|| per
block. Plotly, like every chart of the app; no streamlit here."""

from __future__ import annotations

import plotly.graph_objects as go


def _figure(data: list, layout: dict) -> go.Figure:
    return go.Figure({"data": data, "layout": layout})


COLOURS = {"plain": "#d62828", "residual": "#1f6f9f"}  # the app's warm plain, cool residual
CLASS_COLOURS = ("#f59f00", "#1c7ed6")  # orange, blue: TF Playground's two classes
NAMES = {"plain": "plain", "residual": "with shortcuts"}
UIREVISION = "playground"  # zoom and hidden entries survive every redraw of a run


def _layout(**extra) -> dict:
    return {"margin": {"l": 50, "r": 10, "t": 40, "b": 40}, "uirevision": UIREVISION, **extra}


def surface(snapshot: dict, model: str, points: tuple, test_points: tuple | None = None) -> go.Figure:
    """The probability of the blue class over the plane, with the training
    points (and, if given, the test points as rings) on top.
    points: (xs, ys, labels) as lists."""
    axis = snapshot["axis"]
    data = [
        {
            "type": "heatmap",
            "x": axis,
            "y": axis,
            "z": snapshot["models"][model]["surface"],
            "zmin": 0,
            "zmax": 1,
            "colorscale": [[0, "#ffe8cc"], [0.5, "#f8f9fa"], [1, "#d0ebff"]],
            "showscale": False,
            "hovertemplate": "x %{x:.2f}, y %{y:.2f}<br>P(blue) %{z:.2f}<extra></extra>",
        }
    ]
    shown = [("train", points)] + ([("test", test_points)] if test_points else [])
    for which, (xs, ys, labels) in shown:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": ys,
                "name": f"{which} points",
                "marker": {
                    # the class as a number on a two-colour scale: a list of colour
                    # names is validated name by name (a quarter of a second a chart)
                    "color": labels,
                    "colorscale": [[0, CLASS_COLOURS[0]], [1, CLASS_COLOURS[1]]],
                    "cmin": 0,
                    "cmax": 1,
                    "size": 5 if which == "train" else 6,
                    "symbol": "circle" if which == "train" else "circle-open",
                    "line": {"width": 0.5 if which == "train" else 1.5, "color": "white" if which == "train" else None},
                },
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    state = snapshot["models"][model]
    error = snapshot["history"][model]["train_error"][-1]
    title = f"{NAMES[model]}: training error {100 * error:.0f}%" if error is not None else f"{NAMES[model]}"
    if state["diverged_at"]:
        title += f" (diverged at step {state['diverged_at']})"
    span = [axis[0], axis[-1]]
    return _figure(
        data,
        _layout(
            title={"text": title},
            xaxis={"range": span, "showgrid": False, "zeroline": False, "constrain": "domain"},
            yaxis={"range": span, "showgrid": False, "zeroline": False, "scaleanchor": "x"},
            height=340,
        ),
    )


def curves(snapshot: dict, measure: str = "error") -> go.Figure:
    """Training (thin, dashed) and test (bold) loss or error of every model
    against steps, as the Train page draws Fig. 6."""
    history, data = snapshot["history"], []
    scale = 100 if measure == "error" else 1
    for model in snapshot["models"]:
        for split, dash, width in (("train", "dash", 1.5), ("test", "solid", 3)):
            values = history[model][f"{split}_{measure}"]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": history["step"],
                    "y": [None if v is None else scale * v for v in values],
                    "name": f"{NAMES[model]}, {split}",
                    "line": {"color": COLOURS[model], "dash": dash, "width": width},
                    "meta": {"model": model, "split": split, "measure": measure},
                }
            )
    y_title = "error (%)" if measure == "error" else "cross-entropy loss"
    return _figure(
        data,
        _layout(
            xaxis={"title": {"text": "step"}},
            yaxis={
                "title": {"text": y_title},
                **({"range": [0, 60]} if measure == "error" else {"rangemode": "tozero"}),
            },
            legend={"orientation": "h", "y": -0.25},
            height=320,
        ),
    )


def per_layer(snapshot: dict, key: str) -> go.Figure:
    """A value per layer (grad_norms: every linear layer, input to output)
    or per block (branch_ratios), one line per model, plain beside residual."""
    data = []
    for model, state in snapshot["models"].items():
        values = state[key]
        if key == "grad_norms":
            x = snapshot["layer_names"]
        else:
            x = [f"b{i}" for i in range(1, len(values) + 1)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": x,
                "y": values,
                "name": NAMES[model],
                "line": {"color": COLOURS[model]},
                "marker": {"size": 4},
            }
        )
    title = "||dL/dW|| of the last step" if key == "grad_norms" else "||F(x)|| / ||x||"
    return _figure(
        data,
        _layout(
            xaxis={"title": {"text": "layer, input to output" if key == "grad_norms" else "block"}, "type": "category"},
            yaxis={"title": {"text": title}, "type": "log"},
            legend={"orientation": "h", "y": -0.3},
            height=300,
        ),
    )
