"""Write docs/cli-reference.md from the command line's own argparse
definitions, so the reference cannot drift from the code.

    python docs/make_cli_reference.py

tests/test_docs.py fails while the file differs from what this writes.
The usage lines are built here (and begin with "usage:", so the docs
test reads them as synopses, not as commands to parse) rather than by argparse's formatter, whose
wrapping and layout change with the terminal's width and Python's version.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resexplorer.cli.main import PROG, _parser  # noqa: E402  (after the path is set)

OUT = ROOT / "docs" / "cli-reference.md"
HEADER = f"""# Command reference

*For anyone scripting the app:* every command of `{PROG}` (or `resexplorer`,
once installed) with every flag and its default. Generated from the code by
`python docs/make_cli_reference.py`: do not edit it by hand. What the
commands are for, with more examples, is in [cli.md](cli.md).
"""


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each command meant for people: the
    ones given a help line (run-job and run-queue are the app's own)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(c.dest, c.help, sub.choices[c.dest]) for c in sub._choices_actions]


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _shown(action: argparse.Action) -> str:
    """How an argument is written: `--epochs EPOCHS`, `RUN_DIR ...`."""
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"{name} ..." if action.nargs in ("+", "*") else name
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:
        return flag
    if action.choices:
        return f"{flag} {{{','.join(map(str, action.choices))}}}"
    return f"{flag} {action.metavar or action.dest.upper()}"


def _usage(name: str, parser: argparse.ArgumentParser) -> str:
    parts = []
    for action in _arguments(parser):
        shown = _shown(action)
        parts.append(shown if action.required or not action.option_strings else f"[{shown}]")
    return " ".join([PROG, name, *parts])


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("%%", "%")


def reference_text() -> str:
    lines = [HEADER]
    for name, help_line, parser in _commands(_parser()):
        lines += [
            f"## {name}",
            "",
            f"{help_line[0].upper()}{help_line[1:]}.",
            "",
            f"    usage: {_usage(name, parser)}",
            "",
        ]
        if _arguments(parser):
            lines += ["| argument | meaning | default |", "|---|---|---|"]
        for action in _arguments(parser):
            names = ", ".join(action.option_strings) or (action.metavar or action.dest)
            default = _default(action)
            meaning = _cell(action.help)
            if default:  # the help's own "(default: ...)" would say it twice
                meaning = re.sub(r"\s*\(default: [^)]*\)$", "", meaning)
            lines.append(f"| `{names}` | {meaning} | {default} |")
        if parser.epilog:
            lines += ["", "Examples:", ""]
            lines += [f"    {line.strip()}" for line in parser.epilog.splitlines() if line.strip().startswith(PROG)]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(reference_text(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
