"""The seams between the packages: each package is used through its `__init__` only, modules import each other
without cycles, and modules, functions, classes and lines stay a size a reader can hold in mind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rmsearch"

MODULE_LINES, FUNCTION_LINES, LINE_CHARS, CLASS_METHODS = 400, 60, 120, 12
LARGER = {
    # "module" or "module:function" -> why it stays larger than the limits (none today)
}
BROADER = {
    # "module:Class" -> why it keeps more than CLASS_METHODS methods
    # (none today)
}


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("rmsearch", *path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text()))
    return out


MODULES = _modules()


def _package(module: str) -> str | None:
    """The subpackage a module belongs to (rmsearch.heads for rmsearch.heads._torch); None at the top level."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in MODULES and \
        MODULES[".".join(parts[:2])][0].name == "__init__.py" else None


def _imports(tree: ast.Module):
    """Every `from rmsearch... import ...` in a module, at any depth (imports inside functions count)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rmsearch":
            yield node


def test_packages_use_each_other_through_their_public_names_only():
    leaks = []
    for name, (path, tree) in MODULES.items():
        for node in _imports(tree):
            target = _package(node.module)
            if target is None or target == _package(name):
                continue
            private = [p for p in node.module.split(".")[2:] if p.startswith("_")]
            names = [a.name for a in node.names if a.name.startswith("_")]
            if private or names:
                leaks.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: from {node.module} import "
                             + ", ".join(a.name for a in node.names))
    assert not leaks, "cross-package imports of private modules or names:\n" + "\n".join(leaks)


def test_modules_import_each_other_without_cycles():
    graph = {name: set() for name in MODULES}
    for name, (_, tree) in MODULES.items():
        if MODULES[name][0].name == "__init__.py":  # a package imports its own modules
            graph[name] |= {m for m in MODULES if m.rsplit(".", 1)[0] == name and m != name} & \
                           {n.module for n in _imports(tree)}
        for node in _imports(tree):
            if node.module in MODULES and node.module != name and not name.startswith(node.module + "."):
                graph[name].add(node.module)
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_modules_and_functions_stay_small():
    big = []
    for name, (path, tree) in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines > MODULE_LINES and name not in LARGER:
            big.append(f"module {name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > FUNCTION_LINES and f"{name}:{node.name}" not in LARGER:
                    big.append(f"function {name}:{node.name}: {n} lines")
    assert not big, f"over {MODULE_LINES} lines a module or {FUNCTION_LINES} a function:\n" + "\n".join(big)


def test_the_exceptions_are_still_needed():
    """A listed exception that has shrunk is taken off the list."""
    stale = []
    for key in LARGER:
        module, _, func = key.partition(":")
        path, tree = MODULES[module]
        if not func:
            stale += [key] if len(path.read_text().splitlines()) <= MODULE_LINES else []
            continue
        sizes = [n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == func]
        stale += [key] if not sizes or max(sizes) <= FUNCTION_LINES else []
    assert not stale, f"no longer larger than the limits, take them off LARGER: {stale}"


def test_lines_stay_within_the_limit():
    long = [f"{path.relative_to(ROOT.parent)}:{i}: {len(line)} characters"
            for path, _ in MODULES.values() for i, line in enumerate(path.read_text().splitlines(), 1)
            if len(line) > LINE_CHARS]
    assert not long, f"lines over {LINE_CHARS} characters:\n" + "\n".join(long)


def _classes():
    for name, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                methods = sum(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
                yield f"{name}:{node.name}", methods


def test_classes_keep_few_methods():
    broad = [f"class {key}: {n} methods" for key, n in _classes() if n > CLASS_METHODS and key not in BROADER]
    assert not broad, f"classes with over {CLASS_METHODS} methods (split them by job):\n" + "\n".join(broad)


def test_the_broader_classes_are_still_broad():
    """A listed class that has shrunk is taken off the list."""
    methods = dict(_classes())
    stale = [key for key in BROADER if methods.get(key, 0) <= CLASS_METHODS]
    assert not stale, f"no longer over {CLASS_METHODS} methods, take them off BROADER: {stale}"
