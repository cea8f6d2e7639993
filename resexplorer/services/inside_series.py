"""The Inside-the-nets page's lines, as figures.Series, and the checkpoints
they are drawn from. They are read from two record layouts known here, not
in the page: the analysis results of services/analysis.py (probes.py,
lesion.py, landscape.py) and the probes every run records at each epoch
end in its metrics (branch ratios per block and per stage)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..data.dataset import IMAGE_SIZE
from ..nets.config import ModelConfig
from ..nets.models import STAGE_WIDTHS
from ..nets.probes import stage_means
from . import analysis
from .figures import Series

if TYPE_CHECKING:
    from ..runs.store import Run

STAGE_DASHES = ("solid", "dash", "dot")  # stage 1, 2, 3 of a CIFAR net


@dataclass(frozen=True)
class Checkpoint:
    """The weights of one run a page looks at."""

    run: Run
    model: str  # "resnet-56": the colour follows it
    label: str  # "resnet-56 @ end (epoch 30)": the legend says it
    epoch: int
    arch: str = "resnet"  # "plain" or "resnet"


def checkpoints_at(runs: Sequence[Run], moment: str) -> tuple[list[Checkpoint], list[str]]:
    """Each run's kept checkpoint nearest a moment of analysis.MOMENTS, and
    "model (run id)" of the runs that have none yet."""
    found, missing = [], []
    for run in runs:
        config = run.config()
        name = config["model_name"]
        nearest = analysis.nearest_moment(run, moment)
        if nearest is None:
            missing.append(f"{name} ({run.run_id})")
        else:
            found.append(Checkpoint(run, name, f"{name} @ {nearest[0]}", nearest[1], config["model"]["arch"]))
    return found, missing


# An analysis result of a checkpoint, as analysis.cached/compute give it.
Result = tuple[Checkpoint, dict]


def _numbered(values: Sequence) -> list[int]:
    return list(range(1, len(values) + 1))


def response_lines(results: Sequence[Result], ranked: bool = False) -> list[Series]:
    """Fig. 7: the std of each 3x3 layer's response, in the net's order or,
    ranked, sorted from the largest (then hover names no layer)."""
    lines = []
    for c, r in results:
        std = r["response_std"]
        y = sorted(std, reverse=True) if ranked else std
        lines.append(Series(c.label, c.model, _numbered(std), y, hover=None if ranked else r["layer_names"]))
    return lines


def ratio_lines(results: Sequence[Result]) -> list[Series]:
    """‖F(x)‖ / ‖shortcut(x)‖ of each block, input to output."""
    return [
        Series(c.label, c.model, _numbered(r["branch_ratio"]), r["branch_ratio"], hover=r["block_names"])
        for c, r in results
    ]


def any_plain(checkpoints: Sequence[Checkpoint]) -> bool:
    """Whether a plain net is among them (its ratios mean something else)."""
    return any(c.arch == "plain" for c in checkpoints)


def block_input_values(model: str) -> list[int]:
    """Values per image reaching each block's input: channels x height x
    width. The first block of stages 2 and 3 still takes the stage before's
    maps, so resnet-20's first block input has 16x32x32 values, four times
    its last's 64x8x8, and equal gradients per value differ 2x in norm."""
    n = ModelConfig.from_name(model).blocks_per_stage
    values = []
    for stage in range(len(STAGE_WIDTHS)):
        for i in range(n):
            source = stage - 1 if stage and i == 0 else stage  # the maps this block is given
            side = IMAGE_SIZE >> source
            values.append(STAGE_WIDTHS[source] * side * side)
    return values


def _per_value(norms: Sequence[float], model: str) -> list[float]:
    """Root mean square per value from a norm: ||g|| / sqrt(values)."""
    return [g / v**0.5 for g, v in zip(norms, block_input_values(model))]


def gradient_lines(results: Sequence[Result], at_inputs: bool = False) -> list[Series]:
    """One batch's gradient norms: of every layer's weights, or arriving at
    every block's input (at_inputs). At the inputs, which hold 4x more values
    in stage 1 than in stage 3, the line is the root mean square per value,
    the raw norm in each point's hover."""
    if not at_inputs:
        return [
            Series(c.label, c.model, _numbered(r["weight_grad_norm"]), r["weight_grad_norm"], hover=r["layer_names"])
            for c, r in results
        ]
    lines = []
    for c, r in results:
        raw, names = r["input_grad_norm"], r["block_names"]
        hover = [
            f"{name}, ‖∂L/∂x‖ {g:.3g} over {v:,} values" for name, g, v in zip(names, raw, block_input_values(c.model))
        ]
        lines.append(Series(c.label, c.model, _numbered(raw), _per_value(raw, c.model), hover=hover))
    return lines


def _multiple(value: float) -> str:
    return f"{value:,.2f}×" if value < 100 else f"{value:,.0f}×"


def gradient_growth(results: Sequence[Result]) -> str:
    """What the data show of each checkpoint's input gradients: the root
    mean square per value at the first block's input as a multiple of the
    last block's ("plain-56 @ initialisation: 4,400×"); above 1 the gradient
    grows towards the input, below 1 it shrinks. Per value, because the
    first block's input has 4x the values of the last's."""
    parts = []
    for c, r in results:
        per_value = _per_value(r["input_grad_norm"], c.model)
        first, last = per_value[0], per_value[-1]
        parts.append(
            f"{c.label}: {_multiple(first / last)}" if last > 0 else f"{c.label}: no gradient at the last block"
        )
    return "; ".join(parts)


def lesion_single_lines(results: Sequence[Result]) -> list[Series]:
    """Test error (%) with each block deleted alone, and a dotted line at
    each net's error with nothing deleted."""
    deleted = []
    intact = []
    for c, r in results:
        errors = [100 * e for e in r["error_without"]]
        deleted.append(Series(c.label, c.model, _numbered(errors), errors, hover=r["block_names"]))
        everything = [100 * r["baseline_error"]] * 2
        intact.append(Series(f"{c.label}: nothing deleted", c.model, [1, len(errors)], everything, dash="dot"))
    return deleted + intact


def lesion_random_lines(results: Sequence[Result]) -> list[Series]:
    """Mean test error (%) with k blocks deleted at random."""
    return [Series(c.label, c.model, r["ks"], [100 * e for e in r["mean_error"]]) for c, r in results]


# Veit et al.'s "barely hurts", as the lesion reading tests it: one deleted
# block outside the downsampling ones leaves the test error below this
# multiple of the intact net's.
BARELY_HURTS = 2.0


def _listed(labels: Sequence[str]) -> str:
    return ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else "".join(labels)


def lesion_reading(results: Sequence[Result]) -> str:
    """What the single-block deletions drawn show, beside Veit et al.'s
    finding: each net's intact error and the range with one block deleted
    (a residual net's downsampling blocks apart), then for which residual
    nets the finding holds. Their nets were deep (ResNet-110 on CIFAR-10);
    a shallow net's blocks each carry more."""
    parts, holds, fails = [], [], []
    for c, r in results:
        intact = 100 * r["baseline_error"]
        errors = [100 * e for e in r["error_without"]]
        if c.arch == "plain":
            parts.append(
                f"{c.label}: {intact:.1f}% intact; {min(errors):.0f}–{max(errors):.0f}% with one block deleted"
            )
            continue
        down = downsampling_blocks(c.model)
        others = [e for e, d in zip(errors, down) if not d]
        at_down = [e for e, d in zip(errors, down) if d]
        part = f"{c.label}: {intact:.1f}% intact; {min(others):.0f}–{max(others):.0f}% with one other block deleted"
        parts.append(part + (f", up to {max(at_down):.0f}% at a downsampling block" if at_down else ""))
        (holds if max(others) < BARELY_HURTS * intact else fails).append(c.label)
    if not parts:
        return ""
    text = "; ".join(parts) + "."
    if holds or fails:
        verdict = f"holds for {_listed(holds)}" if holds else "does not hold"
        if fails:
            verdict += f", not for {_listed(fails)}" if holds else f" for {_listed(fails)}"
        text += (
            f" Veit et al.'s 'barely hurts' {verdict}. (Here: every deletion outside the downsampling blocks "
            f"leaves the test error below {BARELY_HURTS:g}× the intact net's.) Their nets were deep, ResNet-110 on "
            "CIFAR-10; the fewer blocks a net has, the more each one carries."
        )
    return text


def lesion_draws(results: Sequence[Result], default: int = 3) -> int:
    """How many random draws each k's mean is over."""
    return results[0][1]["draws"] if results else default


def slice_lines(results: Sequence[Result]) -> list[Series]:
    """The training loss along a 1-D slice or the path from initialisation."""
    return [Series(c.label, c.model, r["axes"][0], r["loss"]) for c, r in results]


def plane_panels(results: Sequence[Result]) -> list[tuple[str, list[float], list[list[float]]]]:
    """2-D slices as figures.heatmap_panels takes them: (title, axis, loss grid)."""
    return [(f"{c.model} (epoch {c.epoch})", r["axes"][0], r["loss"]) for c, r in results]


def images_seen(results: Sequence[dict]) -> str:
    """ "1,000 test images of cifar10; ...": what the results were computed on."""
    return "; ".join(sorted({f"{r['n_images']:,} {r['settings']['split']} images of {r['images']}" for r in results}))


# --- the probes each run records at every epoch end ----------------------------------------------


@dataclass
class ProbeHistory:
    """One run's branch ratios over training, from its epoch records."""

    model: str
    epochs: list[int] = field(default_factory=list)
    by_stage: list[list[float | None]] = field(default_factory=list)  # per epoch: each stage's mean ratio
    by_block: list[list[float | None]] = field(default_factory=list)  # per epoch: each block's ratio
    # recorded before the branch ratio: only the blocks whose shortcut is the
    # identity are known (probe_history)
    legacy: bool = False

    def at(self, epoch: int) -> list[float | None] | None:
        """Each block's ratio at an epoch end; None where none was recorded."""
        return self.by_block[self.epochs.index(epoch)] if epoch in self.epochs else None


def downsampling_blocks(model: str) -> list[bool]:
    """Per block: whether it changes the shape (the first block of stages 2
    and 3: half the size, twice the channels)."""
    n = ModelConfig.from_name(model).blocks_per_stage
    return [i >= n and i % n == 0 for i in range(len(STAGE_WIDTHS) * n)]


def identity_blocks(model: str) -> list[bool]:
    """Per block: whether its shortcut (option A's map, for a plain net) is
    the identity, so that ||shortcut(x)|| = ||x||. Not at the blocks that
    change the shape; nowhere with option C."""
    config = ModelConfig.from_name(model)
    projections = config.arch == "resnet" and config.shortcut == "C"
    return [not projections and not down for down in downsampling_blocks(model)]


def probe_history(checkpoint: Checkpoint) -> ProbeHistory:
    """The run's recorded probes (epochs without them, as in runs from
    before probes were recorded, are left out). Runs recorded before the
    branch ratio kept ||F(x)|| / ||x||, which equals it wherever the shortcut
    is the identity: those blocks are kept, the others read None, and the
    stage means are taken over the kept blocks."""
    history = ProbeHistory(checkpoint.model)
    identity = None
    for record in checkpoint.run.metrics("epoch"):
        probes = record.get("probes", {})
        if probes.get("branch_ratio_by_stage"):
            blocks, stages = probes["branch_ratio"], probes["branch_ratio_by_stage"]
        elif probes.get("residual_ratio"):
            identity = identity or identity_blocks(checkpoint.model)
            blocks = [v if same else None for v, same in zip(probes["residual_ratio"], identity)]
            stages = stage_means(blocks, len(blocks) // 3)
            history.legacy = True
        else:
            continue
        history.epochs.append(record["epoch"])
        history.by_stage.append(stages)
        history.by_block.append(blocks)
    return history


def stage_lines(histories: Sequence[ProbeHistory]) -> list[Series]:
    """Each run's mean ratio per stage at every epoch end, a dash per stage."""
    lines = []
    for h in histories:
        stages = len(h.by_stage[0]) if h.by_stage else 0
        for stage, dash in zip(range(stages), STAGE_DASHES):
            y = [ratios[stage] for ratios in h.by_stage]
            lines.append(Series(f"{h.model} stage {stage + 1}", h.model, h.epochs, y, dash=dash))
    return lines


def last_recorded_epoch(histories: Sequence[ProbeHistory]) -> int:
    return max((h.epochs[-1] for h in histories if h.epochs), default=1)


def block_lines_at(histories: Sequence[ProbeHistory], epoch: int) -> list[Series]:
    """Each block's ratio at one epoch end, for the runs that recorded it."""
    lines = []
    for h in histories:
        ratios = h.at(epoch)
        if ratios is not None:
            lines.append(Series(f"{h.model}, epoch {epoch}", h.model, _numbered(ratios), ratios))
    return lines
