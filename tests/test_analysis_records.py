"""A cached analysis is read as its kind's readers need it: valid JSON of
the wrong shape (a string, a list, an object without the fields its kind
needs) counts as missing and is recomputed, never drawn, and an imported
archive's misshapen copy is left out of the import."""

import io
import json
import zipfile

import pytest
from helpers import app, figures, points

from resexplorer.runs.checks import ANALYSIS_FIELDS, analysis_kind, analysis_problem
from resexplorer.runs.store import RunStore
from resexplorer.runs.transfer import MANIFEST, export_runs, import_runs
from resexplorer.services import analysis, reference


def test_every_kind_of_analysis_has_its_shape():
    assert set(ANALYSIS_FIELDS) == set(analysis.KINDS)


def test_every_shipped_analysis_has_the_shape_of_its_kind():
    files = sorted(reference.REFERENCE_RUNS_DIR.glob("*/analysis/*/*.json"))
    assert len(files) > 50
    for path in files:
        assert analysis_problem(analysis_kind(path.name), json.loads(path.read_text())) is None, path


def _inside_file(run, epoch=2):
    return next((run.path / "analysis" / f"epoch-{epoch:04d}").glob("inside-*.json"))


MISSHAPEN = {
    "a string": lambda record: "layer responses",
    "a list": lambda record: [record],
    "no response_std": lambda record: {k: v for k, v in record.items() if k != "response_std"},
    "response_std of strings": lambda record: {**record, "response_std": ["x"] * len(record["response_std"])},
    "lengths that disagree": lambda record: {**record, "response_std": record["response_std"][:1]},
    "another kind's record": lambda record: {**record, "kind": "gradients"},
}


@pytest.mark.parametrize("damage", list(MISSHAPEN))
def test_a_misshapen_cached_result_is_recomputed_on_the_inside_page(two_runs, damage):
    at = app("pages/inside.py")  # computes and caches the layer responses
    run = two_runs["resnet-8"]
    path = _inside_file(run)
    good = json.loads(path.read_text())
    path.write_text(json.dumps(MISSHAPEN[damage](good)))
    assert analysis.cached(run, 2, "inside") is None
    at = app("pages/inside.py")
    assert not at.exception, at.exception
    assert "resnet-8 @ end (epoch 2)" in points(figures(at))  # Fig. 7 drawn again, from a fresh result
    assert analysis.cached(run, 2, "inside")["response_std"] == pytest.approx(good["response_std"])


def test_an_archive_with_a_misshapen_analysis_imports_its_run_without_it(two_runs, tmp_path):
    run = two_runs["resnet-8"]
    app("pages/inside.py")  # caches the analyses
    path = _inside_file(run)
    good = path.read_text()
    path.write_text(json.dumps({"kind": "inside", "layer_names": "not a list"}))
    try:
        archive = io.BytesIO()
        export_runs([run], archive)
    finally:
        path.write_text(good)
    store = RunStore(tmp_path / "there")
    report = import_runs(io.BytesIO(archive.getvalue()), store)
    assert report.imported == [run.run_id]
    assert any("inside" in line and "left out" in line for line in report.skipped), report.skipped
    there = store.get(run.run_id)
    assert not list((there.path / "analysis").glob("*/inside-*.json"))
    assert analysis.cached(there, 2, "gradients") is not None  # the well-formed ones came
    with zipfile.ZipFile(io.BytesIO(archive.getvalue())) as z:
        assert any("inside-" in name for name in json.loads(z.read(MANIFEST))["files"])
