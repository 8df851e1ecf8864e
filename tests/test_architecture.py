"""The architecture as a checked fact: the import-linter layers contract, no import cycle (imports inside
functions included), and no project import hidden inside a function."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "ecgcnn"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported project module, whether the import sits inside a function) for every import in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(node) for node in ast.walk(fn))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "ecgcnn"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "ecgcnn":
                prefix = node.module
            else:
                continue
            # "from . import data" names a module; "from .data import load" names the module itself
            names = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
        else:
            continue
        found += [(name, id(node) in inside) for name in names]
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {target for target, _ in _imports(path) if target in modules and target != name}
    return graph


def test_no_project_import_inside_a_function():
    hidden = [(str(p.relative_to(SRC)), target) for p in PACKAGE.rglob("*.py")
              for target, in_function in _imports(p) if in_function]
    assert hidden == []


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_cycle_check_can_fail(tmp_path, monkeypatch):
    """Guard the guard: a planted circle between two modules is found."""
    graph = {"a": {"b"}, "b": {"a"}}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: graph)
    try:
        test_no_import_cycle()
    except AssertionError:
        return
    raise AssertionError("a planted import cycle was not detected")


def test_import_linter_layers_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([exe], capture_output=True, text=True, cwd=SRC.parent, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_ruff_passes():
    """The rule set in pyproject.toml ([tool.ruff.lint]) over the package, the tests and the scripts."""
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([exe, "check", "src", "tests", "scripts"], capture_output=True, text=True,
                            cwd=SRC.parent, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_passes_on_the_public_api_and_the_core():
    """The type checker over the files listed in pyproject.toml ([tool.mypy]): ecgcnn/__init__.py and the core."""
    result = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=SRC.parent,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
