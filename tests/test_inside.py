"""Inside the nets: probes, gradients, lesions, landscapes, cached analyses.
Constructed cases where the right answer is known."""

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers import ON_CPU

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import build_model
from resexplorer.nets.probes import gradient_norms, inside_stats
from resexplorer.runs.recipe import TrainConfig
from resexplorer.science.landscape import (
    filter_normalised_direction,
    interpolation,
    slice_1d,
    slice_2d,
    steps,
)
from resexplorer.science.lesion import (
    lesion_errors,
    logits_without,
    random_lesion,
    single_block_lesion,
    uses_pad_for_plain,
)
from resexplorer.services import analysis
from resexplorer.training.launch import new_race


def _model(name, seed=0):
    torch.manual_seed(seed)
    return build_model(name).eval()


def _randomise_bn(model, seed=1):
    """Give BN non-trivial statistics, as training would."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
    return model


# --- probes ---------------------------------------------------------------


@pytest.mark.parametrize("shortcut", "ABC")
def test_zero_init_resnet_ratios_are_zero_and_blocks_are_identities(shortcut):
    model = _model(ModelConfig("resnet", 20, shortcut, zero_init_residual=True))
    stats = inside_stats(model, torch.randn(16, 3, 32, 32), batch_size=5)
    assert stats.branch_ratio == [0.0] * 9
    checked = 0
    for block in model.blocks():
        planes = block.conv1.in_channels
        if block.conv1.stride[0] == 1 and planes == block.conv2.out_channels and shortcut != "C":
            x = torch.relu(torch.randn(4, planes, 512 // planes, 512 // planes))  # block inputs are ReLU outputs
            assert torch.equal(block(x), x)
            checked += 1
    assert checked == (0 if shortcut == "C" else 7)


def test_inside_stats_do_not_depend_on_the_chunking():
    model = _randomise_bn(_model("resnet-14"))
    images = torch.randn(20, 3, 32, 32)
    chunked = inside_stats(model, images, batch_size=7)  # chunks of 7, 7, 6
    whole = inside_stats(model, images, batch_size=20)
    assert chunked.response_std == pytest.approx(whole.response_std, rel=1e-4)
    assert chunked.branch_ratio == pytest.approx(whole.branch_ratio, rel=1e-4)
    assert len(chunked.layer_names) == 13 and chunked.block_names[0] == "s1.b1" and chunked.block_names[-1] == "s3.b2"


def test_gradient_norms_reach_every_layer_and_leave_the_model_alone():
    model = _randomise_bn(_model("plain-14"))
    before = copy.deepcopy(model.state_dict())
    images, labels = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    grads = gradient_norms(model, images, labels)
    assert len(grads.layer_names) == 14 and grads.layer_names[-1] == "linear"  # 13 convs + classifier
    assert len(grads.input_grad_norm) == 6 and all(g > 0 for g in grads.weight_grad_norm + grads.input_grad_norm)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the reported block-input gradient is the true one
    work = copy.deepcopy(model).train()
    x = work.relu(work.bn1(work.conv1(images))).detach().requires_grad_()
    h = x
    for block in work.blocks():
        h = block(h)
    F.cross_entropy(work.linear(work.flatten(work.pool(h))), labels).backward()
    assert grads.input_grad_norm[0] == pytest.approx(float(x.grad.flatten(1).norm(dim=1).mean()), rel=1e-4)


# --- lesions --------------------------------------------------------------


@pytest.mark.parametrize("shortcut", "ABC")
def test_deleting_a_block_of_a_zero_init_resnet_changes_nothing(shortcut):
    model = _randomise_bn(_model(ModelConfig("resnet", 20, shortcut, zero_init_residual=True)))
    images = torch.randn(6, 3, 32, 32)
    intact = model(images)
    for index in range(9):
        assert torch.equal(logits_without(model, images, {index}), intact)


@pytest.mark.parametrize("name", ["plain-20", "resnet-20"])
def test_deleting_a_block_of_a_random_net_changes_the_output(name):
    model = _randomise_bn(_model(name))
    images = torch.randn(6, 3, 32, 32)
    intact = model(images)
    for index in (0, 3, 8):  # in place, shape-changing, last
        assert not torch.allclose(logits_without(model, images, {index}), intact, atol=1e-4)


def test_plain_deletions_say_where_they_pad():
    assert uses_pad_for_plain(_model("plain-20")) == [False, False, False, True, False, False, True, False, False]
    assert not any(uses_pad_for_plain(_model("resnet-20")))


def test_lesion_sweeps_reuse_work_but_equal_full_forward_passes():
    model = _randomise_bn(_model("resnet-14"))
    images, labels = torch.randn(30, 3, 32, 32), torch.randint(0, 10, (30,))
    deletions = [frozenset(), frozenset({2}), frozenset({0, 4}), frozenset({5, 1, 3})]
    expected = [float((logits_without(model, images, d).argmax(1) != labels).float().mean()) for d in deletions]
    assert lesion_errors(model, images, labels, deletions, batch_size=8) == pytest.approx(expected)
    single = single_block_lesion(model, images, labels)
    assert single.baseline_error == pytest.approx(expected[0]) and single.error_without[2] == pytest.approx(expected[1])
    sweep = random_lesion(model, images, labels, max_k=3, draws=2)
    assert sweep.ks == [0, 1, 2, 3] and len(sweep.errors[0]) == 1 and len(sweep.errors[3]) == 2
    assert sweep.mean_error[0] == pytest.approx(expected[0])


# --- landscapes -----------------------------------------------------------


def test_directions_are_filter_normalised_with_bn_and_biases_zeroed():
    model = _model("resnet-8")
    direction = filter_normalised_direction(model, seed=0)
    for name, weight in model.named_parameters():
        d = direction[name]
        if weight.dim() <= 1:
            assert not d.any(), name
        else:
            assert torch.allclose(d.flatten(1).norm(dim=1), weight.detach().flatten(1).norm(dim=1), rtol=1e-5), name
    assert not torch.equal(direction["conv1.weight"], filter_normalised_direction(model, seed=1)["conv1.weight"])


def test_slices_pass_through_the_trained_weights():
    model = _randomise_bn(_model("resnet-8"))
    images, labels = torch.randn(12, 3, 32, 32), torch.randint(0, 10, (12,))
    with torch.no_grad():
        at_origin = float(F.cross_entropy(model(images), labels))
    line = slice_1d(model, images, labels, points=5, span=0.5, batch_size=5)
    assert line.axes == [steps(5, 0.5)] and line.axes[0][2] == 0.0
    assert line.loss[2] == pytest.approx(at_origin, rel=1e-5)
    assert line.loss[0] != pytest.approx(at_origin) and line.loss[4] != pytest.approx(at_origin)
    plane = slice_2d(model, images, labels, points=3, span=0.5)
    assert len(plane.loss) == 3 and len(plane.loss[0]) == 3 and plane.loss[1][1] == pytest.approx(at_origin, rel=1e-5)
    assert all(p.equal(q) for p, q in zip(model.parameters(), _randomise_bn(_model("resnet-8")).parameters()))


def test_interpolation_ends_at_both_nets_with_batch_statistics():
    initial, final = _model("resnet-8", seed=0), _randomise_bn(_model("resnet-8", seed=1))
    images, labels = torch.randn(10, 3, 32, 32), torch.randint(0, 10, (10,))
    path = interpolation(initial, final, images, labels, [0.0, 0.5, 1.0], batch_size=10)
    for end, loss in ((initial, path.loss[0]), (final, path.loss[2])):
        with torch.no_grad():
            expected = float(F.cross_entropy(copy.deepcopy(end).train()(images), labels))
        assert loss == pytest.approx(expected, rel=1e-5)


# --- cached analyses of a run ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from resexplorer.data.synthetic import make_synthetic

    data = make_synthetic(n_train=64, n_test=32, num_classes=4, seed=2)
    race, runs = new_race(
        [ModelConfig.from_name("resnet-8", num_classes=4)],
        data,
        TrainConfig(epochs=2, batch_size=32, lr=0.05),
        tmp_path_factory.mktemp("runs"),
        options=ON_CPU,
    )
    race.run()
    pool = analysis.ImagePool.from_dataset(data)
    return next(iter(runs.values())), pool


@pytest.mark.parametrize("kind", list(analysis.KINDS))
def test_every_analysis_computes_once_then_comes_from_the_cache(tiny_run, kind, monkeypatch):
    run, pool = tiny_run
    settings = {"n": 16, "points": 3} if kind in ("landscape_1d", "landscape_2d", "interpolation") else {"n": 16}
    assert analysis.cached(run, 2, kind, **settings) is None
    result = analysis.compute(run, 2, kind, pool, device="cpu", **settings)
    assert result["n_images"] == 16 and result["epoch"] == 2
    recomputed = dataclasses.replace(analysis.KINDS[kind], run=lambda job: pytest.fail("recomputed"))
    monkeypatch.setitem(analysis.KINDS, kind, recomputed)
    assert analysis.cached(run, 2, kind, **settings) == result
    assert analysis.cached(run, 1, kind, **settings) is None  # per checkpoint


def test_moments_name_the_kept_checkpoints(tiny_run):
    run, _ = tiny_run
    assert analysis.kept_moments(run) == [("initialisation", 0), ("after epoch 1", 1), ("end (epoch 2)", 2)]
    assert analysis.nearest_moment(run, "initialisation") == ("initialisation", 0)
    assert analysis.nearest_moment(run, "end") == ("end (epoch 2)", 2)
    assert analysis.nearest_moment(run, "middle") == ("after epoch 1", 1)  # a 2-epoch run's middle is its first epoch


def test_analyses_refuse_images_of_other_classes(tiny_run):
    run, _ = tiny_run
    with pytest.raises(analysis.DataError, match="learned the classes"):
        analysis.compute(run, 2, "inside", analysis.sample_pool(), device="cpu", n=10)


def test_a_read_only_run_folder_caches_in_the_user_cache(tiny_run, monkeypatch):
    run, pool = tiny_run
    real = analysis.atomic_write_json

    def refuse_beside_run(obj, path):
        if str(path).startswith(str(run.path)):
            raise PermissionError("read-only")
        real(obj, path)

    monkeypatch.setattr(analysis, "atomic_write_json", refuse_beside_run)
    analysis.compute(run, 1, "inside", pool, device="cpu", n=8)
    assert analysis.cached(run, 1, "inside", n=8)["n_images"] == 8


def test_the_app_can_keep_results_out_of_a_run_folder(tiny_run):
    run, pool = tiny_run
    analysis.compute(run, 0, "gradients", pool, device="cpu", store_beside=False, n=8)
    assert analysis.cached(run, 0, "gradients", n=8) is not None
    assert not (run.path / analysis.ANALYSIS_DIR / "epoch-0000").exists()


def test_folding_bn_keeps_the_function_along_the_direction():
    from resexplorer.science.landscape import fold_batchnorm

    model = _randomise_bn(_model("resnet-8-C"))
    direction = filter_normalised_direction(model, seed=3)
    folded, moved = fold_batchnorm(model, direction)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    images = torch.randn(5, 3, 32, 32)
    moved_model = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in moved_model.named_parameters():
            p.add_(0.3 * direction[name])
        for name, p in folded.named_parameters():
            p.add_(0.3 * moved[name])
        assert torch.allclose(folded(images), moved_model(images), atol=1e-4, rtol=1e-4)


def test_cifar_runs_fall_back_to_the_shipped_samples_and_others_get_a_message(tiny_run, tmp_path):
    run, pool = tiny_run
    assert analysis.pool_for(run, pool) is pool
    (tmp_path / "cifar-run").mkdir()
    (tmp_path / "cifar-run" / "config.json").write_text(run.config_path.read_text())
    cifar_run = analysis.Run(tmp_path / "cifar-run")
    cifar_run.update_config({"data": {**run.config()["data"], "classes": analysis.CIFAR10_CLASSES}})
    fallback = analysis.pool_for(cifar_run, pool)
    assert (
        fallback.name == "samples"
        and len(fallback.take("test", 1000)[1]) == 100
        and "learned CIFAR-10" in fallback.note
    )
    with pytest.raises(analysis.DataError, match="pick the data source"):
        analysis.pool_for(run, fallback)


def test_the_catalog_offers_shipped_and_own_runs_with_defaults(two_runs, tmp_path):
    from resexplorer.services.catalog import catalog

    offer = catalog(tmp_path / "runs")
    assert set(offer.runs) == {r.run_id for r in two_runs.values()} and not offer.shipped
    plain, residual = two_runs["plain-8"].run_id, two_runs["resnet-8"].run_id
    assert offer.depths() == [8]  # the depth choice beside the shortcut toggle
    assert offer.pair(8, "both") == ([plain, residual], [])
    assert offer.pair(8, "off") == ([plain], []) and offer.pair(8, "on") == ([residual], [])
    assert offer.pair(56, "on") == ([], ["resnet-56"])  # no shipped runs here: named as missing
    assert all(" · yours · " in offer.label(i) for i in offer.runs)
    assert catalog(tmp_path / "missing").runs == {}


def test_the_shortcut_toggle_swaps_the_shipped_plain_net_for_the_residual_one(tmp_path):
    from resexplorer.services.catalog import catalog, pair_models

    assert pair_models(56, "off") == ["plain-56"] and pair_models(56, "both") == ["plain-56", "resnet-56"]
    offer = catalog(tmp_path / "no-runs")
    assert {20, 32, 56} <= set(offer.depths())  # resnet-56-zero and options B/C add no depth of their own
    found, missing = offer.pair(56, "both")
    assert [offer.model_of(i) for i in found] == ["plain-56", "resnet-56"] and not missing
    assert all(i in offer.shipped for i in found)
    (on,), _ = offer.pair(32, "on")
    assert offer.model_of(on) == "resnet-32"  # option A, not B or C


def test_the_one_listing_tells_shipped_runs_by_where_they_live(tmp_path):
    """Every page lists runs through the catalog: a user's copy of a shipped
    run (an import, a copied folder) is theirs, and a runs folder pointed
    at the shipped folder makes no shipped run the user's."""
    import shutil

    from resexplorer.services.catalog import catalog
    from resexplorer.services.reference import REFERENCE_RUNS_DIR, reference_runs

    original = reference_runs("fig6")[0]
    shutil.copytree(original.path, tmp_path / "runs" / original.run_id)
    offer = catalog(tmp_path / "runs")
    assert original.run_id in offer.yours and original.run_id not in offer.shipped
    assert offer.runs[original.run_id].path.parent == tmp_path / "runs"
    pointed = catalog(REFERENCE_RUNS_DIR)
    assert pointed.shipped == set(pointed.runs) and not pointed.yours
    assert not catalog(tmp_path / "runs", include_shipped=False).shipped


def test_every_analysis_is_one_row_of_one_table_with_a_title_settings_and_a_function():
    for name, kind in analysis.KINDS.items():
        assert kind.title and callable(kind.run), name
        assert kind.defaults["split"] in ("train", "test") and kind.defaults["n"] > 0, name
        assert kind.precompute in ("", analysis.EVERY_MOMENT, analysis.AT_END), name
