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
        except json.JSONDecodeError:
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
