"""Run states: which runs resume is decided in one place, so the Runs page
(which offers Resume) and the command line (which resumes) never disagree."""

import importlib

import pytest

from resexplorer.errors import ResExplorerError
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.states import RESUMABLE, RunState
from resexplorer.runs.store import RunStore
from resexplorer.services import run_table

cli = importlib.import_module("resexplorer.cli.main")  # the package exports its main() under the same name


class _Accepted(Exception):
    """Raised where the command goes on to load data: the run was accepted."""


@pytest.mark.parametrize("status", [*[s.value for s in RunState], "a-state-of-a-later-version"])
def test_the_runs_page_and_the_command_line_resume_the_same_runs(tmp_path, monkeypatch, status):
    run = RunStore(tmp_path).create(ModelConfig(), TrainConfig(), {"source": "synthetic"})
    run.set_status(status)

    def accepted(*args, **kwargs):
        raise _Accepted

    monkeypatch.setattr(cli, "writable_folder", accepted)
    offered = bool(run_table.resumable([run]))
    try:
        cli._resume([run.path], "synthetic", None, None, None, None)
        resumed = False
    except _Accepted:
        resumed = True
    except ResExplorerError as err:
        assert "resume" in str(err)
        resumed = False
    assert offered == resumed == (status in RESUMABLE)


def test_a_state_reads_as_its_word_in_messages_and_files():
    assert f"{RunState.CANCELLED}" == str(RunState.CANCELLED) == "cancelled" == RunState.CANCELLED
