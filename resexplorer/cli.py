"""Headless use: `python -m resexplorer train | resume | evaluate | runs`.

User mistakes (bad arguments, missing data, unknown model names) print one
line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .errors import ResExplorerError
from .nets.config import ModelConfig
from .services.claims import GROUP_CLAIMS
from .training.engine import SCHEDULES, TrainConfig, failure_message
from .training.jobs import CANCEL_FILE, ProgressWriter

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m resexplorer", description="Train, resume and evaluate plain and residual CIFAR nets.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one or more models in lockstep, one run each")
    train.add_argument("--model", action="append", required=True, metavar="NAME", help="e.g. resnet-20, plain-56, resnet-32-B; repeat to race several")
    _add_data_args(train)
    defaults = TrainConfig()
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    train.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    train.add_argument("--train-subset", type=int, default=None, metavar="N", help="a stratified subset of N training images")
    train.add_argument("--test-subset", type=int, default=None, metavar="N", help="test on a stratified subset of N images (faster curves)")
    train.add_argument("--log-every", type=int, default=defaults.log_every, metavar="STEPS", help="steps per logged training point (default: about 20 per epoch)")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--device", default=defaults.device, help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    train.add_argument("--eval-every", type=int, default=defaults.eval_every, metavar="K", help="test every K epochs (and at the end)")
    train.add_argument("--no-augment", action="store_true", help="train without crop and flip")
    train.add_argument("--runs", default="runs", help="the runs folder (default: runs)")
    train.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)  # set by the app's jobs

    resume = sub.add_parser("resume", help="continue interrupted or cancelled runs from their last checkpoint")
    resume.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    _add_data_args(resume)
    resume.add_argument("--device", default=None)
    resume.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)

    evaluate = sub.add_parser("evaluate", help="test error of a run's checkpoint")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_args(evaluate)
    evaluate.add_argument("--checkpoint", default="last", help="last (default) or an epoch number the run kept")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    build = sub.add_parser("build-reference", help="train (or finish) the shipped reference runs")
    _add_data_args(build)
    build.add_argument("--out", default="assets/runs", help="where the reference runs go (default: assets/runs)")
    build.add_argument("--group", action="append", default=None, help="only these groups (repeatable); default: all")
    build.add_argument("--device", default="auto")

    runs = sub.add_parser("runs", help="list runs with status and final errors")
    runs.add_argument("--runs", default="runs")

    pack = sub.add_parser("pack-images", help="an image folder of JPEGs as one compact file (their shared header stored once)")
    pack.add_argument("folder")
    pack.add_argument("pack_file", metavar="PACK")
    unpack = sub.add_parser("unpack-images", help="recreate the image folder a pack was made from, bit for bit")
    unpack.add_argument("pack_file", metavar="PACK")
    unpack.add_argument("folder")

    claims = sub.add_parser("check-claims", help="do the reference runs show what the paper shows? (exit 1 if not)")
    claims.add_argument("--runs", default="assets/runs", help="a folder holding reference groups (default: assets/runs)")
    claims.add_argument("--group", choices=list(GROUP_CLAIMS), action="append", help="check only this group (repeatable; default: every group the folder holds)")
    return parser


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="SOURCE", help="cifar10, synthetic, or a folder with train/ and test/ class folders")
    parser.add_argument("--cache", default=None, help="where decoded data sets are cached (default: $RESEXPLORER_CACHE or ~/.cache/resexplorer)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A job started by the app reports its progress and its end into job_dir.
    args.job = ProgressWriter(args.job_dir) if getattr(args, "job_dir", None) else None
    previous_handler = signal.getsignal(signal.SIGINT)
    args.stop = _StopFlag(getattr(args, "job_dir", None))  # early: a Stop may come while data loads
    commands = {"train": _train, "resume": _resume, "evaluate": _evaluate, "runs": _list_runs, "build-reference": _build_reference, "check-claims": _check_claims, "pack-images": _pack_images, "unpack-images": _unpack_images}
    try:
        code = commands[args.command](args)
    except ResExplorerError as err:
        print(f"error: {err}", file=sys.stderr)
        if args.job:
            args.job.finish("failed", str(err))
        return EXIT_USAGE
    except Exception as err:
        if args.job:
            args.job.finish("failed", failure_message(err))
        raise
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    if args.job:
        args.job.finish("cancelled" if code == EXIT_INTERRUPTED else "done")
    return code


# --- commands -------------------------------------------------------------------


def _load_data(args):
    from .data.sources import load_dataset
    from .training.progress import tqdm_decode_progress

    with tqdm_decode_progress() as progress:
        report = progress
        if getattr(args, "job", None):
            job = args.job

            def report(done, total, what):
                progress(done, total, what)
                job.loading(done, total, what)

        return load_dataset(args.data, args.cache, report)


def _callbacks(args) -> list:
    from .training.progress import TqdmProgress

    return [TqdmProgress(), *([args.job] if args.job else [])]


class _StopFlag:
    """Ctrl+C (or the app's Stop, which also leaves a file in the job folder)
    asks the race to stop within one step; the runs stay resumable."""

    def __init__(self, job_dir: str | None = None):
        self.stopped = False
        self.cancel_file = Path(job_dir) / CANCEL_FILE if job_dir else None
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.stopped:  # a second Ctrl+C quits at once
            raise KeyboardInterrupt
        self.stopped = True

    def __call__(self) -> bool:
        if not self.stopped and self.cancel_file is not None and self.cancel_file.exists():
            self.stopped = True
        return self.stopped


def _train(args) -> int:
    from .training.launch import start_race

    models = [ModelConfig.from_name(name) for name in args.model]
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        train_subset=args.train_subset,
        device=args.device,
        eval_every=args.eval_every,
        augment=not args.no_augment,
        test_subset=args.test_subset,
        log_every=args.log_every,
    )
    data = _load_data(args)
    stop = args.stop
    callbacks = _callbacks(args)
    race, runs = start_race(models, data, config, args.runs, callbacks, should_stop=stop)
    if args.job:
        args.job.set_runs(runs)
    started = time.perf_counter()
    try:
        race.run()
    finally:
        callbacks[0].close()
    _print_summary(list(runs.values()), time.perf_counter() - started)
    return EXIT_INTERRUPTED if stop.stopped else 0


def _resume(args) -> int:
    from .training.launch import resume_race
    from .training.runs import open_run

    runs = [open_run(path) for path in args.run_dirs]
    for run in runs:
        status = run.status()["status"]
        if status in ("running", "done"):
            raise ResExplorerError(f"{run.path} is {status}; only interrupted, cancelled, failed or diverged runs resume")
    data = _load_data(args)
    stop = args.stop
    callbacks = _callbacks(args)
    race = resume_race(runs, data, callbacks, should_stop=stop, device=args.device)
    if args.job:
        args.job.set_runs({run.config()["model_name"]: run for run in runs})
    started = time.perf_counter()
    try:
        race.run()
    finally:
        callbacks[0].close()
    _print_summary(runs, time.perf_counter() - started)
    return EXIT_INTERRUPTED if stop.stopped else 0


def _evaluate(args) -> int:
    from .training.evaluation import evaluate_checkpoint
    from .training.runs import open_run

    run = open_run(args.run_dir)
    ckpt = run.load_checkpoint(args.checkpoint)
    data = _load_data(args)
    result = evaluate_checkpoint(ckpt, data, args.device)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} ({Path(args.run_dir).name}, epoch {ckpt['epoch']}): "
            f"test error {100 * result['test_error']:.2f}%, test loss {result['test_loss']:.4f} on {result['n']} images"
        )
    return 0


def _build_reference(args) -> int:
    from .services.reference import REFERENCE_GROUPS, build_reference_runs

    unknown = sorted(set(args.group or []) - set(REFERENCE_GROUPS))
    if unknown:
        raise ResExplorerError(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(REFERENCE_GROUPS)}")
    data = _load_data(args)
    # Runs record the data folder by name and the command without this
    # machine's paths, so the shipped configs read the same everywhere.
    data.source = Path(args.data).name
    command = f"python -m resexplorer build-reference --data {data.source} --out {args.out}"
    command += "".join(f" --group {g}" for g in args.group or [])
    stop = args.stop
    callbacks = _callbacks(args)
    try:
        build_reference_runs(data, args.out, command, args.group, args.device, callbacks, should_stop=stop, log=lambda text: print(text, flush=True))
    finally:
        callbacks[0].close()
    return EXIT_INTERRUPTED if stop.stopped else 0


def _pack_images(args) -> int:
    from .data.jpegpack import pack_folder

    info = pack_folder(args.folder, args.pack_file)
    print(f"{info['files']:,} files, {info['headers']} distinct header(s): {info['original_bytes'] / 1e6:.1f} MB -> {info['packed_bytes'] / 1e6:.1f} MB in {args.pack_file}")
    return 0


def _unpack_images(args) -> int:
    from .data.jpegpack import unpack_folder

    print(f"{unpack_folder(args.pack_file, args.folder):,} files written under {args.folder}")
    return 0


def _check_claims(args) -> int:
    from .services.claims import claims_of_runs
    from .services.reference import group_runs
    from .training.runs import RunStore

    store = RunStore(args.runs)
    groups = {g: group_runs(store, g) for g in args.group or GROUP_CLAIMS}
    if not any(groups.values()):
        raise ResExplorerError(f"{args.runs}: no reference runs of {', '.join(groups)} to check")
    holds = True
    for group, runs in groups.items():
        if not runs and not args.group:
            print(f"{group}: no runs, not checked")
            continue
        try:
            claims = claims_of_runs(runs, group)
        except ValueError as err:
            raise ResExplorerError(f"{args.runs}, group {group}: {err}") from err
        for run in runs:
            records = run.metrics("epoch")
            print(f"{run.config()['model_name']}: {run.status().get('status')}, epoch {records[-1]['epoch'] if records else 0} of {run.config()['train']['epochs']}")
        for claim in claims:
            print(claim)
        holds = holds and all(c.holds for c in claims)
    return 0 if holds else 1


def _list_runs(args) -> int:
    from .training.runs import RunStore

    runs = RunStore(args.runs).list()
    if not runs:
        print(f"no runs in {args.runs}")
        return 0
    _print_summary(runs)
    return 0


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _print_summary(runs, seconds: float | None = None) -> None:
    rows = [("run", "model", "status", "epochs", "train err %", "test err %", "best test %")]
    for run in runs:
        s = run.summary()
        rows.append((s["run_id"], s["model"], s["status"], f"{s['epochs_done']}/{s['epochs']}", _percent(s["final_train_error"]), _percent(s["final_test_error"]), _percent(s["best_test_error"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    if seconds is not None:
        print(f"({seconds:.1f} s; runs in {runs[0].path.parent})")
