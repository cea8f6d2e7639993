"""The Playground's training: deep plain and residual MLPs on 2-D points,
trained in steps of a second's fraction, live.

PlaygroundConfig is the whole experiment (what the page's URL holds);
PointRace trains its models on identical mini-batches, one step at a time,
and takes snapshots (plain numbers for the charts); PlaygroundRunner runs a
race in a background thread of the server for one browser session: it
plays, pauses, steps once, stops at the step cap or while the session is
not seen (AWAY_AFTER_S: its page closed), and trains only while it holds one of the
server's Slots (one per core), so a class on one server shares the cores
and a user who has to wait is told so.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from ..data.points import GENERATORS, SPAN, make_points
from ..errors import ConfigError
from ..nets.mlp import MLPConfig, PointNet, build_point_net, twin_of

SHORTCUTS = ("off", "on", "both")  # both: the plain net and its residual twin
OPTIMIZERS = ("sgd", "adam")
# What the page offers, and so all a URL may ask for.
MAX_PLAYGROUND_DEPTH = 202
WIDTHS = (4, 8, 16, 32, 64)
LEARNING_RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256)
NOISE_STEP = 0.05
STEP_CAP = 2000
GRID = 41  # points per axis of the decision surface
SNAPSHOT_S = 0.25  # a snapshot at most this often while playing (the page draws twice a second)
SLICE_S = 0.05  # steps run between two looks at pause, the cap and the session
# A session not seen for this long (its page closed, or another page open)
# has gone away: its training stops, and goes on if the page draws again.
# The page draws twice a second, so this is four missed draws.
AWAY_AFTER_S = 2.0
PAUSED_THREAD_S = 60.0  # a paused experiment's thread waits this long for Play, then ends
MOMENTUM = 0.9
# The defaults tell the whole story within this many steps (two or three
# seconds on a laptop's CPU): the deep plain net near chance, the same net
# with shortcuts and a shallow plain net fitting the spirals. Training error
# at step 200, over seeds 0-3 on one or two threads: plain-50 41-55%,
# residual-50 0-6%, plain-6 0-4% (tests/test_playground.py holds seeds 0-3).
# Sooner the curves are noisier: at step 100, residual-50 reads 3-41%.
FINDING_STEPS = 200


@dataclass(frozen=True)
class PlaygroundConfig:
    """One experiment; its fields are the page's settings and its URL's keys."""

    data: str = "spirals"
    noise: float = 0.0
    seed: int = 0
    depth: int = 50
    width: int = 16
    shortcut: str = "both"
    batch_norm: bool = True
    zero_init: bool = False
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 128

    def __post_init__(self):
        if self.data not in GENERATORS:
            raise ConfigError(f"data {self.data!r} is none of {', '.join(GENERATORS)}")
        if not 0 <= self.noise <= 0.5 or abs(self.noise / NOISE_STEP - round(self.noise / NOISE_STEP)) > 1e-6:
            raise ConfigError(f"noise {self.noise} is not one of 0, {NOISE_STEP:g}, ... 0.5")
        if self.shortcut not in SHORTCUTS:
            raise ConfigError(f"shortcut {self.shortcut!r} is none of {', '.join(SHORTCUTS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimiser {self.optimizer!r} is none of {', '.join(OPTIMIZERS)}")
        for name, value, choices in (
            ("width", self.width, WIDTHS),
            ("learning rate", self.lr, LEARNING_RATES),
            ("batch size", self.batch_size, BATCH_SIZES),
        ):
            if value not in choices:
                raise ConfigError(f"{name} {value} is none of {', '.join(f'{c:g}' for c in choices)}")
        if not 0 <= self.seed < 2**31:
            raise ConfigError(f"seed {self.seed} is not from 0 to 2^31 - 1")
        if self.depth > MAX_PLAYGROUND_DEPTH:
            raise ConfigError(f"depth {self.depth} is over the {MAX_PLAYGROUND_DEPTH} layers the Playground trains")
        MLPConfig(self.depth, self.width)  # checks depth

    def model_configs(self) -> dict[str, MLPConfig]:
        """name -> net: "plain", "residual" or both."""
        wanted = {"off": [False], "on": [True], "both": [False, True]}[self.shortcut]
        return {
            ("residual" if shortcut else "plain"): MLPConfig(
                self.depth, self.width, shortcut, self.batch_norm, self.zero_init
            )
            for shortcut in wanted
        }

    # The URL: one query parameter per field, as text.
    def to_query(self) -> dict[str, str]:
        return {key: _text(value) for key, value in asdict(self).items()}

    @classmethod
    def from_query(cls, query: dict) -> tuple[PlaygroundConfig, list[str]]:
        """The experiment a URL names, and what in it could not be used (the
        default stands in for each such setting)."""
        values, problems = {}, []
        for field in fields(cls):
            if field.name not in query:
                continue
            raw = str(query[field.name])
            try:
                values[field.name] = _parse(raw, type(field.default))
                cls(**{field.name: values[field.name]})  # checked alone, so one bad value costs only itself
            except (ValueError, ConfigError) as err:
                values.pop(field.name, None)
                problems.append(f"{field.name}={raw[:40]}: {err}")
        return cls(**values), problems


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse(raw: str, kind: type):
    if kind is bool:
        if raw.lower() in ("1", "true", "on", "yes"):
            return True
        if raw.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError("not on (1) or off (0)")
    if kind is int:
        return int(raw)
    if kind is float:
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    return raw


# --- the race: models stepping on identical batches ---------------------------


class PointRace:
    """The experiment's models, from the same initial weights, trained on the
    same mini-batches in the same order."""

    def __init__(self, config: PlaygroundConfig):
        self.config = config
        self.points = make_points(config.data, config.noise, config.seed)
        configs = config.model_configs()
        first = build_point_net(next(iter(configs.values())), config.seed)
        self.models = {
            name: first if i == 0 else twin_of(first, c.shortcut) for i, (name, c) in enumerate(configs.items())
        }
        self.optimizers = {name: self._optimizer(model) for name, model in self.models.items()}
        self.diverged: dict[str, int] = {}  # name -> the step its loss stopped being finite
        self.step = 0
        self._batches = torch.Generator().manual_seed(config.seed + 1)
        self._order = torch.empty(0, dtype=torch.long)
        self.history: dict = {"step": [], **{name: {k: [] for k in _CURVES} for name in self.models}}
        self.point_lists = chart_points(self.points)  # the charts' points: they never change, so listed once
        self._record()  # step 0: the initial weights

    def _optimizer(self, model: PointNet) -> torch.optim.Optimizer:
        if self.config.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=self.config.lr, foreach=True)
        return torch.optim.SGD(model.parameters(), lr=self.config.lr, momentum=MOMENTUM, foreach=True)

    def next_batch(self) -> torch.Tensor:
        """The indices of the next mini-batch: a fresh shuffle every epoch."""
        size = min(self.config.batch_size, len(self.points.train_y))
        if len(self._order) < size:
            self._order = torch.randperm(len(self.points.train_y), generator=self._batches)
        batch, self._order = self._order[:size], self._order[size:]
        return batch

    def train_step(self) -> None:
        """One step of every model that has not diverged, on one batch."""
        batch = self.next_batch()
        x, y = self.points.train_x[batch], self.points.train_y[batch]
        for name, model in self.models.items():
            if name in self.diverged:
                continue
            optimizer = self.optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                self.diverged[name] = self.step + 1
                continue
            loss.backward()
            optimizer.step()
        self.step += 1

    @torch.no_grad()
    def _scores(self, model: PointNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        logits = model(x)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) != y).float().mean())

    def _record(self) -> None:
        """Loss and error of every model on all training and test points,
        as the models stand (BN on its running statistics)."""
        self.history["step"].append(self.step)
        p = self.points
        for name, model in self.models.items():
            model.eval()
            train = self._scores(model, p.train_x, p.train_y)
            test = self._scores(model, p.test_x, p.test_y)
            model.train()
            for key, value in zip(_CURVES, (*train, *test)):
                self.history[name][key].append(value if math.isfinite(value) else None)

    def snapshot(self) -> dict:
        """What the charts draw, as plain numbers: the curves so far; each
        model's decision surface, gradient norm per layer (of the last
        step) and ||F(x)|| / ||x|| per block (on the training points)."""
        if self.history["step"][-1] != self.step:
            self._record()
        axis = torch.linspace(-SPAN, SPAN, GRID)
        grid = torch.cartesian_prod(axis, axis).flip(1)  # [GRID*GRID, 2]: x varies fastest, rows are y
        models = {}
        with torch.no_grad():
            for name, model in self.models.items():
                model.eval()
                surface = torch.softmax(model(grid), 1)[:, 1].reshape(GRID, GRID)
                ratios = model.branch_ratios(self.points.train_x)
                model.train()
                grads = [
                    float(layer.weight.grad.norm()) if layer.weight.grad is not None else None
                    for _, layer in model.linear_layers()
                ]
                models[name] = {
                    "surface": [[round(float(v), 4) for v in row] for row in surface],
                    "grad_norms": grads,
                    "branch_ratios": ratios,
                    "diverged_at": self.diverged.get(name),
                }
        first = next(iter(self.models.values()))
        return {
            "step": self.step,
            "history": {
                "step": list(self.history["step"]),
                **{n: {k: list(v) for k, v in self.history[n].items()} for n in self.models},
            },
            "models": models,
            "axis": [float(v) for v in axis],
            "layer_names": [name for name, _ in first.linear_layers()],
        }


_CURVES = ("train_loss", "train_error", "test_loss", "test_error")


def chart_points(points) -> dict[str, tuple[list, list, list]]:
    """The training and test points as the charts take them: (xs, ys, labels)."""
    return {
        "train": (points.train_x[:, 0].tolist(), points.train_x[:, 1].tolist(), points.train_y.tolist()),
        "test": (points.test_x[:, 0].tolist(), points.test_x[:, 1].tolist(), points.test_y.tolist()),
    }


# --- the server's share: slots ------------------------------------------------


class Slots:
    """How many playground trainings the server runs at once (one per core):
    more would only slow every one of them down."""

    def __init__(self, size: int | None = None):
        self.size = size or os.cpu_count() or 1
        self._free = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self.used = 0

    def take(self) -> bool:
        if not self._free.acquire(blocking=False):
            return False
        with self._lock:
            self.used += 1
        return True

    def give_back(self) -> None:
        with self._lock:
            self.used -= 1
        self._free.release()


SERVER_SLOTS = Slots()


# --- one browser session's training, in the background --------------------------


class _OneThread:
    """While any experiment trains, the server's torch runs on one thread.
    A Playground step is many tiny ops; on a background thread with two,
    each step ran 10 times slower than on the main thread (30 steps: 3.7 s
    against 0.47 s), as the other threads' OpenMP and MKL workers spun on
    the same cores; torch's thread count is the process's, not a thread's,
    so it is set for all while any trains and given back when none does."""

    def __init__(self):
        self._lock = threading.Lock()
        self._training = 0
        self._saved = 1

    def enter(self) -> None:
        with self._lock:
            if self._training == 0:
                self._saved = torch.get_num_threads()
                torch.set_num_threads(1)
            self._training += 1

    def leave(self) -> None:
        with self._lock:
            self._training -= 1
            if self._training == 0:
                torch.set_num_threads(self._saved)


ONE_THREAD = _OneThread()
_RUNNERS: weakref.WeakSet = weakref.WeakSet()  # every runner alive, stopped when the server exits


@atexit.register
def stop_all() -> None:
    """Stop every runner and wait for its thread. At exit too: a thread still
    inside torch as the interpreter exits aborts it ("terminate called
    without an active exception")."""
    for runner in list(_RUNNERS):
        runner.stop()
    for runner in list(_RUNNERS):
        runner.join(2.0)


class PlaygroundRunner:
    """A race trained in a thread of its own while playing. States: paused,
    waiting (for a slot), playing, away (its session was not seen for
    AWAY_AFTER_S: the thread has ended, and seen() starts it again), done
    (the step cap), stopped (a new experiment replaced it). The state
    changes under one lock, from the page's threads and the runner's own."""

    def __init__(self, config: PlaygroundConfig, slots: Slots = SERVER_SLOTS, step_cap: int = STEP_CAP):
        self.config = config
        self.race = PointRace(config)
        self.slots, self.step_cap = slots, step_cap
        self.state = "paused"
        self.waiting_since: float | None = None  # when it began to wait for a slot
        self._state = threading.Lock()  # the state, and whether a thread runs
        self._race = threading.Lock()  # the race: one stepper at a time
        self._wake = threading.Event()
        self._running = False  # a thread is in _run (set and cleared under _state)
        self._holding = False  # a slot is held (only the thread touches it)
        self._seen = time.monotonic()
        self._snapshot = self.race.snapshot()
        self.steps_per_s = 0.0
        _RUNNERS.add(self)

    @property
    def snapshot(self) -> dict:
        return self._snapshot

    def seen(self) -> None:
        """The session is still there (the page calls this as it draws): an
        experiment that stopped while it was away plays on."""
        self._seen = time.monotonic()
        if self.state == "away":
            self.play(after_away=True)

    def play(self, after_away: bool = False) -> None:
        with self._state:
            if self.state in ("done", "stopped") or (after_away and self.state != "away"):
                return
            if self.state not in ("playing", "waiting"):
                self.state, self.waiting_since = "waiting", time.monotonic()
            self._seen = time.monotonic()
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="playground", daemon=True).start()
        self._wake.set()

    def pause(self) -> None:
        with self._state:
            if self.state not in ("playing", "waiting"):
                return
            self.state = "paused"
        self._wake.set()
        with self._race:  # the slice under way ends first: the paused view shows the paused step
            self._snapshot = self.race.snapshot()

    def step_once(self) -> None:
        """One step, while paused."""
        if self.state != "paused" or self.race.step >= self.step_cap:
            return
        with self._race:
            self.race.train_step()
            self._snapshot = self.race.snapshot()
        if self.race.step >= self.step_cap:
            self._set("done", when=("paused",))

    def stop(self) -> None:
        with self._state:
            self.state = "stopped"
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self._running and time.monotonic() < deadline:
            time.sleep(0.01)

    def _set(self, state: str, when: tuple[str, ...]) -> bool:
        """Move to `state` if the state is still one of `when`: a Pause or a
        Stop from the page is never overwritten by the thread's own change."""
        with self._state:
            if self.state not in when:
                return False
            self.state = state
            return True

    def _exit_if(self, states: tuple[str, ...]) -> bool:
        """Whether the thread ends now; decided under the lock, so a play()
        at that moment starts a new thread rather than trust this one."""
        with self._state:
            if self.state in states:
                self._release()  # here, not after: a thread started next may take a slot at once
                self._running = False
                return True
            return False

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.slots.give_back()
            ONE_THREAD.leave()

    def _take(self) -> bool:
        self._holding = self.slots.take()
        if self._holding:
            ONE_THREAD.enter()
        return self._holding

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # a bug: the thread ends, and says so in the server's log
            with self._state:
                self._release()
                self._running = False
                self.state = "stopped"
            raise

    def _loop(self) -> None:
        last_snapshot, window = 0.0, (time.perf_counter(), self.race.step)
        while True:
            if time.monotonic() - self._seen > AWAY_AFTER_S:
                self._set("away", when=("playing", "waiting"))
            if self._exit_if(("stopped", "done", "away")):
                return
            if self.state == "paused":
                self._release()
                if time.monotonic() - self._seen > PAUSED_THREAD_S and self._exit_if(("paused",)):
                    return  # a paused experiment's thread ends; play() starts another
                self._wake.wait(1.0)
                self._wake.clear()
                window = (time.perf_counter(), self.race.step)
                continue
            if not self._holding and not self._take():
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            self._set("playing", when=("waiting",))
            with self._race:
                if self.state != "playing":  # paused or stopped meanwhile: looked at again above
                    continue
                until = time.perf_counter() + SLICE_S
                while time.perf_counter() < until and self.race.step < self.step_cap:
                    self.race.train_step()
                now = time.perf_counter()
                if now - last_snapshot >= SNAPSHOT_S or self.race.step >= self.step_cap:
                    self._snapshot = self.race.snapshot()
                    last_snapshot = time.perf_counter()
                    started, first = window
                    self.steps_per_s = (self.race.step - first) / max(now - started, 1e-9)
            if self.race.step >= self.step_cap or len(self.race.diverged) == len(self.race.models):
                self._set("done", when=("playing",))
