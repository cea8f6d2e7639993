"""The Runs table (services/run_table.py): rows, columns, times, ticks that follow their
runs, which runs resume. Cases whose right answer is known."""

from datetime import timedelta, timezone

from resexplorer.runs.store import Run
from resexplorer.services import run_table


def test_a_row_per_run_and_a_message_per_unreadable_one(two_runs, tmp_path):
    plain, residual = two_runs["plain-8"], two_runs["resnet-8"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    rows, problems = run_table.run_rows([plain, residual, Run(tmp_path / "broken")], shipped={plain.run_id})
    assert [r["run"] for r in rows] == [plain.run_id, residual.run_id]
    assert [r["where"] for r in rows] == ["shipped", "yours"] and rows[0]["epochs"] == "2/2"
    summary = residual.summary()
    assert rows[1]["final test error %"] == round(100 * summary["final_test_error"], 2)
    assert rows[1]["best test error %"] == round(100 * summary["best_test_error"], 2)
    assert len(problems) == 1 and problems[0].startswith("broken: ")
    assert run_table.curve_label(residual) == f"resnet-8 ({residual.run_id[-6:]})"


def test_the_runs_table_leads_with_model_time_and_errors_and_ends_with_the_id(two_runs):
    residual = two_runs["resnet-8"]
    (row,), _ = run_table.run_rows([residual], shipped=())
    assert tuple(row) == run_table.COLUMN_NAMES
    assert run_table.COLUMN_NAMES[:5] == (
        "model",
        "when",
        "final test error %",
        "final train error %",
        "best test error %",
    )
    assert run_table.COLUMN_NAMES[-1] == "run" and row["run"] == residual.run_id
    assert row["model"] == "resnet-8" and row["when"] == run_table.when(residual.config()["created"])
    errors = [column.name for column in run_table.RUN_COLUMNS if column.percent]
    assert errors == [name for name in run_table.COLUMN_NAMES if name.endswith("error %")]
    assert all(isinstance(row[name], float) for name in errors)


def test_when_a_run_was_made_reads_as_date_and_minute_in_the_zone_asked():
    created = "2026-11-29T13:05:42+00:00"  # as a run's config keeps it
    assert run_table.when(created, timezone.utc) == "2026-11-29 13:05"
    assert run_table.when(created, timezone(timedelta(hours=-14))) == "2026-11-28 23:05"
    assert run_table.when("2026-11-29T13:05:42") == "2026-11-29 13:05"  # no zone: taken as it is
    assert run_table.when(None) == "" and run_table.when("last week") == "last week"
    # the text sorts as the times do, so the table sorts by it
    times = ["2026-11-29T09:00:00+00:00", "2026-01-02T23:59:00+00:00", "2025-12-31T10:00:00+00:00"]
    assert sorted(run_table.when(t, timezone.utc) for t in times) == [
        run_table.when(t, timezone.utc) for t in sorted(times)
    ]


def test_ticked_rows_name_runs_by_their_place_in_the_rows_given_whatever_the_sort():
    row_ids = ["run-a", "run-b", "run-c", "run-d"]  # the rows in the order the table was given them
    # a user who sorted the table and ticked its top rows still sends these rows' places in row_ids
    assert run_table.ticked_runs(row_ids, [3, 1]) == ["run-b", "run-d"]
    assert run_table.ticked_runs(row_ids, []) == []
    assert run_table.ticked_runs(row_ids, [1, 1, 7, -1]) == ["run-b"]  # 7: a row gone since; -1 names none


def test_ticks_carried_to_changed_rows_follow_the_runs_not_the_places():
    drawn = ["mine-1", "mine-2", "shipped-1", "shipped-2"]
    ticked = run_table.ticked_runs(drawn, [1, 2])
    now = ["mine-0", "mine-1", "shipped-1", "shipped-2"]  # mine-2 deleted, mine-0 made since the table was drawn
    assert run_table.positions_of(ticked, now) == [2]
    assert run_table.ticked_runs(now, run_table.positions_of(ticked, now)) == ["shipped-1"]
    assert run_table.positions_of(["mine-2"], now) == []


def test_which_runs_resume_and_how_far_a_group_has_trained(two_runs):
    plain, residual = two_runs["plain-8"], two_runs["resnet-8"]
    plain.set_status("interrupted")
    assert run_table.resumable([plain, residual]) == [plain]
    assert run_table.group_progress([plain, residual]) == (2, 2)
    assert run_table.group_progress([]) == (0, 0)
    plain.truncate_metrics(after_step=0)  # a run that has completed no epoch yet
    assert run_table.epochs_reached(plain) == 0 and run_table.group_progress([plain, residual]) == (0, 2)
