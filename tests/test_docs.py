"""README and docs/ kept honest where a machine can tell: every command
shown is one the command line accepts, every script a command runs exists
and takes the flags given, every link and picture resolves, every module
named exists, every module of the project is on the architecture map, and
the command reference is what docs/make_cli_reference.py writes today."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from helpers import ROOT

from resexplorer.cli.main import _parser

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
PICTURES = ROOT / "docs" / "pictures"
PICTURES_BUDGET = 600 * 1024  # "a few hundred KB in all"
SUBPACKAGES = ("nets", "data", "runs", "training", "science", "services", "cli")


def _name(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def _code_lines(text: str) -> list[str]:
    """The lines of its code blocks (indented four spaces, or fenced), with
    backslash continuations joined."""
    lines, fenced, joined = [], False, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            continue
        joined += line.strip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
            continue
        lines.append(joined)
        joined = ""
    return lines


COMMAND = re.compile(r"(\w+=\S+\s+)*(\S*python3?|bash|torchrun|\S*streamlit|resexplorer|\S*pip)\s")


def _commands(doc: Path) -> list[list[str]]:
    """Each shown command as its words, with a trailing comment dropped (a
    code block's other lines, a file layout say, are not commands)."""
    lines = _code_lines(doc.read_text(encoding="utf-8"))
    return [shlex.split(line.split("  #")[0]) for line in lines if COMMAND.match(line)]


def _cli_arguments(words: list[str]) -> list[str] | None:
    """The arguments after `python -m resexplorer`, `resexplorer` or
    torchrun's `-m resexplorer`; None if the command is not one of ours."""
    for i, word in enumerate(words):
        if word == "resexplorer" and i > 0 and words[i - 1] == "-m":
            return words[i + 1 :]
    if words and words[0] == "resexplorer":
        return words[1:]
    return None


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_command_shown_is_one_the_command_line_accepts(doc):
    for words in _commands(doc):
        arguments = _cli_arguments(words)
        if arguments is None or arguments[0] == "app":  # app passes Streamlit's own options through
            continue
        try:
            _parser().parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{_name(doc)} shows a command the command line refuses: {shlex.join(words)}")


def test_the_command_check_finds_a_command_the_command_line_refuses(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("Train:\n\n    python -m resexplorer train --model resnet-20 --epochs 3\n")
    (arguments,) = [a for a in map(_cli_arguments, _commands(doc)) if a]
    with pytest.raises(SystemExit):  # --data is required
        _parser().parse_args(arguments)


def _scripts(words: list[str]) -> list[tuple[str, list[str]]]:
    """(script path, its flags) of a command that runs a file of this
    project: python bench/x.py --repeats 3, bash tests/setup_and_run.sh,
    streamlit run app.py."""
    for i, word in enumerate(words):
        if re.fullmatch(r"[\w./-]+\.(py|sh)", word) and not word.startswith(("/", "-")):
            runner = words[i - 1] if i else ""
            if runner.endswith(("python", "python3", "bash")) or runner == "run":
                return [(word, [w.split("=")[0] for w in words[i + 1 :] if w.startswith("--")])]
    return []


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_script_a_command_runs_exists_and_takes_the_flags_given(doc):
    for words in _commands(doc):
        for script, flags in _scripts(words):
            path = ROOT / script
            assert path.is_file(), f"{_name(doc)} runs {script}, which does not exist"
            if script == "app.py":  # the flags are Streamlit's
                continue
            source = path.read_text(encoding="utf-8")
            missing = [flag for flag in flags if f'"{flag}"' not in source]
            assert not missing, f"{_name(doc)}: {script} has no {missing}"


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(doc: Path) -> list[tuple[bool, str]]:
    """(is a picture, target) of each Markdown link outside code."""
    text = "\n".join(line for line in doc.read_text(encoding="utf-8").splitlines() if not line.startswith("    "))
    return [(bang == "!", target) for bang, target in re.findall(r"(!?)\[[^\]]*\]\(([^)\s]+)\)", text)]


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_link_and_picture_resolves(doc):
    for picture, target in _links(doc):
        if re.match(r"(https?|mailto):", target):
            continue  # outside the project: no network here to follow it
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        assert path.exists(), f"{_name(doc)} links to {target}, which does not exist"
        if picture:
            assert path.suffix == ".png" and path.stat().st_size > 0, f"{_name(doc)}: {target} is not a picture"
        if anchor:
            assert anchor in _anchors(path), f"{_name(doc)} links to #{anchor}, which {path.name} has no heading for"


def test_the_link_check_knows_githubs_anchors():
    assert _slug(" The reference runs") == "the-reference-runs"
    assert _slug(" A class on one server") == "a-class-on-one-server"
    assert _slug(" resume, evaluate, runs") == "resume-evaluate-runs"


def test_the_pictures_are_small():
    pictures = list(PICTURES.glob("*.png"))
    assert pictures, "no pictures: python docs/make_pictures.py makes them"
    total = sum(p.stat().st_size for p in pictures)
    assert total <= PICTURES_BUDGET, f"the pictures take {total // 1024} KB, over {PICTURES_BUDGET // 1024} KB"
    shown = {(doc.parent / t).resolve() for doc in DOCS for is_picture, t in _links(doc) if is_picture}
    unused = [p.name for p in pictures if p.resolve() not in shown]
    assert not unused, f"pictures no doc shows: {unused}"


def _named_files(text: str) -> set[str]:
    """Project files a text names: resexplorer/runs/store.py, ui/text.py,
    and, inside the package, runs/store.py."""
    named = set(re.findall(r"\b((?:resexplorer|ui|pages|tests|bench|docs)/[\w/]+\.(?:py|js|html|sh))\b", text))
    inside = re.findall(rf"(?<![\w/])((?:{'|'.join(SUBPACKAGES)})/\w+\.py)\b", text)
    return named | {f"resexplorer/{path}" for path in inside}


def _defines(module_file: Path, name: str) -> bool:
    source = module_file.read_text(encoding="utf-8")
    return re.search(rf"^\s*(?:def |class )?{re.escape(name)}\b", source, re.MULTILINE) is not None


def _named_objects(text: str) -> set[str]:
    """Dotted names a text gives, resexplorer.runs.transfer.UPLOAD_MB."""
    return set(re.findall(r"\bresexplorer(?:\.\w+)+", text))


def _dotted_problem(dotted: str) -> str | None:
    """Why a dotted name names nothing in the project, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            rest = parts[cut:]
            if rest and not _defines(module, rest[0]):
                return f"{'.'.join(parts[:cut])} defines no {rest[0]}"
            return None
    return "no such module"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_no_doc_names_a_module_that_does_not_exist(doc):
    text = doc.read_text(encoding="utf-8")
    missing = sorted(path for path in _named_files(text) if not (ROOT / path).exists())
    assert not missing, f"{_name(doc)} names files that do not exist: {missing}"
    wrong = {name: why for name in _named_objects(text) if (why := _dotted_problem(name))}
    assert not wrong, f"{_name(doc)} names what does not exist: {wrong}"


def test_the_module_check_finds_a_module_that_does_not_exist():
    assert _named_files("see `resexplorer/runs/gone.py` and services/ghost.py") == {
        "resexplorer/runs/gone.py",
        "resexplorer/services/ghost.py",
    }
    assert _dotted_problem("resexplorer.runs.gone") == "resexplorer.runs defines no gone"
    assert _dotted_problem("resexplorer.gone.store") == "resexplorer defines no gone"
    assert _dotted_problem("resexplorer.runs.transfer.NOT_A_NAME") == "resexplorer.runs.transfer defines no NOT_A_NAME"
    assert _dotted_problem("resexplorer.runs.transfer") is None


def _map_block(heading: str) -> list[str]:
    """The code block under a heading of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("    ")]


def _mapped_files(lines: list[str], root: str) -> set[str]:
    """The files a layout block lists: `  config.py` under `nets/` is
    resexplorer/nets/config.py; `(+ chart_view.js)` counts as listed."""
    found, folders = set(), []
    for line in lines:
        depth = (len(line) - len(line.lstrip()) - 4) // 2
        token = line.split()[0]
        if not re.fullmatch(r"[\w.]+/?", token) or depth > len(folders):
            continue  # a description's next line
        folders = folders[:depth]
        if token.endswith("/"):
            folders.append(token.rstrip("/"))
            continue
        found.add("/".join([root, *folders, token]))
        found.update(f"{root}/{extra}" for extra in re.findall(r"\(\+ ([\w.]+)\)", line))
    return found


@pytest.mark.parametrize(
    ("heading", "root"), [("The package, in layers", "resexplorer"), ("The app's shared parts (`ui/`)", "ui")]
)
def test_every_module_is_on_the_architecture_map_and_every_mapped_module_exists(heading, root):
    mapped = _mapped_files(_map_block(heading), root)
    actual = {
        str(p.relative_to(ROOT))
        for p in (ROOT / root).rglob("*")
        if p.suffix in {".py", ".js", ".html"} and p.name not in {"__init__.py", "__main__.py"}
    }
    assert not mapped - actual, f"docs/architecture.md maps files that do not exist: {sorted(mapped - actual)}"
    assert not actual - mapped, f"docs/architecture.md leaves out: {sorted(actual - mapped)}"


def test_the_command_reference_is_what_the_code_says():
    spec = importlib.util.spec_from_file_location("make_cli_reference", ROOT / "docs" / "make_cli_reference.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    written = (ROOT / "docs" / "cli-reference.md").read_text(encoding="utf-8")
    assert written == maker.reference_text(), "docs/cli-reference.md is stale: python docs/make_cli_reference.py"
    for name, _help, _parser_of in maker._commands(_parser()):
        assert f"## {name}\n" in written


def test_every_doc_says_who_it_is_for():
    for doc in (ROOT / "docs").glob("*.md"):
        opening = doc.read_text(encoding="utf-8").split("\n\n")[1]
        assert opening.startswith("*For "), f"{_name(doc)} does not start by saying who it is for"
