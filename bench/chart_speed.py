"""What the server spends on a chart per redraw, and whether orjson helps.

The live chart redraws every 2 s while a job trains: figures.error_curves
builds the figure, then st.plotly_chart copies it (fig.to_dict) and
serialises it (plotly.io.to_json, whose "auto" engine is orjson when it is
installed, else the standard json module). Timed here on a Fig. 6 sized
chart (4 runs of 30 epochs at the Train page's resolution, 4 faded
reference runs), each figure as a ratio to the json engine's serialisation,
measured in the same process; and the whole st.plotly_chart call in a bare
script run, orjson against json.

Run:  python bench/chart_speed.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import plotly.io as pio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.services.curves import Curve  # noqa: E402
from resexplorer.services.figures import Series, error_curves, heatmap, lines_chart  # noqa: E402


def _curve(model: str, arch: str, depth: int, epochs: int = 30, windows: int = 20) -> Curve:
    """A run's curves at the recorder's resolution: a training point every 1/20 epoch."""
    train_x = [i / windows for i in range(1, epochs * windows + 1)]
    train_y = [0.9 * 0.93**x + 0.05 for x in train_x]
    test_x = list(range(1, epochs + 1))
    return Curve(model, model, arch, depth, 391.0, train_x, train_y, test_x, [0.9 * 0.93**x + 0.12 for x in test_x])


def _median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def _streamlit_call_ms(fig, repeats: int, engine: str) -> float:
    """st.plotly_chart itself, in a bare script run (AppTest), per call."""
    from streamlit.testing.v1 import AppTest

    def script(fig_json: str, repeats: int, engine: str) -> None:
        import time

        import plotly.io as pio
        import streamlit as st

        pio.json.config.default_engine = engine
        fig = pio.from_json(fig_json)
        start = time.perf_counter()
        for i in range(repeats):
            st.plotly_chart(fig, key=f"chart-{i}")
        st.session_state["ms"] = 1000 * (time.perf_counter() - start) / repeats

    at = AppTest.from_function(script, args=(fig.to_json(), repeats, engine), default_timeout=300).run()
    return at.session_state["ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    runs = [
        _curve("plain-20", "plain", 20),
        _curve("plain-56", "plain", 56),
        _curve("resnet-20", "resnet", 20),
        _curve("resnet-56", "resnet", 56),
    ]
    figures = {
        "Fig. 6 live chart (4 runs + 4 faded)": lambda: error_curves(runs, faded=runs, paper_markers=True, log_y=True),
        "Fig. 7 lines (2 models x 55 layers)": lambda: lines_chart(
            [Series(c.label, c.model, list(range(55)), [1.0] * 55) for c in runs[:2]], "layer", "std"
        ),
        "heat map (6 x 5, every number written)": lambda: heatmap(
            [[90.0] * 5] * 6, list("abcde"), list("uvwxyz"), "accuracy %"
        ),
    }
    print(f"per redraw, milliseconds (median of {args.repeats}):")
    for name, build in figures.items():
        fig = build()
        pio.json.config.default_engine = "json"
        baseline = _median_ms(lambda fig=fig: pio.to_json(fig, validate=False), args.repeats)
        build_ms = _median_ms(build, args.repeats)
        copy_ms = _median_ms(fig.to_dict, args.repeats)
        pio.json.config.default_engine = "orjson"
        fast = _median_ms(lambda fig=fig: pio.to_json(fig, validate=False), args.repeats)
        print(f"  {name}")
        print(
            f"    build {build_ms:6.2f}   copy {copy_ms:5.2f}   "
            f"to_json: json {baseline:5.2f}, orjson {fast:5.2f} (x{fast / baseline:.2f})"
        )
    fig = figures["Fig. 6 live chart (4 runs + 4 faded)"]()
    plain, fast = (_streamlit_call_ms(fig, args.repeats, engine) for engine in ("json", "orjson"))
    print(
        f"st.plotly_chart of the Fig. 6 chart: json {plain:.2f} ms, orjson {fast:.2f} ms per call (x{fast / plain:.2f})"
    )


if __name__ == "__main__":
    main()
