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

  // No blink at a refresh. Streamlit mounts the new chart hidden while it
  // settles, though plotly has already drawn it: shown at once, it is whole.
  // For the frames before it is drawn at all, a still copy of the last
  // drawn chart stands in its place (static, clicks pass through it).
  const box = `.st-key-${CSS.escape(data.chart)}`;
  const style = document.createElement("style");
  style.textContent = `${box} { position: relative; } ${box} .js-plotly-plot { visibility: visible !important; }
    ${box} > .chart-still { position: absolute; top: 0; left: 0; pointer-events: none; }`;
  document.head.appendChild(style);
  // Drawn: plotly has laid it out and drawn its curves (a curve without
  // points yet may have no group of its own, so one group will do).
  const drawn = (gd) =>
    gd._fullData &&
    gd.querySelector(".main-svg") &&
    (gd.querySelector(".cartesianlayer .trace") || !gd._fullData.some((t) => t.visible === true));
  let lastDrawn = null;
  let still = null;
  const STILL_MS = 1000; // never longer: a still left over the live chart would freeze it
  const standIn = () => {
    const container = document.querySelector(box);
    if (!container) return;
    const live = [...container.querySelectorAll(".js-plotly-plot")].find(drawn);
    if (live) {
      lastDrawn = live;
      if (still) still.remove();
      still = null;
    } else if (!still && lastDrawn) {
      const picture = lastDrawn.querySelector(".svg-container");
      if (!picture) return;
      still = picture.cloneNode(true); // a node already detached by the remount still holds its drawing
      still.classList.add("chart-still");
      container.appendChild(still);
      const shown = still;
      setTimeout(() => {
        shown.remove();
        if (still === shown) [still, lastDrawn] = [null, null]; // and none again before a chart is drawn
      }, STILL_MS);
    }
  };

  const observer = new MutationObserver(() => {
    attach();
    standIn();
  });
  observer.observe(document.body, { childList: true, subtree: true });
  attach();
  standIn();
  return () => {
    observer.disconnect();
    style.remove();
    if (still) still.remove();
  };
}
