"""No two project modules import each other, directly or through others.

Every ``import`` counts, at the top of a module, inside a function or under ``TYPE_CHECKING``: an import moved into a
function only hides a loop, it does not remove it. Imports of a package's ``__init__`` count as imports of that
package; the implicit import of a parent package by its submodules does not.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("cloud", "shared", "edge_agent", "firmware_sim", "iotsphere")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, tree: ast.AST, is_package: bool, modules: set[str]) -> set[str]:
    """The project modules ``name`` imports: ``from a import b`` names module ``a.b`` when there is one, else ``a``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".")[: len(name.split(".")) - node.level + is_package] if node.level else []
            target = ".".join(filter(None, [*base, node.module]))  # a relative import starts from this package
            for alias in node.names:
                submodule = ".".join(filter(None, [target, alias.name]))
                found.add(submodule if submodule in modules else target)
    return (found & modules) - {name}


def import_graph(root: Path = PROJECT) -> dict[str, set[str]]:
    paths = {_module_name(path): path for package in PACKAGES for path in (root / package).rglob("*.py")}
    modules = set(paths)
    return {
        name: _imports(name, ast.parse(path.read_text()), path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return exc.args[1]
    return None


def test_no_project_modules_import_each_other() -> None:
    cycle = first_cycle(import_graph())

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_check_sees_loops_hidden_in_functions_and_type_checking_blocks() -> None:
    modules = {"a", "b", "c", "pkg", "pkg.x"}
    lazy = _imports("a", ast.parse("def f():\n    import b\n"), False, modules)
    typing_only = _imports("b", ast.parse("if TYPE_CHECKING:\n    from c import Thing\n"), False, modules)
    relative = _imports("pkg.x", ast.parse("from . import y\nfrom .. import a\n"), False, modules)

    assert (lazy, typing_only, relative) == ({"b"}, {"c"}, {"pkg", "a"})
    assert first_cycle({"a": lazy, "b": typing_only, "c": {"a"}}) is not None
    assert first_cycle({"a": lazy, "b": typing_only, "c": set()}) is None
