"""The Playground's charts, from a PointRace snapshot (plain numbers):
each model's decision surface with the points on it, the loss and error
curves of every model, the gradient norm per layer and ||F(x)|| / ||x|| per
block. Plotly, like every chart of the app; no streamlit here.

Each figure is plain plotly JSON (a dict), not a go.Figure: the Playground
redraws them several times a second in the process that trains, and
validating the surfaces' grids through go.Figure took 50 ms of it a redraw
(bench/playground_speed.py). ui/live_charts.py and st.plotly_chart both
take the dicts as they are."""

from __future__ import annotations

COLOURS = {"plain": "#d62828", "residual": "#1f6f9f"}  # the app's warm plain, cool residual
CLASS_COLOURS = ("#f59f00", "#1c7ed6")  # orange, blue: TF Playground's two classes
NAMES = {"plain": "plain", "residual": "with shortcuts"}
UIREVISION = "playground"  # zoom and hidden entries survive every redraw of a run


def _figure(data: list, layout: dict) -> dict:
    return {"data": data, "layout": layout}


def _layout(**extra) -> dict:
    return {"margin": {"l": 50, "r": 10, "t": 40, "b": 40}, "uirevision": UIREVISION, **extra}


def _panels(count: int, gap: float = 0.08) -> list[list[float]]:
    """Side-by-side x domains for `count` panels of one figure: one chart
    drawn once a refresh costs the browser less than one per panel."""
    width = (1 - gap * (count - 1)) / count
    return [[i * (width + gap), i * (width + gap) + width] for i in range(count)]


def _axis(index: int, name: str) -> str:
    """'x', 'x2', ... as traces name their axes; 'xaxis', 'xaxis2' in the layout."""
    return name if index == 0 else f"{name}{index + 1}"


def _title(snapshot: dict, model: str) -> str:
    error = snapshot["history"][model]["train_error"][-1]
    title = f"{NAMES[model]}: training error {100 * error:.0f}%" if error is not None else NAMES[model]
    diverged = snapshot["models"][model]["diverged_at"]
    return title + (f" (diverged at step {diverged})" if diverged else "")


def surfaces(snapshot: dict, points: tuple, test_points: tuple | None = None) -> dict:
    """Each model's probability of the blue class over the plane, side by
    side, with the training points (and, if given, the test points as
    rings) on top. points: (xs, ys, labels) as lists."""
    axis, models = snapshot["axis"], list(snapshot["models"])
    span = [axis[0], axis[-1]]
    data, layout = [], _layout(height=360, annotations=[], showlegend=False)
    for i, (model, domain) in enumerate(zip(models, _panels(len(models)))):
        x, y = _axis(i, "x"), _axis(i, "y")
        data.append(
            {
                "type": "heatmap",
                "x": axis,
                "y": axis,
                "z": snapshot["models"][model]["surface"],
                "zmin": 0,
                "zmax": 1,
                "colorscale": [[0, "#ffe8cc"], [0.5, "#f8f9fa"], [1, "#d0ebff"]],
                "showscale": False,
                "xaxis": x,
                "yaxis": y,
                "hovertemplate": "x %{x:.2f}, y %{y:.2f}<br>P(blue) %{z:.2f}<extra></extra>",
            }
        )
        for which, (xs, ys, labels) in [("train", points)] + ([("test", test_points)] if test_points else []):
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": xs,
                    "y": ys,
                    "xaxis": x,
                    "yaxis": y,
                    "marker": {
                        # the class as a number on a two-colour scale: a list of colour
                        # names is validated name by name (a quarter of a second a chart)
                        "color": labels,
                        "colorscale": [[0, CLASS_COLOURS[0]], [1, CLASS_COLOURS[1]]],
                        "cmin": 0,
                        "cmax": 1,
                        "size": 5 if which == "train" else 6,
                        "symbol": "circle" if which == "train" else "circle-open",
                    },
                    "hoverinfo": "skip",
                    "meta": {"model": model, "points": which},
                }
            )
        layout["xaxis" if i == 0 else f"xaxis{i + 1}"] = {
            "domain": domain,
            "range": span,
            "showgrid": False,
            "zeroline": False,
        }
        layout["yaxis" if i == 0 else f"yaxis{i + 1}"] = {
            "range": span,
            "showgrid": False,
            "zeroline": False,
            "scaleanchor": x,
            **({"anchor": x} if i else {}),
        }
        if i:
            layout[f"xaxis{i + 1}"]["anchor"] = y
        layout["annotations"].append(
            {
                "text": f"<b>{_title(snapshot, model)}</b>",
                "x": sum(domain) / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    return _figure(data, layout)


def curves(snapshot: dict) -> dict:
    """Training (thin, dashed) and test (bold) error of every model against
    steps, as the Train page draws Fig. 6, with each one's loss drawn thin
    over it on a log axis of its own at the right. A legend entry hides a
    model's error and loss together."""
    history, data = snapshot["history"], []
    for measure, y_axis, scale in (("error", "y", 100), ("loss", "y2", 1)):
        for model in snapshot["models"]:
            for split, dash, width in (("train", "dash", 1.5), ("test", "solid", 3)):
                values = history[model][f"{split}_{measure}"]
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": history["step"],
                        "y": [None if v is None else scale * v for v in values],
                        "yaxis": y_axis,
                        "name": f"{NAMES[model]}, {split}",
                        "legendgroup": f"{model} {split}",
                        "showlegend": measure == "error",
                        "line": {"color": COLOURS[model], "dash": dash, "width": width if measure == "error" else 1},
                        "opacity": 1 if measure == "error" else 0.5,
                        "meta": {"model": model, "split": split, "measure": measure},
                    }
                )
    return _figure(
        data,
        _layout(
            xaxis={"title": {"text": "step"}},
            yaxis={"title": {"text": "error (%)"}, "range": [0, 60]},
            yaxis2={
                "title": {"text": "loss (thin)"},
                # log: a deep plain net's loss on its early BN statistics reaches 1e15,
                # which on a linear axis flattens every other loss to the floor
                "type": "log",
                "overlaying": "y",
                "side": "right",
                "showgrid": False,
                # its own ticks (1, 10, 100 or 2, 3, 5), not ticks placed at the error
                # axis's grid lines, which read 21.36706, 3.794571
                "tickmode": "auto",
            },
            legend={"orientation": "h", "y": -0.25},
            height=340,
        ),
    )


def inside(snapshot: dict) -> dict:
    """Two panels, one line per model, plain beside residual: the gradient
    norm of each linear layer in the last step (input to output), and
    ||F(x)|| / ||x|| of each block."""
    data, layout = [], _layout(height=340, legend={"orientation": "h", "y": -0.45}, annotations=[])
    panels = (
        ("grad_norms", "||dL/dW|| of the last step", "layer, input to output"),
        ("branch_ratios", "||F(x)|| / ||x||", "block"),
    )
    for i, ((key, y_title, x_title), domain) in enumerate(zip(panels, _panels(len(panels), gap=0.12))):
        for model, state in snapshot["models"].items():
            values = state[key]
            x = snapshot["layer_names"] if key == "grad_norms" else [f"b{j}" for j in range(1, len(values) + 1)]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": values,
                    "name": NAMES[model],
                    "legendgroup": model,
                    "showlegend": i == 0,
                    "line": {"color": COLOURS[model]},
                    "xaxis": _axis(i, "x"),
                    "yaxis": _axis(i, "y"),
                    "meta": {"model": model, "measure": key},
                }
            )
        layout["xaxis" if i == 0 else f"xaxis{i + 1}"] = {
            "domain": domain,
            "type": "category",
            "title": {"text": x_title},
            **({"anchor": "y2"} if i else {}),
        }
        layout["yaxis" if i == 0 else f"yaxis{i + 1}"] = {
            "type": "log",
            "title": {"text": y_title},
            **({"anchor": "x2"} if i else {}),
        }
    return _figure(data, layout)
