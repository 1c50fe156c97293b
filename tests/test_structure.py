"""The folders are the architecture: simulator ← flows ← similarity ← pipelines, imports
pointing one way, no module importing itself in a circle, and the plain search running
without the training stack (Lightning)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("simulator", "flows", "similarity", "pipelines")
# The one import against the layers: the shipped-checkpoint registry lives beside the
# package data it names (pipelines/checkpoints/), and the flows' loader reads it.
UPWARD = {("flows.checkpoint", "pipelines.shipped")}


def _fresh(code: str) -> str:
    """``code`` run in a new interpreter from the repository root; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in (REPO / layer).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """The project modules ``path`` imports when it loads, and those it names anywhere
    (inside functions and ``TYPE_CHECKING`` blocks too)."""
    tree = ast.parse(path.read_text())

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names} & modules.keys()
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from package import module`` depends on that module, not on the package's other names
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            return subs if len(subs) == len(node.names) else ({node.module} & modules.keys()) | subs
        return set()

    at_load = set().union(*(names(node) for node in tree.body))
    anywhere = set().union(*(names(node) for node in ast.walk(tree)))
    return at_load, anywhere


def test_plain_search_never_loads_lightning() -> None:
    """Importing the planner and the plain stages, and solving with them, needs no training
    stack: only a learned stage's checkpoint brings Lightning in."""
    out = _fresh(
        "import sys\n"
        "import numpy as np\n"
        "import pipelines.search.planner, pipelines.search.subgoal, pipelines.search.decompose\n"
        "import pipelines.search.linear, pipelines.search.shapes, pipelines.search.separate\n"
        "from pipelines.interface.pipeline import InductionPipeline\n"
        "X = np.linspace(-1, 1, 20)[:, None]\n"
        "res = InductionPipeline.preset('plain').solve(X, X[:, 0] ** 3 + X[:, 0], calls=3000, seconds=60)\n"
        "assert res.loss < 1e-12, res.loss\n"
        "print(sorted(m for m in sys.modules if 'lightning' in m))\n"
    )
    assert out == "[]"


def test_simulator_needs_no_learning_stack() -> None:
    modules = sorted(m for m in _modules() if m.startswith("simulator."))
    code = f"import sys\nfor m in {modules!r}:\n    __import__(m)\n"
    code += "print(sorted(m for m in sys.modules if 'lightning' in m or m.startswith('nflows')))\n"
    assert _fresh(code) == "[]"


def test_imports_point_one_way() -> None:
    modules = _modules()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = set()
    for name, path in modules.items():
        for target in _imports(path, modules)[1]:
            if rank[target.split(".")[0]] > rank[name.split(".")[0]]:
                upward.add((name, target))
    assert upward <= UPWARD, sorted(upward - UPWARD)


def test_no_import_cycles() -> None:
    """No module reaches itself through the imports run when modules load."""
    modules = _modules()
    graph = {name: _imports(path, modules)[0] - {name} for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, cycles


def test_subgoal_stage_sits_above_its_library_and_recursion() -> None:
    """The library and the recursion are the sub-goal stage's parts: neither names the stage,
    not even lazily or for type hints."""
    modules = _modules()
    for part in ("pipelines.search.library", "pipelines.search.decompose"):
        assert "pipelines.search.subgoal" not in _imports(modules[part], modules)[1], part


ROLES = ("search", "interface", "learning", "bench")  # pipelines' subpackages, lowest first


def test_pipelines_roles_import_downward_only() -> None:
    """Inside pipelines, the search names no interface, learning or bench module, the
    interface no learning or bench module, learning no bench module (lazily or not)."""
    modules = _modules()
    rank = {role: i for i, role in enumerate(ROLES)}

    def role(name: str) -> str | None:
        parts = name.split(".")
        return parts[1] if len(parts) > 2 and parts[0] == "pipelines" and parts[1] in rank else None

    upward = sorted(
        (name, target)
        for name, path in modules.items()
        if role(name)
        for target in _imports(path, modules)[1]
        if role(target) and rank[role(target)] > rank[role(name)]
    )
    assert not upward, upward
