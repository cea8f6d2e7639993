"""What the shipped Fig. 6 runs must show, checked on their metrics.

The paper's Fig. 6 findings, as three checks on the per-epoch records of
plain-20, plain-56, resnet-20 and resnet-56 trained on one recipe:
  - degradation: plain-56's training error stays above plain-20's over the
    last half of training;
  - depth helps a ResNet: resnet-56's final test error is at most
    resnet-20's;
  - shortcuts fix the deep net: resnet-56's final training error is below
    plain-56's.
A run too short to show them should be lengthened, not the checks loosened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

FIG6_MODELS = ("plain-20", "plain-56", "resnet-20", "resnet-56")


@dataclass
class Claim:
    text: str
    holds: bool
    detail: str  # the numbers behind the verdict, in percent

    def __str__(self) -> str:
        return f"[{'ok' if self.holds else 'FAILS'}] {self.text}: {self.detail}"


def _by_epoch(records: Sequence[dict], key: str) -> dict[int, float]:
    return {int(r["epoch"]): float(r[key]) for r in records if r.get(key) is not None}


def fig6_claims(epochs: Mapping[str, Sequence[dict]]) -> list[Claim]:
    """The three checks on per-epoch records ({model: [{"epoch", "train_error",
    "test_error"}, ...]}, errors as fractions), each with its numbers."""
    missing = [m for m in FIG6_MODELS if not epochs.get(m)]
    if missing:
        raise ValueError(f"no epoch records for {', '.join(missing)}")
    train = {m: _by_epoch(epochs[m], "train_error") for m in FIG6_MODELS}
    test = {m: _by_epoch(epochs[m], "test_error") for m in FIG6_MODELS}
    end = min(max(train[m]) for m in FIG6_MODELS)  # the last epoch every run reached

    last_half = [e for e in range(end // 2 + 1, end + 1) if e in train["plain-20"] and e in train["plain-56"]]
    gaps = [train["plain-56"][e] - train["plain-20"][e] for e in last_half]
    degradation = Claim(
        "plain-56's training error stays above plain-20's over the last half of training",
        bool(gaps) and min(gaps) > 0,
        f"epochs {last_half[0]}-{last_half[-1]}, smallest gap {100 * min(gaps):+.2f} points" if gaps else "no epochs to compare",
    )
    r20, r56 = test["resnet-20"].get(end), test["resnet-56"].get(end)
    depth = Claim(
        "resnet-56's final test error is at most resnet-20's",
        r20 is not None and r56 is not None and r56 <= r20,
        f"epoch {end}: resnet-56 {_pct(r56)}, resnet-20 {_pct(r20)}",
    )
    p56, res56 = train["plain-56"].get(end), train["resnet-56"].get(end)
    shortcuts = Claim(
        "resnet-56's final training error is below plain-56's",
        p56 is not None and res56 is not None and res56 < p56,
        f"epoch {end}: resnet-56 {_pct(res56)}, plain-56 {_pct(p56)}",
    )
    return [degradation, depth, shortcuts]


def claims_of_runs(runs: Sequence) -> list[Claim]:
    """fig6_claims on runs of the run store (the Fig. 6 group's four)."""
    return fig6_claims({run.config()["model_name"]: run.metrics("epoch") for run in runs})


def _pct(value: float | None) -> str:
    return "missing" if value is None else f"{100 * value:.2f}%"
