"""What the shipped reference groups must show, checked on their metrics.

The paper's Fig. 6 findings, as three checks on the per-epoch records of
plain-20, plain-56, resnet-20 and resnet-56 trained on one recipe:
  - degradation: plain-56's training error stays above plain-20's over the
    last half of training;
  - depth helps a ResNet: resnet-56's final test error is at most
    resnet-20's;
  - shortcuts fix the deep net: resnet-56's final training error is below
    plain-56's.
Section 4.1's findings (ImageNet Table 3), as two checks on plain-32 and
resnet-32 with shortcut options A, B and C (section 3.3 defines A and B,
section 4.1 adds C):
  - every option fixes the plain net: each ends with lower training error
    than plain-32;
  - the options differ little: their final test errors lie closer to each
    other than the nearest of them to plain-32's.
A run too short to show them should be lengthened, not the checks loosened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..nets.config import ModelConfig
from .reference import REFERENCE_GROUPS

FIG6_MODELS = REFERENCE_GROUPS["fig6"].models
SHORTCUT_MODELS = REFERENCE_GROUPS["shortcuts"].models


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
    train, test, end = _errors(epochs, FIG6_MODELS)

    last_half = [e for e in range(end // 2 + 1, end + 1) if e in train["plain-20"] and e in train["plain-56"]]
    gaps = [train["plain-56"][e] - train["plain-20"][e] for e in last_half]
    degradation = Claim(
        "plain-56's training error stays above plain-20's over the last half of training",
        bool(gaps) and min(gaps) > 0,
        f"epochs {last_half[0]}-{last_half[-1]}, smallest gap {100 * min(gaps):+.2f} points"
        if gaps
        else "no epochs to compare",
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


def shortcut_claims(epochs: Mapping[str, Sequence[dict]]) -> list[Claim]:
    """The two checks of section 4.1 (Table 3) on per-epoch records of SHORTCUT_MODELS
    (as fig6_claims takes them), each with its numbers."""
    train, test, end = _errors(epochs, SHORTCUT_MODELS)
    configs = {name: ModelConfig.from_name(name) for name in SHORTCUT_MODELS}
    options = {c.shortcut: name for name, c in configs.items() if c.arch == "resnet"}
    plain = next(name for name, c in configs.items() if c.arch == "plain")
    plain_train, plain_test = train[plain].get(end), test[plain].get(end)
    option_train = {o: train[m].get(end) for o, m in options.items()}
    option_test = {o: test[m].get(end) for o, m in options.items()}
    listed = ", ".join(f"{o} {_pct(e)}" for o, e in option_train.items())
    fixes = Claim(
        "resnet-32 with shortcut option A, B or C ends with lower training error than plain-32",
        plain_train is not None and None not in option_train.values() and max(option_train.values()) < plain_train,
        f"epoch {end}: {listed}, {plain} {_pct(plain_train)}",
    )
    text = "the shortcut options differ little: their final test errors lie closer together than to plain-32's"
    if plain_test is None or None in option_test.values():
        return [fixes, Claim(text, False, f"epoch {end}: a test error is missing")]
    spread = max(option_test.values()) - min(option_test.values())
    gap = plain_test - max(option_test.values())
    listed = ", ".join(f"{o} {_pct(e)}" for o, e in option_test.items())
    detail = (
        f"epoch {end}: {listed}, within {100 * spread:.2f} points; "
        f"{plain} {_pct(plain_test)}, {100 * gap:.2f} points above the worst"
    )
    return [fixes, Claim(text, spread < gap, detail)]


# Each reference group with findings to check, and its checks.
GROUP_CLAIMS = {"fig6": fig6_claims, "shortcuts": shortcut_claims}


def claims_of_runs(runs: Sequence, group: str = "fig6") -> list[Claim]:
    """The group's checks on runs of the run store (the group's runs)."""
    return GROUP_CLAIMS[group]({run.config()["model_name"]: run.metrics("epoch") for run in runs})


def _errors(epochs: Mapping[str, Sequence[dict]], models: Sequence[str]):
    """Training and test error by epoch of each model, and the last epoch
    every run reached (unfinished runs are compared there)."""
    missing = [m for m in models if not epochs.get(m)]
    if missing:
        raise ValueError(f"no epoch records for {', '.join(missing)}")
    train = {m: _by_epoch(epochs[m], "train_error") for m in models}
    test = {m: _by_epoch(epochs[m], "test_error") for m in models}
    end = min(max(train[m]) for m in models)
    return train, test, end


def _pct(value: float | None) -> str:
    return "missing" if value is None else f"{100 * value:.2f}%"
