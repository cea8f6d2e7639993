"""What a run folder's files must hold: the checks every reader of a run
makes, so one damaged file is named (with what is wrong) instead of
raising in whichever page or command reads it first. Torch-free."""

from __future__ import annotations

import json

from ..errors import ResExplorerError
from ..nets.config import ModelConfig
from .recipe import TrainConfig

CONFIG_KEYS = ("model_name", "model", "train", "data")
NUMBER = (int, float)
MAYBE_NUMBER = (int, float, type(None))
# What each kind of metrics record must hold for its readers (curves,
# tables, claims); a record of another kind is kept as it is.
RECORD_FIELDS = {
    "train": {"step": int, "epoch": NUMBER, "loss": NUMBER, "error": NUMBER, "lr": NUMBER},
    "epoch": {
        "epoch": int,
        "step": int,
        "train_loss": MAYBE_NUMBER,
        "train_error": MAYBE_NUMBER,
        "test_loss": MAYBE_NUMBER,
        "test_error": MAYBE_NUMBER,
        "lr": NUMBER,
        "probes": (dict, type(None)),
    },
}
OPTIONAL_FIELDS = {"probes"}
PROBLEMS_SHOWN = 3  # per run; the rest are counted


def record_problem(record: dict) -> str | None:
    """What makes a metrics record unusable by its readers, or None."""
    kind = record.get("kind")
    fields = RECORD_FIELDS.get(kind)
    if fields is None:
        return None
    what = f"is {'an' if kind[0] in 'aeiou' else 'a'} {kind} record"
    for key, types in fields.items():
        if key not in record:
            if key not in OPTIONAL_FIELDS:
                return f"{what} without {key}"
        elif isinstance(record[key], bool) or not isinstance(record[key], types):
            return f"{what} whose {key} is not {'a dict' if types[0] is dict else 'a number'}"
    return None


def config_problem(config: dict) -> str | None:
    """What is wrong with a parsed config.json of our format, or None."""
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        return f"config.json lacks {', '.join(missing)}"
    if not isinstance(config["model_name"], str) or not isinstance(config["data"], dict):
        return "config.json's model name or data description is not of the right type"
    for key, what, parse in (("model", "model", ModelConfig.from_dict), ("train", "training", TrainConfig.from_dict)):
        try:
            if not isinstance(config[key], dict):
                raise TypeError("not a JSON object")
            parsed = parse(config[key])
        except ResExplorerError as err:
            return f"config.json's {what} settings are invalid ({str(err)[:120]})"
        except (TypeError, ValueError, AttributeError):  # Python's own words would not help
            return f"config.json's {what} settings are invalid (a value of the wrong type)"
        if key == "model" and parsed.name != config["model_name"]:
            return f"config.json's model settings describe {parsed.name}, not {config['model_name']}"
    return None


def parse_metrics(raw: bytes) -> tuple[list[dict], list[str]]:
    """A metrics.jsonl's usable records, and what is wrong with the lines
    that are not ("line 4 is not UTF-8 text"). The unfinished last line a
    killed writer leaves is skipped without a word: it is no damage."""
    records, problems = [], []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            problem = "is not a JSON object" if not isinstance(record, dict) else record_problem(record)
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested deeper than a parser goes
            problem = "is not valid JSON"
        if problem is None:
            records.append(record)
        elif number < len(lines):  # the last piece has no newline after it: a torn line, if any
            problems.append(f"line {number} {problem}")
    return records, problems


def describe_problems(problems: list[str]) -> list[str]:
    """Metrics problems as one line for a reader, the first few named."""
    if not problems:
        return []
    if len(problems) > PROBLEMS_SHOWN:
        problems = [*problems[:PROBLEMS_SHOWN], f"and {len(problems) - PROBLEMS_SHOWN} more"]
    return [f"metrics.jsonl {'; '.join(problems)}; skipped"]


# --- cached analyses (<run>/analysis/epoch-NNNN/<kind>-<key>.json) -------------
# A cached result is read by the pages as it stands, and an imported
# archive can carry any JSON there, so each kind's record is held to what
# its readers take from it (services/analysis.py, inside_series.py,
# tta_report.py); a record that fails is recomputed, not drawn.


def _is_number(value) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _number_grid(value) -> bool:
    return isinstance(value, list) and all(_numbers(row) for row in value)


def _named(check):
    """A dict of names to values that pass `check`."""
    return lambda value: isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


_SCORES = _named(_named(_is_number))  # strategy -> merge -> accuracy
_SLICE = {"axes": _number_grid, "loss": _numbers, "error": _numbers}
# kind -> {field: check}; and which fields run along which (same lengths).
ANALYSIS_FIELDS = {
    "inside": {
        "layer_names": _strings,
        "response_std": _numbers,
        "block_names": _strings,
        "branch_ratio": _numbers,
        "n_images": _int,
    },
    "gradients": {
        "layer_names": _strings,
        "weight_grad_norm": _numbers,
        "block_names": _strings,
        "input_grad_norm": _numbers,
        "loss": _is_number,
    },
    "lesion_single": {
        "block_names": _strings,
        "baseline_error": _is_number,
        "error_without": _numbers,
        "plain_pad": lambda v: isinstance(v, list) and all(isinstance(x, bool) for x in v),
    },
    "lesion_random": {"ks": _ints, "mean_error": _numbers, "errors": _number_grid, "draws": _int},
    "landscape_1d": _SLICE,
    "interpolation": _SLICE,
    "landscape_2d": {"axes": _number_grid, "loss": _number_grid, "error": _number_grid},
    "tta_testset": {
        "strategies": _strings,
        "merges": _strings,
        "accuracy": _SCORES,
        "ms_per_image": _named(_is_number),
        "views": _named(_is_number),
    },
    "tta_corruptions": {
        "strategies": _strings,
        "merges": _strings,
        "corruptions": _strings,
        "accuracy": _named(_SCORES),  # "clean" or "<corruption> <severity>" -> scores
    },
}
ALONG = {  # fields whose lists have one entry per entry of the first (non-empty)
    "inside": [("layer_names", "response_std"), ("block_names", "branch_ratio")],
    "gradients": [("layer_names", "weight_grad_norm"), ("block_names", "input_grad_norm")],
    "lesion_single": [("block_names", "error_without", "plain_pad")],
    "lesion_random": [("ks", "mean_error", "errors")],
}


def analysis_kind(file_name: str) -> str:
    """The kind of a cached analysis from its file's name, <kind>-<key>.json."""
    return file_name.rsplit("-", 1)[0]


def analysis_problem(kind: str, record) -> str | None:
    """What makes a cached analysis of this kind unusable, or None."""
    fields = ANALYSIS_FIELDS.get(kind)
    if fields is None:
        return f"{kind!r} is not a kind of analysis"
    if not isinstance(record, dict):
        return "is not a JSON object"
    if record.get("kind") != kind:
        return f"is not a {kind} result"
    for name, check in fields.items():
        if name not in record:
            return f"has no {name}"
        if not check(record[name]):
            return f"has a {name} of the wrong shape"
    for names in ALONG.get(kind, []):
        lengths = {len(record[name]) for name in names}
        if len(lengths) != 1 or 0 in lengths:
            return f"has {', '.join(names)} of different or no lengths"
    if (
        kind in ("landscape_1d", "interpolation")
        and [len(record["loss"]), len(record["error"])] != [len(record["axes"][0]) if record["axes"] else -1] * 2
    ):
        return "has a loss or error that does not follow its axis"
    return None
