// Reports what the user did to a plotly chart (zoom or pan, hidden legend
// entries) to Python, so the next redraw of the chart can keep it.
// Streamlit remounts a chart whenever its figure changes, which drops
// plotly's own uirevision state; see ui/chart_view.py.
export default function (component) {
  const { data, setStateValue } = component;
  const selector = `.st-key-${CSS.escape(data.chart)} .js-plotly-plot`;
  let last = null;
  const fixedRange = (axis) => (axis && axis.autorange === false && axis.range ? axis.range.slice() : null);
  // What the user last did to each axis, read from the relayout event
  // itself, not from the chart's state: a legend click on an auto-ranged
  // chart is not a request for all the data.
  const axes = { x: null, y: null };
  const userAxis = (gd, event, axis) => {
    const name = `${axis}axis`;
    if (event[`${name}.autorange`] === true) {
      // A double-click: all the data on x, over a range the figure fits to
      // the job (the Train page); y goes back to the figure's own range,
      // which already holds all the data (a log axis fitted, not in decades).
      return axis === "x" ? "auto" : null;
    }
    if (`${name}.range[0]` in event || `${name}.range` in event) return fixedRange(gd.layout[name]);
    return undefined; // this event left the axis alone
  };
  const report = (gd) => {
    const view = { ...axes, hidden: gd.data.filter((t) => t.visible === "legendonly").map((t) => t.name) };
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
    if (axes.x === null) axes.x = fixedRange(gd.layout.xaxis); // a remount drawn with a kept zoom
    if (axes.y === null) axes.y = fixedRange(gd.layout.yaxis);
    gd.on("plotly_relayout", (event) => {
      for (const axis of ["x", "y"]) {
        const said = userAxis(gd, event || {}, axis);
        if (said !== undefined) axes[axis] = said;
      }
      report(gd);
    });
    gd.on("plotly_restyle", () => report(gd));
  };
  const observer = new MutationObserver(attach);
  observer.observe(document.body, { childList: true, subtree: true });
  attach();
  return () => observer.disconnect();
}
