"""The layout is its own map: wings import only downwards, no module imports itself in a loop, modules stay short.

Wings, from the ground up: core <- config <- data / features / library <- model <- evaluation <- stages.
"""
from __future__ import annotations

import ast

import pytest

from tests.helpers.imports import REPO, project_imports, project_modules

WING_FLOOR = {"core": 0, "config": 1, "data": 2, "features": 2, "library": 2, "model": 3, "evaluation": 4}
STAGES_FLOOR = 5
MAX_MODULE_LINES = 250
MAX_RUN_LINES = 60


def wing(module: str) -> str:
    """'pipeline/model/mdpr.py' -> 'model'; every stages/ module -> 'stages'."""
    parts = module.split("/")
    return "stages" if parts[0] == "stages" else parts[1]


def floor(module: str) -> int:
    return STAGES_FLOOR if wing(module) == "stages" else WING_FLOOR[wing(module)]


def test_every_library_module_lives_in_a_wing():
    loose = [m for m in project_modules() if m.startswith("pipeline/") and m.count("/") < 2 and
             not m.endswith("__init__.py")]
    assert not loose, f"modules outside the wings: {loose}"
    assert {wing(m) for m in project_modules() if m.startswith("pipeline/") and m.count("/") >= 2} == set(WING_FLOOR)


def test_no_import_runs_from_a_lower_wing_to_a_higher_one():
    upward = [f"{m} -> {target}" for m in project_modules() for target in project_imports(m)[0]
              if floor(target) > floor(m)]
    assert not upward, f"imports from a lower wing to a higher one: {upward}"


def test_no_import_cycle_between_modules_or_wings():
    graph = {m: project_imports(m)[0] for m in project_modules()}
    wings: dict[str, set[str]] = {}
    for module, targets in graph.items():
        wings.setdefault(wing(module), set()).update(wing(t) for t in targets if wing(t) != wing(module))
    for name, edges in (("modules", graph), ("wings", wings)):
        cycle = _find_cycle(edges)
        assert cycle is None, f"import cycle between {name}: {' -> '.join(cycle)}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", project_modules())
def test_modules_stay_short(module):
    lines = len((REPO / module).read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines; split it (aim under {MAX_MODULE_LINES})"


def test_every_stage_run_is_short():
    stage_files = sorted((REPO / "stages").glob("*.py"))
    long = {}
    for path in stage_files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name == "run":
                length = node.end_lineno - node.lineno + 1
                if length > MAX_RUN_LINES:
                    long[path.name] = length
    assert not long, f"stage run() longer than {MAX_RUN_LINES} lines: {long}"
