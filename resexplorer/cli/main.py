"""Headless use: `python -m resexplorer train | resume | evaluate | runs | ...`.

User mistakes (bad arguments, missing data, unknown model names) print one
line and exit with code 2, never a traceback. The training flags are
derived from TrainConfig's fields (runs/recipe.py), so a new setting is a
new flag without an edit here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ResExplorerError
from ..nets.config import ModelConfig
from ..processes import stop_signals
from ..runs.recipe import RunOptions, TrainConfig, settings, split_settings
from ..runs.states import RESUMABLE, RunState, resumable
from ..runs.store import RUN_FOLDER_REMEDY, RUNS_FOLDER_REMEDY, RunStore, open_run
from ..services.claims import GROUP_CLAIMS, claims_of_runs
from ..services.reference import REFERENCE_GROUPS, REFERENCE_RUNS_DIR, group_runs
from ..storage import writable_folder
from ..training.failures import failure_of
from ..training.jobs import CANCEL_FILE, REQUEST_FILE, JobState, launch_worker, machine_claim
from ..training.queue import IDLE_EXIT_S, training_queue

if TYPE_CHECKING:
    from ..training.job_progress import ProgressWriter

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
REQUIRED_SETTINGS = {"epochs"}  # a run's length is always chosen, never defaulted
STOPPABLE = {"train", "resume", "run-job", "build-reference"}  # commands that stop at the next step on a signal


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


PROG = "python -m resexplorer"


def _examples(*commands: str) -> dict:
    """A command's examples, shown under its --help as written (and in
    docs/cli-reference.md, generated from them; tests/test_docs.py parses
    each one)."""
    lines = "\n".join(f"  {PROG} {command}" for command in commands)
    return {"epilog": f"examples:\n{lines}", "formatter_class": argparse.RawDescriptionHelpFormatter}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train, resume and evaluate plain and residual CIFAR nets.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train one or more models in lockstep, one run each",
        **_examples(
            "train --model plain-20 --model resnet-20 --data cifar10 --epochs 30",
            "train --model resnet-56 --data path/to/images --epochs 160 --schedule paper --device cuda",
            "train --model resnet-20 --data synthetic --epochs 2 --train-subset 1000",
        ),
    )
    train.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME",
        help="e.g. resnet-20, plain-56, resnet-32-B; repeat to race several",
    )
    _add_data_args(train)
    _add_setting_args(train)
    train.add_argument("--runs", default="runs", help="the runs folder (default: runs)")

    resume = sub.add_parser(
        "resume",
        help="continue interrupted or cancelled runs from their last checkpoint",
        **_examples("resume runs/RUN_ID --data cifar10", "resume runs/RUN_ID runs/OTHER_RUN_ID --data cifar10"),
    )
    resume.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run folders; the runs of one race resume together"
    )
    _add_data_args(resume)
    resume.add_argument("--device", default=None, help="train on another device than the run's own (cpu, cuda, mps)")

    evaluate = sub.add_parser(
        "evaluate",
        help="test error of a run's checkpoint",
        **_examples(
            "evaluate runs/RUN_ID --data cifar10", "evaluate runs/RUN_ID --data cifar10 --checkpoint 15 --json"
        ),
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder")
    _add_data_args(evaluate)
    evaluate.add_argument("--checkpoint", default="last", help="last (default) or an epoch number the run kept")
    evaluate.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda or mps")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    build = sub.add_parser(
        "build-reference",
        help="train (or finish) the shipped reference runs",
        **_examples(
            "build-reference --data path/to/cifar10-jpeg --out assets/runs",
            "build-reference --data cifar10-jpeg --out assets/runs --group zero-init --device cuda",
        ),
    )
    _add_data_args(build)
    build.add_argument("--out", default="assets/runs", help="where the reference runs go (default: assets/runs)")
    build.add_argument("--group", action="append", default=None, help="only these groups (repeatable); default: all")
    build.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda or mps")

    runs = sub.add_parser(
        "runs", help="list runs with status and final errors", **_examples("runs", "runs --runs path/to/runs")
    )
    runs.add_argument("--runs", default="runs", help="the runs folder")

    delete = sub.add_parser(
        "delete",
        help="delete run folders, damaged ones too (a folder that is not provably a run is left alone)",
        **_examples("delete runs/RUN_ID runs/OTHER_RUN_ID"),
    )
    delete.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders")

    export = sub.add_parser(
        "export",
        help="runs as one zip, to look at (or resume) on another machine",
        **_examples("export runs/RUN_ID runs/OTHER_RUN_ID -o runs.zip"),
    )
    export.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (finished or stopped)")
    export.add_argument("-o", "--output", required=True, metavar="ZIP", help="the zip to write")
    import_ = sub.add_parser(
        "import",
        help="the runs of an exported zip into a runs folder (existing ids are kept)",
        **_examples("import runs.zip --runs runs"),
    )
    import_.add_argument("archive", metavar="ZIP", help="a zip made by export (or the Runs page)")
    import_.add_argument("--runs", default="runs", help="the runs folder (default: runs)")

    pack = sub.add_parser(
        "pack-images",
        help="an image folder of JPEGs as one compact file (their shared header stored once)",
        **_examples("pack-images path/to/cifar10-jpeg cifar10-jpeg.pack"),
    )
    pack.add_argument("folder", help="an image folder (train/ and test/ class folders)")
    pack.add_argument("pack_file", metavar="PACK", help="the file to write")
    unpack = sub.add_parser(
        "unpack-images",
        help="recreate the image folder a pack was made from, bit for bit",
        **_examples("unpack-images cifar10-jpeg.pack cifar10-jpeg"),
    )
    unpack.add_argument("pack_file", metavar="PACK", help="a file made by pack-images")
    unpack.add_argument("folder", help="where to recreate it (files of the same names are overwritten)")

    claims = sub.add_parser(
        "check-claims",
        help="do the reference runs show what the paper shows? (exit 1 if not)",
        **_examples("check-claims", "check-claims --runs path/to/built/runs --group fig6"),
    )
    claims.add_argument(
        "--runs", default=None, help="a folder holding reference groups (default: the shipped reference runs)"
    )
    claims.add_argument(
        "--group",
        choices=list(GROUP_CLAIMS),
        action="append",
        help="check only this group (repeatable; default: every group the folder holds)",
    )

    sub.add_parser(
        "app",
        help="start the app in the browser; streamlit's own flags follow (e.g. --server.port 8502)",
        **_examples("app", "app --server.port 8502 --server.headless true"),
    )

    # The app's background jobs: the request (models, data, TrainConfig) is
    # read from JOB_DIR/request.json, not from flags. Not for users.
    worker = sub.add_parser("run-job")
    worker.add_argument("job_dir", metavar="JOB_DIR")
    # The training queue's runner (training/queue.py), started by the app
    # when a job is queued and none runs; it ends once the queue is empty.
    runner = sub.add_parser("run-queue")
    runner.add_argument("--idle-exit", type=float, default=IDLE_EXIT_S, metavar="SECONDS")
    return parser


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        metavar="SOURCE",
        help="cifar10, synthetic, or a folder with train/ and test/ class folders",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="where decoded data sets are cached (default: $RESEXPLORER_CACHE or ~/.cache/resexplorer)",
    )


def _add_setting_args(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field: --batch-size for batch_size; a
    setting that is on by default is turned off with --no-<name>."""
    for setting in settings():
        flag = "--" + setting.name.replace("_", "-")
        text = setting.help.replace("%", "%%")  # argparse formats help with %
        if setting.kind is bool:
            off = "--no-" + setting.name.replace("_", "-")
            parser.add_argument(off, dest=setting.name, action="store_false", help=f"turn off: {text}")
            continue
        required = setting.name in REQUIRED_SETTINGS
        parser.add_argument(
            flag,
            dest=setting.name,
            type=setting.kind,
            choices=setting.choices,
            required=required,
            default=None if required else setting.default,
            metavar=None if setting.choices else setting.name.upper(),
            help=text if required or setting.default is None else f"{text} (default: {setting.default})",
        )


def train_config_of(args: argparse.Namespace) -> tuple[TrainConfig, RunOptions]:
    """The recipe and the run options the flags say."""
    return split_settings({s.name: getattr(args, s.name) for s in settings()})


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "app":  # only `app` passes flags on (to streamlit)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.streamlit_args = extra
    job_dir = args.job_dir if args.command == "run-job" else None
    # A job started by the app reports its progress and its end into job_dir.
    if job_dir:
        from ..training.job_progress import ProgressWriter  # the engine, and torch: a worker trains

        job = ProgressWriter(job_dir)
    else:
        job = None
    # Early: a stop may come while data loads. Only commands that stop
    # cleanly take the signals; the others end on them as any program does.
    stop = _StopFlag(job_dir, listen=args.command in STOPPABLE)
    try:
        code = _run_command(args, job, stop)
    except ResExplorerError as err:
        print(f"error: {err}", file=sys.stderr)
        if job:
            job.fail(failure_of(err))
        return EXIT_USAGE
    except Exception as err:
        if job:
            job.fail(failure_of(err))
        raise
    finally:
        stop.restore()
    if job:
        job.finish(JobState.CANCELLED if code == EXIT_INTERRUPTED else JobState.DONE)
    return code


def _run_command(args: argparse.Namespace, job: ProgressWriter | None, stop: _StopFlag) -> int:
    if args.command == "run-job":
        return _run_job(Path(args.job_dir), job, stop)
    if args.command == "run-queue":
        training_queue().run(launch_worker, idle_exit_s=args.idle_exit)
        return 0
    if args.command == "train":
        models = [ModelConfig.from_name(name) for name in args.model]
        return _train(models, *train_config_of(args), args.data, args.cache, args.runs, None, stop)
    if args.command == "resume":
        return _resume(args.run_dirs, args.data, args.cache, args.device, None, stop)
    if args.command == "build-reference":
        return _build_reference(args, stop)
    commands = {
        "evaluate": _evaluate,
        "runs": _list_runs,
        "delete": _delete,
        "check-claims": _check_claims,
        "export": _export,
        "import": _import,
        "pack-images": _pack_images,
        "unpack-images": _unpack_images,
        "app": _app,
    }
    return commands[args.command](args)


def _run_job(job_dir: Path, job: ProgressWriter, stop: _StopFlag) -> int:
    """A job the app started: what to do is in its request.json. It holds
    the machine's claim for its life (one app job per machine)."""
    with machine_claim():
        return _run_request(job_dir, job, stop)


def _run_request(job_dir: Path, job: ProgressWriter, stop: _StopFlag) -> int:
    try:
        request = json.loads((job_dir / REQUEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResExplorerError(f"{job_dir} holds no readable job request ({err})") from err
    if request.get("command") == "train":
        models = [ModelConfig.from_name(name) for name in request["models"]]
        config = TrainConfig.from_dict(request["train_config"])
        # A request written before RunOptions held its fields in train_config.
        options = RunOptions.from_dict(request.get("run_options", request["train_config"]))
        return _train(models, config, options, request["data"], request.get("cache"), request["runs"], job, stop)
    if request.get("command") == "resume":
        return _resume(request["run_dirs"], request["data"], request.get("cache"), None, job, stop)
    raise ResExplorerError(f"{job_dir}: unknown job command {request.get('command')!r}")


# --- commands -------------------------------------------------------------------
# The training commands import the training stack when they run, so that
# `--help`, `runs` and `check-claims` answer without loading it.


def _load_data(source: str, cache: str | None, job: ProgressWriter | None = None, quiet: bool = False):
    from ..data.sources import load_dataset
    from ..training.progress import tqdm_decode_progress

    if quiet:
        return load_dataset(source, cache)

    with tqdm_decode_progress() as progress:
        report = progress
        if job:

            def report(done, total, what):
                progress(done, total, what)
                job.loading(done, total, what)

        return load_dataset(source, cache, report)


def _callbacks(job: ProgressWriter | None) -> list:
    from ..training.progress import TqdmProgress

    return [TqdmProgress(), *([job] if job else [])]


class _StopFlag:
    """Ctrl+C, SIGTERM (the system or a process manager asking it to end),
    SIGHUP (its terminal closed), or the app's Stop (SIGINT, and a file in
    the job folder): the race stops within one step, commits what it
    finished, and its runs read cancelled, with why, and resume. A second
    signal quits at once. Under torchrun only SIGINT is taken: torchrun
    sends SIGTERM to the other ranks when one fails, and a rank waiting for
    the next step's all-reduce with a dead peer would only hang."""

    def __init__(self, job_dir: str | None = None, listen: bool = True):
        """listen=False: a flag no signal sets, for commands that do not stop cleanly."""
        self.stopped = False
        self.reason = ""
        self.cancel_file = Path(job_dir) / CANCEL_FILE if job_dir else None
        self.why = {}  # signal -> what it means, for those taken
        if listen:  # a training command: torch is loaded anyway (the others, the queue's runner too, load none)
            from ..training import distributed

            self.why = stop_signals()  # those this OS has (Windows: no SIGHUP)
            if distributed.launched():
                self.why = {signal.SIGINT: self.why[signal.SIGINT]}
        self.previous = {signum: signal.signal(signum, self._handle) for signum in self.why}

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        if self.stopped:  # a second signal quits at once
            raise KeyboardInterrupt
        self.stopped = True
        if self.cancel_file is not None and self.cancel_file.exists():
            self.reason = "stopped from the app"
        else:
            self.reason = f"stopped by {self.why[signum]}"

    def __call__(self) -> bool:
        if not self.stopped and self.cancel_file is not None and self.cancel_file.exists():
            self.stopped, self.reason = True, "stopped from the app"
        return self.stopped


def _train(
    models, config: TrainConfig, options: RunOptions, data_source, cache, runs_root, job, stop: _StopFlag
) -> int:
    from ..training.launch import new_race

    writable_folder(Path(runs_root).expanduser(), "the runs folder", RUNS_FOLDER_REMEDY)  # before the data loads
    with _processes(options.device, job) as (ranks, device):
        data = _ranked_data(ranks, data_source, cache, job)
        callbacks = _callbacks(job) if ranks.writer else []
        race, runs = new_race(
            models, data, config, runs_root, callbacks, should_stop=stop, ranks=ranks, device=device, options=options
        )
        if job:
            job.set_runs(runs)
        return _race(race, list(runs.values()), callbacks, stop)


def _resume(run_dirs, data_source, cache, device, job, stop: _StopFlag) -> int:
    from ..training.launch import resumed_race

    runs = [open_run(path) for path in run_dirs]
    for run in runs:
        status = run.status()["status"]
        if not resumable(status):
            raise ResExplorerError(f"{run.path} is {status}; only {', '.join(sorted(RESUMABLE))} runs resume")
        writable_folder(run.path, "the run folder", RUN_FOLDER_REMEDY)  # before the data loads
    options = runs[0].run_options()
    if device:
        options = dataclasses.replace(options, device=device)
    with _processes(options.device, job) as (ranks, rank_device):
        data = _ranked_data(ranks, data_source, cache, job)
        callbacks = _callbacks(job) if ranks.writer else []
        race = resumed_race(
            runs, data, callbacks, should_stop=stop, options=options, ranks=ranks, rank_device=rank_device
        )
        if job:
            job.set_runs({run.config()["model_name"]: run for run in runs})
        return _race(race, runs, callbacks, stop)


@contextlib.contextmanager
def _processes(device_name: str, job):
    """(ranks, device): this process's place under torchrun, which it joins
    here and leaves on the way out; alone (and the config's device) if not."""
    from ..training import distributed

    if not distributed.launched():
        yield distributed.ALONE, None
        return
    if job:
        raise ResExplorerError("the app's training jobs run one process; start torchrun from the command line")
    ranks, device = distributed.join(device_name)
    finished = False
    try:
        yield ranks, device
        finished = True
    finally:
        distributed.leave(finished)


def _ranked_data(ranks, source: str, cache: str | None, job):
    """The data set; under torchrun rank 0 loads it first (a download or a
    first decode fills the cache once), then the others read it."""
    from ..training import distributed

    data = distributed.writer_first(ranks, lambda: _load_data(source, cache, job))
    return data if ranks.writer else _load_data(source, cache, quiet=True)


def _race(race, runs, callbacks, stop: _StopFlag) -> int:
    started = time.perf_counter()
    try:
        race.run()
    finally:
        race.release()  # before the process group is left (distributed.leave)
        for callback in callbacks[:1]:  # the progress bar, where this process has one
            callback.close()
    if race.ranks.writer:
        if stop.reason:
            _say_why_cancelled(runs, stop.reason)
        _print_summary(runs, time.perf_counter() - started)
    return EXIT_INTERRUPTED if stop.stopped else 0


def _say_why_cancelled(runs, reason: str) -> None:
    """The cancelled runs' status says what stopped them."""
    for run in runs:
        status = run.status()
        if status.get("status") == RunState.CANCELLED:
            run.set_status(RunState.CANCELLED, f"{status.get('message') or 'cancelled'} ({reason})")


def _evaluate(args) -> int:
    from ..runs.checkpoints import load_run_checkpoint
    from ..training.evaluation import evaluate_checkpoint

    run = open_run(args.run_dir)
    ckpt = load_run_checkpoint(run, args.checkpoint)
    data = _load_data(args.data, args.cache)
    result = evaluate_checkpoint(ckpt, data, args.device)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} ({Path(args.run_dir).name}, epoch {ckpt['epoch']}): "
            f"test error {100 * result['test_error']:.2f}%, test loss {result['test_loss']:.4f} "
            f"on {result['n']} images"
        )
    return 0


def _build_reference(args, stop: _StopFlag) -> int:
    from .reference_build import build_reference_runs

    unknown = sorted(set(args.group or []) - set(REFERENCE_GROUPS))
    if unknown:
        raise ResExplorerError(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(REFERENCE_GROUPS)}")
    data = _load_data(args.data, args.cache)
    # Runs record the data folder by name and the command without this
    # machine's paths, so the shipped configs read the same everywhere.
    data.source = Path(args.data).name
    command = f"python -m resexplorer build-reference --data {data.source} --out {args.out}"
    command += "".join(f" --group {g}" for g in args.group or [])
    groups = [REFERENCE_GROUPS[name] for name in args.group or REFERENCE_GROUPS]
    callbacks = _callbacks(None)
    try:
        build_reference_runs(
            data,
            args.out,
            command,
            groups,
            args.device,
            callbacks,
            should_stop=stop,
            log=lambda text: print(text, flush=True),
        )
    finally:
        callbacks[0].close()
    return EXIT_INTERRUPTED if stop.stopped else 0


def _pack_images(args) -> int:
    from ..data.jpegpack import pack_folder

    info = pack_folder(args.folder, args.pack_file)
    print(
        f"{info['files']:,} files, {info['headers']} distinct header(s): "
        f"{info['original_bytes'] / 1e6:.1f} MB -> {info['packed_bytes'] / 1e6:.1f} MB in {args.pack_file}"
    )
    return 0


def _unpack_images(args) -> int:
    from ..data.jpegpack import unpack_folder

    print(f"{unpack_folder(args.pack_file, args.folder):,} files written under {args.folder}")
    return 0


def _app(args) -> int:
    from .app_command import serve_app

    return serve_app(args.streamlit_args)


def _check_claims(args) -> int:
    args.runs = args.runs or REFERENCE_RUNS_DIR  # found where the package finds it, installed or not
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
            reached = records[-1]["epoch"] if records else 0
            print(
                f"{run.config()['model_name']}: {run.status().get('status')}, "
                f"epoch {reached} of {run.config()['train']['epochs']}"
            )
        for claim in claims:
            print(claim)
        holds = holds and all(c.holds for c in claims)
    return 0 if holds else 1


def _list_runs(args) -> int:
    runs, damaged, not_runs = RunStore(args.runs).scan()
    if not runs and not damaged and not not_runs:
        print(f"no runs in {args.runs}")
        return 0
    if runs:
        _print_summary(runs)
    for run in runs:
        for problem in run.problems():
            print(f"note: {run.run_id}: {problem}")
    for run in damaged:
        print(f"{run.run_id}  damaged: {run.problem.removeprefix(f'{run.run_id} is damaged: ')}")
    for folder in not_runs:
        print(f"{folder.run_id}  {folder.problem.removeprefix(f'{folder.run_id} is ')}")
    return 0


def _delete(args) -> int:
    """Each run folder named, damaged or not, once it proves it is a run
    (RunStore.delete); one refusal does not stop the others."""
    refused = 0
    for given in args.run_dirs:
        path = Path(given).expanduser()
        try:
            RunStore(path.parent).delete(path.name)
        except ResExplorerError as err:
            print(f"error: {err}", file=sys.stderr)
            refused += 1
            continue
        print(f"deleted {path}")
    return EXIT_USAGE if refused else 0


def _export(args) -> int:
    from ..runs.transfer import export_runs

    runs = [open_run(path) for path in args.run_dirs]
    manifest = export_runs(runs, Path(args.output).expanduser())
    size = sum(entry["size"] for entry in manifest["files"].values())
    print(f"exported {len(runs)} run(s), {len(manifest['files'])} files ({size / 2**20:.1f} MB) to {args.output}")
    return 0


def _import(args) -> int:
    from ..runs.transfer import import_runs

    report = import_runs(Path(args.archive).expanduser(), RunStore(args.runs))
    for run_id in report.imported:
        print(f"imported {run_id}")
    for reason in report.skipped:
        print(f"skipped: {reason}")
    return 0


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _print_summary(runs, seconds: float | None = None) -> None:
    rows = [("run", "model", "status", "epochs", "train err %", "test err %", "best test %")]
    for run in runs:
        s = run.summary()
        rows.append(
            (
                s["run_id"],
                s["model"],
                s["status"],
                f"{s['epochs_done']}/{s['epochs']}",
                _percent(s["final_train_error"]),
                _percent(s["final_test_error"]),
                _percent(s["best_test_error"]),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    if seconds is not None:
        print(f"({seconds:.1f} s; runs in {runs[0].path.parent})")
