"""AppTest of the Attributions page: the grid for test, sample and uploaded
images, and every broken upload of the corpus as a message."""


from helpers import app, chart_specs
from image_corpus import corpus
from resexplorer.attribution import DEFAULT_METHODS


def _grid(at) -> dict:
    return next(spec for spec in chart_specs(at) if spec["data"] and spec["data"][0]["type"] == "image")


def test_test_image_grid_has_a_cell_per_model_and_method(two_runs):
    at = app("views/attributions.py")
    assert not at.exception and not at.error
    grid = _grid(at)
    assert len(grid["data"]) == 2 * len(DEFAULT_METHODS)
    titles = [a["text"] for a in grid["layout"]["annotations"]]
    assert {"plain-8", "resnet-8", "Integrated Gradients", "Grad-CAM"} <= set(titles)
    assert at.dataframe[0].value["model"].tolist() == ["plain-8", "resnet-8"]  # top-3 table
    at.multiselect(key="attr_methods").set_value(["saliency", "occlusion", "deeplift"]).run()
    assert not at.exception and len(_grid(at)["data"]) == 6
    at.checkbox(key="attr_one_wrong").check().run()
    assert not at.exception


def test_a_sample_image_is_explained_and_sanity_checked(two_runs):
    at = app("views/attributions.py")
    at.radio(key="attr_source").set_value("Sample images").run()
    at.selectbox(key="attr_sample").set_value("cat-chelsea.png").run()
    assert not at.exception and not at.error
    assert len(_grid(at)["data"]) == 2 * len(DEFAULT_METHODS)
    at.button(key="attr_sanity").click().run()
    assert not at.exception
    sanity = [t["name"] for spec in chart_specs(at) for t in spec["data"] if t["type"] == "scatter" and "· " in t.get("name", "")]
    assert "resnet-8 · Grad-CAM" in sanity


def test_every_corpus_file_through_the_upload_gives_a_grid_or_a_message(two_runs):
    at = app("views/attributions.py")
    at.radio(key="attr_source").set_value("Upload").run()
    for name, (data, expected) in corpus().items():
        at.file_uploader(key="attr_upload").upload(name, data, "application/octet-stream").run()
        assert not at.exception, name
        if expected == "ok":
            assert not at.error and len(_grid(at)["data"]) == 2 * len(DEFAULT_METHODS), name
        else:
            assert any(name in e.value for e in at.error), name


def test_the_colour_scale_can_be_shared_or_per_map(two_runs):
    at = app("views/attributions.py")
    shared = _grid(at)["data"][0]["z"]
    at.radio(key="attr_scale").set_value("one per map (see each map's shape)").run()
    assert not at.exception and _grid(at)["data"][0]["z"] != shared
