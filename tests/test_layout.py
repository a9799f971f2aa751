"""The autograder's layout is its architecture: one folder per chapter, no import circle, and
the grading parent (CLI, grade-all, views) never imports torch or learner code."""

import ast
import subprocess
import sys

from autograder.exercises import CHAPTERS
from autograder.paths import CHAPTER_FOLDERS, PACKAGE
from conftest import PROJECT


def module_name(path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules: set[str]) -> set[str]:
    """The autograder modules ``path`` imports, at the top or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            # `from package import submodule` needs the submodule; any other name, the package itself
            found.update(submodules if len(submodules) == len(node.names) else submodules | {target})
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) - {"autograder"} for name, path in paths.items()}


def test_no_import_circle():
    graph, finished, path = import_graph(), set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in finished:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        finished.add(module)

    for module in sorted(graph):
        visit(module)


def test_each_chapter_is_one_folder_of_four_modules_and_its_catalogue_is_plain_data():
    folders = sorted(p.name for p in CHAPTER_FOLDERS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == [f"ch{c}" for c in CHAPTERS]
    for folder in folders:
        modules = {p.name for p in (CHAPTER_FOLDERS / folder).glob("*.py")}
        assert modules == {"__init__.py", "exercises.py", "misconceptions.py", "variants.py", "graders.py"}, folder
        for data in ("exercises.py", "misconceptions.py"):
            tree = ast.parse((CHAPTER_FOLDERS / folder / data).read_text(encoding="utf-8"))
            assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))], \
                f"{folder}/{data} should be plain data"


def test_the_grading_parent_imports_neither_torch_nor_pytest():
    code = ("import sys, autograder.cli, autograder.classroom, autograder.sandbox, autograder.views, "
            "autograder.gradescope, autograder.feedback\n"
            "print(sorted({'torch', 'pytest'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
