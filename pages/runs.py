"""Runs: a table of runs; plot several together, delete, resume."""

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.runs.store import RunStore
from resexplorer.services.curves import curve_from_run, curves_csv
from resexplorer.services.figures import chart_config, error_curves
from resexplorer.services.reference import REFERENCE_RUNS_DIR
from resexplorer.training.jobs import JobBusy, JobManager
from ui.sidebar import page_frame

RESUMABLE = ("interrupted", "cancelled", "failed", "diverged")
frame = page_frame("Runs")
runs_dir, data_source = frame.runs_dir, frame.data_source

st.title("Runs")
include_reference = st.toggle("Include the shipped reference runs", value=True, key="include_reference")

user_runs = RunStore(runs_dir).list()
shipped = RunStore(REFERENCE_RUNS_DIR).list() if include_reference else []
everything = {run.run_id: run for run in [*user_runs, *shipped]}
if not everything:
    st.info(f"No runs in `{runs_dir}` yet. Train some on the Train & compare page.")
    st.stop()


def _pct(value):
    return None if value is None else round(100 * value, 2)


rows = []
for run in everything.values():
    try:
        s = run.summary()
    except ResExplorerError as err:
        st.warning(f"{run.path.name}: {err}")
        continue
    rows.append(
        {
            "run": s["run_id"],
            "model": s["model"],
            "status": s["status"],
            "where": "shipped" if run in shipped else "yours",
            "epochs": f"{s['epochs_done']}/{s['epochs']}",
            "final test error %": _pct(s["final_test_error"]),
            "best test error %": _pct(s["best_test_error"]),
            "final train error %": _pct(s["final_train_error"]),
            "created": s["created"],
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")

labels = {r["run"]: f"{r['model']} · {r['status']} · {r['run']}" for r in rows}
chosen = st.multiselect("Runs to plot together", list(labels), format_func=labels.get, key="chosen_runs")
if chosen:
    runs = [everything[i] for i in chosen]
    x_axis = st.radio("x axis", ["epoch", "iteration"], horizontal=True, key="runs_x_axis")
    fig = error_curves([curve_from_run(r, label=f"{r.config()['model_name']} ({r.run_id[-6:]})") for r in runs], x_axis=x_axis)
    st.plotly_chart(fig, width="stretch", key="runs_chart", config=chart_config("runs_chart"))
    st.download_button("Metrics of these runs (CSV)", curves_csv(runs), file_name="runs-metrics.csv", mime="text/csv", key="runs_csv")

    yours = [r for r in runs if r not in shipped]
    left, right = st.columns(2)
    with left:
        resumable = [r for r in yours if r.status().get("status") in RESUMABLE]
        if st.button(f"Resume {len(resumable)} unfinished run(s)", disabled=not resumable, key="resume", help="Continues from each run's last completed epoch, on the data source in the sidebar."):
            try:
                JobManager(runs_dir).start_resume(resumable, data_source)
                st.success("Resuming: follow it on the Train & compare page.")
            except JobBusy as err:
                st.warning(str(err))
            except ResExplorerError as err:
                st.error(str(err))
    with right:
        confirm = st.checkbox(f"Yes, delete {len(yours)} run(s) of mine for good", key="confirm_delete", disabled=not yours)
        if st.button("Delete", disabled=not (yours and confirm), key="delete"):
            store = RunStore(runs_dir)
            for run in yours:
                try:
                    store.delete(run.run_id)
                except ResExplorerError as err:
                    st.error(str(err))
            st.session_state.pop("chosen_runs", None)
            st.rerun()
    if len(yours) < len(runs):
        st.caption("Shipped reference runs cannot be deleted or resumed here.")
