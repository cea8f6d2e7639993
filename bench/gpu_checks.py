"""The checks only a GPU machine can make, run by bench/gpu_check.sh.

Each prints PASS or FAIL with its figures; the exit status is the number
of FAILs. Nothing here runs in the CPU test suite: it needs CUDA.

  races across GPUs   two models spread over two GPUs train as the same
                      race on one GPU does
  compile on CUDA     a compiled race compiles (no eager fallback), its
                      steps replay CUDA graphs (none skipped), and it
                      trains as the eager one does

"Trains as" compares what training is for: each model's test loss (within
10%) and test error (within 5 points). The weights themselves drift apart
even on the CPU (compiled kernels add in another order, and SGD amplifies
the last bits: 0.009 after 3 steps of a tiny race), so their largest
difference is printed, not judged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.sources import load_dataset  # noqa: E402
from resexplorer.nets.config import ModelConfig  # noqa: E402
from resexplorer.runs.recipe import RunOptions, TrainConfig  # noqa: E402
from resexplorer.training.engine import Race, device_of, new_member  # noqa: E402

CONFIG = TrainConfig(epochs=2, batch_size=128, lr=0.05, train_subset=4096, test_subset=1000)
MODELS = ("plain-20", "resnet-20")


def _race(data, devices: list[torch.device], compile: str = "off") -> Race:
    options = RunOptions(device=str(devices[0]), bf16=False, compile=compile)
    members = [
        new_member(ModelConfig.from_name(name, num_classes=data.num_classes), CONFIG, devices[i % len(devices)], True)
        for i, name in enumerate(MODELS)
    ]
    race = Race(members, data, CONFIG, devices[0], probes=[], options=options)
    race.run()
    return race


def _weights_apart(a: Race, b: Race) -> float:
    worst = 0.0
    for ma, mb in zip(a.members, b.members):
        for pa, pb in zip(ma.model.parameters(), mb.model.parameters()):
            worst = max(worst, (pa.detach().cpu() - pb.detach().cpu()).abs().max().item())
    return worst


def _trains_as(a: Race, b: Race) -> tuple[bool, str]:
    """Whether race a's models reach what race b's do, and the figures."""
    pairs = [(a.test_scores(ma), b.test_scores(mb)) for ma, mb in zip(a.members, b.members)]
    ok = all(abs(la - lb) <= 0.1 * lb and abs(ea - eb) <= 0.05 for (la, ea), (lb, eb) in pairs)
    said = "; ".join(
        f"{m.name}: test loss {la:.3f} vs {lb:.3f}, error {100 * ea:.1f}% vs {100 * eb:.1f}%"
        for m, ((la, ea), (lb, eb)) in zip(a.members, pairs)
    )
    return ok, f"{said}; weights within {_weights_apart(a, b):.2e}"


def races_across_gpus(data) -> bool:
    if torch.cuda.device_count() < 2:
        print("SKIPPED races across GPUs: one GPU visible")
        return True
    spread = _race(data, [torch.device("cuda", 0), torch.device("cuda", 1)])
    alone = _race(data, [torch.device("cuda", 0)])
    where = [str(device_of(m)) for m in spread.members]
    same, said = _trains_as(spread, alone)
    ok = len(set(where)) == 2 and same
    print(f"{'PASS' if ok else 'FAIL'} races across GPUs: models on {where}; against one GPU: {said}")
    return ok


def compile_on_cuda(data) -> bool:
    from torch._dynamo.utils import counters  # where inductor counts the graphs it would not record

    device = torch.device("cuda", 0)
    counters.clear()
    compiled = _race(data, [device], compile="on")
    skips = counters["inductor"]["cudagraph_skips"]
    eager = _race(data, [device])
    kept = all(m.eager is not None for m in compiled.members)  # None: it fell back to eager
    same, said = _trains_as(compiled, eager)
    ok = compiled.compiled and kept and skips == 0 and same
    print(
        f"{'PASS' if ok else 'FAIL'} compile on CUDA: compiled={kept}; CUDA graphs skipped {skips} time(s); "
        f"against eager: {said}"
    )
    return ok


def main() -> int:
    if not torch.cuda.is_available():
        print("FAIL no CUDA GPU visible")
        return 1
    data = load_dataset(sys.argv[1] if len(sys.argv) > 1 else "synthetic")
    print(f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}")
    return sum(not check(data) for check in (races_across_gpus, compile_on_cuda))


if __name__ == "__main__":
    sys.exit(main())
