"""Shared-server mode (resexplorer/services/server_policy.py): set by the
operator's environment alone; the sidebar takes no server path, deleting
and importing runs is off, jobs keep within the operator's caps, and no
visitor sees a traceback."""

import pytest
import streamlit as st
from helpers import app, as_drawn, tick_runs

from resexplorer.errors import ConfigError
from resexplorer.services.server_policy import ServerPolicy, server_policy


def test_the_policy_is_the_environment_s_and_a_bad_cap_is_named():
    alone = server_policy({})
    assert not alone.shared and alone.runs_dir == "runs" and alone.data_folder == ""
    assert alone.job_problems(models=9, epochs=900, train_images=10**6) == []  # no caps on one's own machine
    shared = server_policy(
        {"RESEXPLORER_SHARED": "yes", "RESEXPLORER_RUNS": "/srv/runs", "RESEXPLORER_MAX_EPOCHS": "5"}
    )
    assert shared == ServerPolicy(True, "/srv/runs", "", max_models=2, max_epochs=5, max_train_images=10_000)
    assert shared.job_problems(models=3, epochs=5, train_images=20_000) == [
        "3 models (at most 2)",
        "20,000 training images (at most 10,000)",
    ]
    assert shared.caps_text() == "at most 2 models, 5 epochs and 10,000 training images"
    for bad in ("0", "-1", "lots", "2.5"):
        with pytest.raises(ConfigError, match=f"RESEXPLORER_MAX_MODELS='{bad}'"):
            server_policy({"RESEXPLORER_MAX_MODELS": bad})


@pytest.fixture()
def shared(monkeypatch, tmp_path):
    """A shared server; the client options it sets are process-wide, so
    they are put back for the tests after."""
    monkeypatch.setenv("RESEXPLORER_SHARED", "1")
    before = {name: st.get_option(name) for name in ("client.showErrorDetails", "client.toolbarMode")}
    yield
    for name, value in before.items():
        st.set_option(name, value)


def test_a_shared_sidebar_shows_the_operator_s_folders_and_takes_no_path(two_runs, shared, monkeypatch):
    at = app()
    assert not at.exception and not at.error
    assert [t.key for t in at.sidebar.text_input] == []  # neither a runs folder nor an image folder to type
    said = as_drawn(" ".join(c.value for c in at.sidebar.caption))
    assert "Runs folder (set by the server's operator)" in said and "Image folder (set by" in said
    assert st.get_option("client.showErrorDetails") == "none"  # no traceback reaches a visitor
    assert st.get_option("client.toolbarMode") == "viewer"
    monkeypatch.delenv("RESEXPLORER_DATA")  # no folder from the operator: none offered
    at = app()
    assert at.sidebar.radio(key="source_choice").options == [
        "CIFAR-10 (downloaded on first use)",
        "Synthetic (generated, no download)",
    ]


def test_the_same_sidebar_takes_paths_on_one_s_own_machine(two_runs):
    at = app()
    assert "runs_dir_input" in [t.key for t in at.sidebar.text_input]


def test_a_shared_runs_page_neither_deletes_nor_imports(two_runs, shared):
    at = app("pages/runs.py")
    assert not at.exception and not at.error
    tick_runs(at, [run.run_id for run in two_runs.values()])
    keys = [b.key for b in at.button]
    assert "delete" not in keys and "delete_damaged" not in keys and "resume" in keys
    assert not at.get("file_uploader")  # no zip of runs to import
    assert any("deleting and importing runs is for its operator" in c.value for c in at.caption)


def test_a_job_over_the_caps_is_said_before_start_and_cannot_start(two_runs, shared, monkeypatch):
    monkeypatch.setenv("RESEXPLORER_MAX_EPOCHS", "1")
    at = app("pages/train.py")
    assert not at.exception
    assert any("a job may train at most 2 models, 1 epochs" in c.value for c in at.caption)
    assert any("epochs (at most 1)" in w.value for w in at.warning)
    assert at.button(key="start").disabled
    at.number_input(key=f"epochs:{at.selectbox(key='preset').value}").set_value(1).run()
    assert not at.warning and not at.button(key="start").disabled


def test_a_cap_set_wrong_stops_every_page_with_its_name(shared, monkeypatch):
    monkeypatch.setenv("RESEXPLORER_MAX_TRAIN_IMAGES", "many")
    at = app()
    assert not at.exception
    assert "RESEXPLORER_MAX_TRAIN_IMAGES='many'" in as_drawn(at.error[0].value)
