"""The project's import graph, read statically (ast): what each module imports, transitively.

    importer, params_classes = import_closure("stages/train.py")   # every module it loads -> who imports it

Function-level imports count; `from pipeline.features import store` names pipeline/features/store.py. Used by the
layout test (wings, cycles) and the DVC test (each stage lists the modules it runs as deps).
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "stages")
LOADERS = ("load_params", "load_sections")


def module_path(name: str) -> str | None:
    """`pipeline.features.store` -> 'pipeline/features/store.py' when that file exists (a package: its __init__)."""
    base = name.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if (REPO / candidate).is_file():
            return candidate
    return None


def project_imports(module: str) -> tuple[set[str], set[str]]:
    """Project modules imported by `module` (as paths), and the params classes it passes to the params loaders."""
    modules, params_classes = set(), set()
    for node in ast.walk(ast.parse((REPO / module).read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if not any(module_path(name) for name in names):
                names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in LOADERS:
            params_classes |= {arg.id for arg in node.args[1:] if isinstance(arg, ast.Name)}
        modules |= {path for name in names if name.split(".")[0] in PACKAGES and (path := module_path(name))}
    return modules - {module}, params_classes


def import_closure(module: str) -> tuple[dict[str, str], set[str]]:
    """Every project module `module` loads, transitively (-> the module that imports it), and every params class
    they load from params.yaml."""
    importer, classes, todo = {module: module}, set(), [module]
    while todo:
        current = todo.pop()
        imported, loaded = project_imports(current)
        classes |= loaded
        for path in sorted(imported - set(importer)):
            importer[path] = current
            todo.append(path)
    return importer, classes


def project_modules() -> list[str]:
    """Every Python file of the library and the entry points."""
    return sorted(str(path.relative_to(REPO)) for package in PACKAGES for path in (REPO / package).rglob("*.py"))
