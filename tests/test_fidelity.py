"""What the pages say about the science, held to the paper and to the data
they show (the second fidelity audit): where each finding comes from, a
gradient measure free of tensor size, the lesion reading from the numbers
drawn, the random baseline's own noise, what the ImageNet test does, and
how Fig. 7's spread is taken."""

import math
import re

import numpy as np
import pytest
import torch
from helpers import ROOT, app, drawn
from test_attribution import CHECKER, _checkered_image, _CornerDetector

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import build_model
from resexplorer.science import attribution, lesion
from resexplorer.services import claims, explanations, inside_series, reference
from resexplorer.services import figures as chart_figures
from resexplorer.services.inside_series import Checkpoint

# --- 1. options A and B are section 3.3's; option C and Table 3 are section 4.1's ---------


def _miscited(text: str) -> list[str]:
    """Sentences that credit option C or Table 3 to section 3.3, or quote
    Table 3 without saying it is section 4.1's."""
    text = " ".join(text.split())
    wrong = []
    for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z(*])", text):
        about_c = re.search(r"Table 3|\bC\b|option C|\(C\)", sentence)
        if about_c and not re.search(r"4\.1", sentence) and re.search(r"[Ss]ection 3\.3|Table 3", sentence):
            wrong.append(sentence)
    return wrong


def test_the_citation_rule_itself():
    assert _miscited("Section 3.3: options A, B and C all fix it.")
    assert _miscited("On ImageNet (Table 3) they differ little.")
    assert not _miscited("Options A and B (section 3.3), C and Table 3 (section 4.1): they differ little.")
    assert not _miscited("Section 3.3 defines options A and B. Residual nets train.")


def test_every_text_credits_each_shortcut_option_and_table_3_to_its_own_section():
    home = app()
    shown = [c.value for c in home.caption] + [m.value for m in home.markdown]
    texts = {
        "Home": " ".join(shown),
        "the shortcuts group": reference.REFERENCE_GROUPS["shortcuts"].shows,
        "services/claims.py": (claims.__doc__ or "") + " " + (claims.shortcut_claims.__doc__ or ""),
        **{doc.name: doc.read_text(encoding="utf-8") for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]},
        "nets/models.py": (ROOT / "resexplorer" / "nets" / "models.py").read_text(encoding="utf-8"),
    }
    wrong = {where: _miscited(text) for where, text in texts.items()}
    assert not any(wrong.values()), wrong
    assert "Table 3" in texts["Home"]  # still quoted, now with its section


# --- 2. the gradient multiple is per value: block inputs differ 4x in size ----------------


def _input_values(name: str) -> list[int]:
    """Values per image at each block's input, read off the built net."""
    model = build_model(ModelConfig.from_name(name)).eval()
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, i: seen.append(i[0][0].numel())) for b in model.blocks()]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["resnet-20", "plain-20", "resnet-8", "resnet-32-C", "plain-56"])
def test_the_values_at_each_block_input_are_those_the_net_has(name):
    assert inside_series.block_input_values(name) == _input_values(name)


def _checkpoint(name: str, label: str | None = None) -> Checkpoint:
    arch = ModelConfig.from_name(name).arch
    return Checkpoint(None, name, label or f"{name} @ end", 30, arch)


def test_equal_gradients_per_value_read_one_although_the_first_input_has_four_times_the_values():
    sizes = inside_series.block_input_values("resnet-20")
    assert sizes[0] == 4 * sizes[-1]  # 16x32x32 against 64x8x8
    flat = [(_checkpoint("resnet-20"), {"input_grad_norm": [0.01 * math.sqrt(v) for v in sizes]})]
    assert inside_series.gradient_growth(flat) == "resnet-20 @ end: 1.00×"


def test_the_shipped_reading_of_plain_20_is_a_gradient_that_shrinks_towards_the_input():
    """As the audit found for plain-20: a raw multiple of 1.5x is 0.75x per value."""
    sizes = inside_series.block_input_values("plain-20")
    raw = [1.5] + [1.2] * (len(sizes) - 2) + [1.0]
    (growth,) = inside_series.gradient_growth([(_checkpoint("plain-20"), {"input_grad_norm": raw})]).split("; ")
    assert growth == "plain-20 @ end: 0.75×"


def test_the_input_gradient_chart_draws_the_value_per_value_and_keeps_the_raw_norm_in_the_hover():
    sizes = inside_series.block_input_values("resnet-8")
    raw = [0.02, 0.03, 0.04]
    result = {"input_grad_norm": raw, "block_names": ["b1", "b2", "b3"], "weight_grad_norm": [], "layer_names": []}
    (line,) = inside_series.gradient_lines([(_checkpoint("resnet-8"), result)], at_inputs=True)
    assert line.y == pytest.approx([r / math.sqrt(v) for r, v in zip(raw, sizes)])
    assert all(f"{r:.3g}" in hover and name in hover for r, hover, name in zip(raw, line.hover, ["b1", "b2", "b3"]))


# --- 3. the lesion reading says what the data drawn show ----------------------------------


def _lesions(name: str, baseline: float, errors: list[float]) -> tuple[Checkpoint, dict]:
    return _checkpoint(name), {"baseline_error": baseline, "error_without": errors}


def test_the_lesion_reading_says_where_the_shallow_nets_disagree_with_veit_and_the_deep_one_agrees():
    shallow = _lesions("resnet-20", 0.139, [0.763, 0.481, 0.614, 0.769, 0.287, 0.223, 0.498, 0.289, 0.395])
    deep = _lesions("resnet-56", 0.124, [0.15] * 9 + [0.272] + [0.13] * 8 + [0.175] + [0.14] * 8)
    deep[1]["error_without"][0] = 0.192
    plain = _lesions("plain-20", 0.16, [0.894, 0.868, 0.899, 0.895, 0.871, 0.866, 0.914, 0.903, 0.906])
    text = inside_series.lesion_reading([shallow, deep, plain])
    assert "resnet-20 @ end: 13.9% intact; 22–76% with one other block deleted, up to 77% at a downsampling block" in (
        text
    )
    assert "resnet-56 @ end: 12.4% intact; 13–19% with one other block deleted, up to 27% at a downsampling block" in (
        text
    )
    assert "plain-20 @ end: 16.0% intact; 87–91% with one block deleted" in text
    assert "holds for resnet-56 @ end, not for resnet-20 @ end" in text
    assert "ResNet-110" in text  # whose nets the finding is about


def test_the_lesion_reading_of_nets_that_all_agree_says_so():
    deep = _lesions("resnet-56", 0.124, [0.15] * 27)
    assert "holds for resnet-56 @ end." in inside_series.lesion_reading([deep])
    assert inside_series.lesion_reading([]) == ""


# --- 4. the random baseline: enough orders, and its own spread shown ------------------------


class _FewPixels(torch.nn.Module):
    """Class 0's evidence is four pixels' checkerboard: a random order's
    area depends on when it happens to remove them, so one order's area
    varies a lot, and the baseline must average many."""

    def forward(self, x):
        evidence = (x[:, :, 4:6, 4:6] * CHECKER[4:6, 4:6]).mean(dim=(1, 2, 3)) * 8
        return torch.stack([evidence, torch.zeros_like(evidence)], dim=1)


def test_the_random_baseline_is_steady_across_seeds_and_says_its_standard_error():
    model, image = _FewPixels(), _checkered_image()
    curves = [attribution.random_deletion_curve(model, image, 0, seed=seed) for seed in range(6)]
    areas = [c.area for c in curves]
    assert max(areas) - min(areas) < 0.05  # with four orders, 0.08 here
    se = curves[0].area_se
    assert se is not None and 0 < se < 0.02
    assert np.std(areas) < 3 * se  # the standard error it reports is the spread it has
    assert len(curves[0].spread) == len(curves[0].probability)


def test_the_deletion_chart_draws_the_band_of_the_random_orders():
    model, image = _CornerDetector(), _checkered_image()
    baseline = attribution.random_deletion_curve(model, image, 0, seed=0)
    series = chart_figures.Series("m · random order", "resnet-20", [0, 50, 100], [0.5, 0.4, 0.3], band=[0.1] * 3)
    fig = chart_figures.lines_chart([series], "pixels removed (%)", "probability").to_plotly_json()
    band = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert len(band) == 1 and list(band[0]["y"]) == pytest.approx([0.6, 0.5, 0.4, 0.2, 0.3, 0.4])
    ex = type("Ex", (), {"model": "resnet-20", "deletion": {}, "random_deletion": baseline})()
    (random_line,) = explanations.deletion_series([ex], [])
    assert random_line.band == pytest.approx([2 * s for s in baseline.spread])


# --- 5. the ImageNet test says what it does ----------------------------------------------


def test_the_imagenet_section_says_exactly_how_it_tests_not_the_papers_way(two_runs):
    at = app("pages/tta.py")
    (said,) = [drawn(m) for m in at.markdown if "ImageNet weights" in drawn(m)]
    assert "paper's way" not in said
    assert "232" in said and "256" in said and "IMAGENET1K_V2" in said


# --- 6. docstrings cite the figure they mean ----------------------------------------------


def test_docstrings_name_the_figure_and_the_measure_they_mean():
    said = " ".join(lesion.random_lesion.__doc__.split())
    assert "deleted at random" in said and "Fig. 5" not in said  # the experiment named, not a disputed number
    assert "shortcut(x)" in inside_series.ratio_lines.__doc__


# --- 7. Fig. 7's spread: pooled over every element, and the page says so ------------------


def test_the_response_chart_says_its_std_pools_every_element(two_runs):
    at = app("pages/inside.py")
    said = " ".join(m.value for m in at.markdown)
    assert "pooled over every element" in said and "per channel" in said
