"""One fact, one place: no constant or type alias is written out again in a
second module of the package (the same name given the same value), where
the copies could drift apart."""

import ast
from collections import defaultdict

from helpers import ROOT

PACKAGE_DIRS = [ROOT / "resexplorer", ROOT / "ui", ROOT / "pages"]


def _module_constants(path):
    """(name, value as source) of every module-level assignment to a
    capitalised name: constants (DEPTHS) and type aliases (Progress)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and target.id[:1].isupper() and value is not None:
                yield target.id, ast.dump(value)


def written_twice() -> dict[str, list[str]]:
    places = defaultdict(list)
    for folder in PACKAGE_DIRS:
        for path in sorted(folder.rglob("*.py")):
            for name, value in _module_constants(path):
                places[(name, value)].append(str(path.relative_to(ROOT)))
    return {name: where for (name, _), where in places.items() if len(where) > 1}


def test_no_constant_or_alias_is_written_out_in_two_modules():
    assert written_twice() == {}


def test_the_check_finds_a_copy(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(
            "DEPTHS = (8, 14, 20)\nOWN = 1\n" if name == "a" else "DEPTHS = (8, 14, 20)\n"
        )
    monkeypatch.setattr(__import__(__name__), "PACKAGE_DIRS", [tmp_path])
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert written_twice() == {"DEPTHS": ["a.py", "b.py"]}
