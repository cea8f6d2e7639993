// Reports what the user did to a plotly chart (zoom or pan, hidden legend
// entries) to Python, so the next redraw of the chart can keep it.
// Streamlit remounts a chart whenever its figure changes, which drops
// plotly's own uirevision state; see ui/chart_view.py.
export default function (component) {
  const { data, setStateValue } = component;
  const selector = `.st-key-${CSS.escape(data.chart)} .js-plotly-plot`;
  let last = null;
  // "auto": the user asked for all the data (a double-click), which must
  // win over a range the next figure sets (the Train page fits its job).
  const axisRange = (axis) => {
    if (!axis) return null;
    if (axis.autorange === true) return "auto";
    return axis.autorange === false && axis.range ? axis.range.slice() : null;
  };
  const report = (gd) => {
    const view = {
      x: axisRange(gd.layout.xaxis),
      y: axisRange(gd.layout.yaxis),
      hidden: gd.data.filter((t) => t.visible === "legendonly").map((t) => t.name),
    };
    const text = JSON.stringify(view);
    if (text !== last) {
      last = text;
      setStateValue("view", view);
    }
  };
  const attach = () => {
    const gd = document.querySelector(selector);
    if (!gd || gd.__viewKept || typeof gd.on !== "function") return;
    gd.__viewKept = true;
    gd.on("plotly_relayout", () => report(gd));
    gd.on("plotly_restyle", () => report(gd));
  };
  const observer = new MutationObserver(attach);
  observer.observe(document.body, { childList: true, subtree: true });
  attach();
  return () => observer.disconnect();
}
