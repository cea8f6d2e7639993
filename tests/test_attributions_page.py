"""AppTest of the Attributions page: the grid for test, sample and uploaded
images, and every broken upload of the corpus as a message."""

import pytest
from helpers import app, drawn, figures, images, points, x_title
from image_corpus import corpus

from resexplorer.science.attribution import DEFAULT_METHODS


def _grid(at) -> list:
    """The attribution maps: images captioned "model · method"."""
    return [img for img in images(at) if " · " in img.caption]


def test_test_image_grid_has_a_cell_per_model_and_method(two_runs):
    at = app("pages/attributions.py")
    assert not at.exception and not at.error
    captions = [img.caption for img in _grid(at)]
    assert len(captions) == 2 * len(DEFAULT_METHODS)
    assert {"plain-8 · Integrated Gradients", "resnet-8 · Grad-CAM"} <= set(captions)
    assert at.dataframe[0].value["model"].tolist() == ["plain-8", "resnet-8"]  # top-3 table
    at.multiselect(key="attr_methods").set_value(["saliency", "occlusion", "deeplift"]).run()
    assert not at.exception and len(_grid(at)) == 6
    at.checkbox(key="attr_one_wrong").check().run()
    assert not at.exception


def test_a_sample_image_is_explained_and_sanity_checked(two_runs):
    at = app("pages/attributions.py")
    at.radio(key="attr_source").set_value("Sample images").run()
    at.selectbox(key="attr_sample").set_value("cat-chelsea.png").run()
    assert not at.exception and not at.error
    assert len(_grid(at)) == 2 * len(DEFAULT_METHODS)
    at.button(key="attr_sanity").click().run()
    assert not at.exception
    sanity = points([fig for fig in figures(at) if x_title(fig) == "randomised so far"])
    assert "resnet-8 · Grad-CAM" in sanity and len(sanity) == 2 * len(DEFAULT_METHODS)


@pytest.mark.slow
def test_every_corpus_file_through_the_upload_gives_a_grid_or_a_message(two_runs):
    at = app("pages/attributions.py")
    at.radio(key="attr_source").set_value("Upload").run()
    for name, (data, expected) in corpus().items():
        at.file_uploader(key="attr_upload").upload(name, data, "application/octet-stream").run()
        assert not at.exception, name
        if expected == "ok":
            assert not at.error and len(_grid(at)) == 2 * len(DEFAULT_METHODS), name
        else:
            assert any(name in drawn(e) for e in at.error), name


def test_the_colour_scale_can_be_shared_or_per_map(two_runs):
    at = app("pages/attributions.py")
    shared = [img.url for img in _grid(at)]  # media urls are hashes of the pictures
    at.radio(key="attr_scale").set_value("one per map (see each map's shape)").run()
    assert not at.exception and [img.url for img in _grid(at)] != shared
