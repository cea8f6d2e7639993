"""Runs: a table of runs; tick its rows to plot those runs together, delete, resume or export them."""

import io

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.runs.states import RunState
from resexplorer.runs.store import RunStore
from resexplorer.runs.transfer import UPLOAD_MB, archive_bytes, import_runs
from resexplorer.services.catalog import catalog
from resexplorer.services.curves import curve_from_run, curves_csv
from resexplorer.services.figures import chart_config, error_curves
from resexplorer.services.reference import recipe_note
from resexplorer.services.run_table import (
    COLUMN_NAMES,
    RUN_COLUMNS,
    curve_label,
    positions_of,
    resumable,
    run_rows,
    ticked_runs,
)
from resexplorer.services.server_policy import ServerPolicy
from resexplorer.training.jobs import JobManager
from ui.choices import Linked, read_link, session_defaults, write_link
from ui.sidebar import page_frame
from ui.text import literal

DEFAULTS = {"include_reference": True}
DELETE_PROBLEMS = "runs_delete_problems"  # session state: what a delete refused, said after its rerun
CONFIRM_DELETE = "confirm_delete"  # the box that confirms deleting the ticked runs of mine
CONFIRM_DELETE_DAMAGED = "confirm_delete_damaged"  # the box that confirms deleting the damaged runs
SHARED_NOTE = "This is a shared server: deleting and importing runs is for its operator, not from here."
IMPORT_REPORT = "runs_import_report"  # session state: what an import did, said after its rerun
TABLE = "runs_table"  # the table's key; session state: its selection, the positions of the ticked rows
TABLE_ROWS = "runs_table_rows"  # session state: the run ids of the table's rows as last drawn
TICKED = "runs_ticked"  # session state: the ticked runs' ids, as the URL carries them (`runs`)
FROM_LINK = "runs_from_link"  # session state, for a moment: the runs a link asks to tick
ERROR_FORMAT = "%.2f"  # the two decimals run_table keeps
COLUMN_CONFIG = {
    c.name: st.column_config.NumberColumn(c.label, format=ERROR_FORMAT, help=c.help)
    if c.percent
    else st.column_config.TextColumn(c.label, help=c.help)
    for c in RUN_COLUMNS
}


def runs_on_offer(runs_dir: str, shared: bool) -> tuple[dict, set[str]]:
    """{run id: run} of the user's runs and, if asked, the shipped ones, and
    the shipped ones' ids (services/catalog.py, the listing every page uses).
    Stops the page when there are none."""
    include = st.toggle("Include the shipped reference runs", key="include_reference", persist_state="page")
    offer = catalog(runs_dir, include_shipped=include, strict=True)
    damaged_section(offer.damaged, runs_dir, shared)
    not_runs_section(offer.not_runs)
    if not offer.runs:
        st.info(f"No runs in `{runs_dir}` yet. Train some on the Train & compare page.")
        st.stop()
    yours_first = sorted(
        offer.runs, key=lambda run_id: run_id in offer.shipped
    )  # the table lists the user's runs first
    return {run_id: offer.runs[run_id] for run_id in yours_first}, offer.shipped


def after_delete() -> None:
    """What a delete refused, kept across the rerun that follows it (by then
    the deleted runs are gone, so it comes first); and its confirmations
    spent: the runs still ticked (shipped ones, refused ones) keep the delete
    box on the page, and a box left ticked would let the next ticked run go
    with one click."""
    if DELETE_PROBLEMS not in st.session_state:
        return
    for refused in st.session_state.pop(DELETE_PROBLEMS):
        st.error(literal(refused))
    # Set before the boxes are drawn this run, so the browser's boxes are cleared too.
    st.session_state[CONFIRM_DELETE] = st.session_state[CONFIRM_DELETE_DAMAGED] = False


def import_section(runs_dir: str, shared: bool) -> None:
    """Runs exported elsewhere (the Download below, or `export`), brought in
    (not on a shared server: its runs are its operator's to bring in)."""
    if shared:
        st.caption(SHARED_NOTE)
        return
    with st.expander("Import runs from a zip"):
        upload = st.file_uploader(
            "A zip of runs exported by ResNet Explorer",
            type=["zip"],
            key="import_zip",
            max_upload_size=UPLOAD_MB,
            help="Every file is checked before it lands; a run whose id is here already is kept, not overwritten.",
        )
        if st.button("Import", disabled=upload is None, key="import_runs"):
            try:
                report = import_runs(io.BytesIO(upload.getvalue()), RunStore(runs_dir), label=upload.name)
            except ResExplorerError as err:
                st.error(literal(str(err)))
                return
            st.session_state[IMPORT_REPORT] = report
            st.rerun()
        report = st.session_state.pop(IMPORT_REPORT, None)
        if report is not None:
            if report.imported:
                st.success(literal(f"Imported {len(report.imported)} run(s): {', '.join(report.imported)}"))
            for reason in report.skipped:
                st.warning(literal(reason))


def damaged_section(damaged: list, runs_dir: str, shared: bool) -> None:
    """The runs that cannot be read, each named with what is wrong (none
    vanishes without a word), and a way to delete them (not on a shared server)."""
    if not damaged:
        return
    for run in damaged:
        st.warning(literal(run.problem))
    if shared:
        return
    confirm = st.checkbox(f"Yes, delete the {len(damaged)} damaged run(s) for good", key=CONFIRM_DELETE_DAMAGED)
    if st.button("Delete damaged runs", disabled=not confirm, key="delete_damaged"):
        _delete_runs([run.run_id for run in damaged], runs_dir)


def not_runs_section(not_runs: list) -> None:
    """Folders with run files that do not prove they are runs: named, so
    nothing vanishes without a word, and never offered for deletion (a
    runs folder may be pointed at other programs' folders)."""
    if not_runs:
        st.caption(
            literal(
                f"Left as {'it is' if len(not_runs) == 1 else 'they are'}, not a run: "
                f"{', '.join(folder.run_id for folder in not_runs)} (files like a run's, "
                "but neither the mark of a ResNet Explorer run nor a config that reads as one)."
            )
        )


def _delete_runs(run_ids: list[str], runs_dir: str) -> None:
    store, problems = RunStore(runs_dir), []
    for run_id in run_ids:  # one refusal does not stop the others
        try:
            store.delete(run_id)
        except (ResExplorerError, OSError) as err:
            problems.append(str(err))
    st.session_state[DELETE_PROBLEMS] = problems
    # The deleted runs' ticks go with their rows: carry_ticks, on the rerun.
    st.rerun()


def carry_ticks(row_ids: list[str]) -> None:
    """Keeps the ticked runs ticked, and only them, when the table's rows
    change under its selection (a run deleted, imported or started by a job,
    the shipped runs toggled): the selection holds row positions in the table
    as last drawn, which in the new rows would name other runs. Set here,
    before the table is drawn, the browser is told the new ticks too."""
    drawn = st.session_state.get(TABLE_ROWS)
    if drawn is not None and drawn != row_ids and TABLE in st.session_state:
        ticked = ticked_runs(drawn, st.session_state[TABLE]["selection"]["rows"])
        st.session_state[TABLE] = {"selection": {"rows": positions_of(ticked, row_ids)}}
    st.session_state[TABLE_ROWS] = row_ids


def runs_table_section(everything: dict, shipped: set[str]) -> list:
    """The runs, a row each; the runs of the rows the user ticks are returned."""
    rows, problems = run_rows(everything.values(), shipped)
    for problem in problems:
        st.warning(literal(problem))
    row_ids = [row["run"] for row in rows]  # in the order the table is given its rows, which its selection counts in
    carry_ticks(row_ids)
    ticks_from_link(row_ids)
    st.caption(
        "Tick the box at the start of a row to plot that run; tick several to compare them. "
        "Click a column's header to sort by it."
    )
    table = st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_order=COLUMN_NAMES,
        column_config=COLUMN_CONFIG,
        key=TABLE,
        on_select="rerun",
        selection_mode="multi-row",
    )
    ticked = ticked_runs(row_ids, table.selection.rows)
    st.session_state[TICKED] = ticked
    write_link([Linked(TICKED, "runs", row_ids, many=True)])
    return [everything[run_id] for run_id in ticked]


def ticks_from_link(row_ids: list[str]) -> None:
    """A link's runs (`?runs=id,id`) tick their rows on the page's first draw
    in a session; a run that is not in the table is said, and the others
    are ticked all the same."""
    read_link("runs", [Linked(FROM_LINK, "runs", row_ids, many=True)])
    linked = st.session_state.pop(FROM_LINK, None)
    if linked:
        st.session_state[TABLE] = {"selection": {"rows": positions_of(linked, row_ids)}}


def plot_section(runs: list, shipped: set[str]) -> None:
    if not runs:
        st.info(
            "No run ticked yet: tick rows in the table to plot them together, and to resume, delete or download them."
        )
        return
    x_axis = st.radio("x axis", ["epoch", "iteration"], horizontal=True, key="runs_x_axis")
    fig = error_curves([curve_from_run(r, label=curve_label(r)) for r in runs], x_axis=x_axis)
    st.plotly_chart(fig, width="stretch", key="runs_chart", config=chart_config("runs_chart"))
    references = [r for r in runs if r.run_id in shipped]
    if references:
        st.caption(recipe_note(references))
    csv_col, zip_col = st.columns(2)
    csv_col.download_button(
        "Metrics of these runs (CSV)", curves_csv(runs), file_name="runs-metrics.csv", mime="text/csv", key="runs_csv"
    )
    training = [r.run_id for r in runs if r.status().get("status") == RunState.RUNNING]
    zip_col.download_button(
        "These runs, to open elsewhere (zip)",
        lambda: archive_bytes(runs),  # made when clicked, not on every rerun
        file_name="resexplorer-runs.zip",
        mime="application/zip",
        key="runs_zip",
        on_click="ignore",
        disabled=bool(training),
        help=f"{', '.join(training)} still training: download once it stops"
        if training
        else "Checkpoints, metrics and cached analyses; import them on another machine's Runs page or with "
        "`python -m resexplorer import`.",
    )


def _resume(yours: list, runs_dir: str, data_source: str, policy: ServerPolicy) -> None:
    unfinished = resumable(yours)
    problems = policy.job_problems(
        len(unfinished),
        max((r.train_config().epochs for r in unfinished), default=0),
        max((r.train_config().train_subset or r.config()["data"]["n_train"] for r in unfinished), default=0),
    )
    if problems:
        st.caption(
            f"On this shared server a job may train {policy.caps_text()}; these runs ask for {', '.join(problems)}."
        )
    if st.button(
        f"Resume {len(unfinished)} unfinished run(s)",
        disabled=not unfinished or bool(problems),
        key="resume",
        help="Continues from each run's last completed epoch, on the data source in the sidebar.",
    ):
        try:
            job = JobManager(runs_dir).start_resume(unfinished, data_source)
            st.success("Resuming: the job is queued and starts as soon as the machine is free.")
            st.page_link("pages/train.py", label="Follow it on Train & compare", query_params={"job": job.job_id})
        except ResExplorerError as err:
            st.error(literal(str(err)))


def _delete(yours: list, runs_dir: str) -> None:
    confirm = st.checkbox(f"Yes, delete {len(yours)} run(s) of mine for good", key=CONFIRM_DELETE, disabled=not yours)
    if st.button("Delete", disabled=not (yours and confirm), key="delete"):
        _delete_runs([run.run_id for run in yours], runs_dir)


def manage_section(runs: list, shipped: set[str], runs_dir: str, data_source: str, policy: ServerPolicy) -> None:
    """Resume or delete the user's runs among those chosen; the shipped ones
    stay as they are. A shared server deletes nothing for its visitors."""
    if not runs:
        return
    yours = [r for r in runs if r.run_id not in shipped]
    left, right = st.columns(2)
    with left:
        _resume(yours, runs_dir, data_source, policy)
    with right:
        if policy.shared:
            st.caption(SHARED_NOTE)
        else:
            _delete(yours, runs_dir)
    if len(yours) < len(runs):
        st.caption("Shipped reference runs cannot be deleted or resumed here.")


frame = page_frame("Runs")
session_defaults(DEFAULTS)
st.title("Runs")
after_delete()
import_section(frame.runs_dir, frame.policy.shared)
on_offer, shipped_ids = runs_on_offer(frame.runs_dir, frame.policy.shared)
plotted = runs_table_section(on_offer, shipped_ids)
plot_section(plotted, shipped_ids)
manage_section(plotted, shipped_ids, frame.runs_dir, frame.data_source, frame.policy)
