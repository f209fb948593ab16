"""The package's shape: imports point one way (no circle), and every module says its job."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "seedloop"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, path: Path, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """The seedloop modules an ``import from`` statement loads."""
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    if not base.startswith("seedloop"):
        return []
    # ``from . import x`` loads x, not (again) the package it sits in.
    found = [base] if base in known and node.module else []
    found += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    return found


def _imports(module: str, path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """(modules imported when ``module`` is imported, function-local seedloop imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    eager: set[str] = set()
    local: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # never runs: not a runtime dependency
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if isinstance(child, ast.ImportFrom):
                    targets = _resolve(module, path, child, known)
                else:
                    targets = [a.name for a in child.names if a.name in known]
                targets = [t for t in targets if t != module]
                if in_function and targets:
                    local.append(f"{module}:{child.lineno} imports {', '.join(targets)}")
                elif not in_function:
                    eager.update(targets)
                continue
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            visit(child, nested)

    visit(tree, False)
    eager.update(_lazy(module, tree, known))
    return eager, local


def _lazy(module: str, tree: ast.Module, known: set[str]) -> list[str]:
    """The modules a package's ``_LAZY`` table (name -> module, loaded by its
    module ``__getattr__`` on first use) imports: dependencies all the same."""
    found: list[str] = []
    for node in tree.body:
        if (
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in _targets(node))
            and isinstance(node.value, ast.Dict)
        ):
            for value in node.value.values:
                assert isinstance(value, ast.Constant) and f"{module}.{value.value}" in known, (
                    f"{module}._LAZY must map names to its own modules, got {ast.dump(value)}"
                )
                found.append(f"{module}.{value.value}")
    return found


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    local: list[str] = []
    for name, path in modules.items():
        graph[name], found = _imports(name, path, known)
        local += found
    return graph, local


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle() -> None:
    graph, _ = _graph()
    assert _cycle(graph) is None, "import circle: " + " -> ".join(_cycle(graph) or [])


def test_no_function_local_import_of_seedloop_modules() -> None:
    _, local = _graph()
    assert local == [], "a function-local import hides a dependency:\n" + "\n".join(local)


def test_layers_point_down() -> None:
    """surface -> search -> investigate -> run -> result -> trace export -> timeline data;
    loop/world/net -> options/errors.

    ``seedloop.check`` (history checking, ``eventually``) stands on errors and the
    engine alone: any layer may use it, it uses none of them.
    """
    graph, _ = _graph()
    layers = [
        {"seedloop", "seedloop.pytest_plugin", "seedloop.hypothesis", "seedloop._cli",
         "seedloop.__main__", "seedloop._html", "seedloop._simulate", "seedloop._database",
         "seedloop._pytest_run", "seedloop._pytest_unittest"},
        {"seedloop._search", "seedloop._timetravel"},
        {"seedloop._systematic", "seedloop._cluster"},
        {"seedloop._investigate", "seedloop._parallel", "seedloop._guided"},
        {"seedloop._run", "seedloop._race"},
        {"seedloop._result"},
        {"seedloop._trace_export"},
        {"seedloop._timeline"},
        {"seedloop._assertions"},
        {"seedloop.check"},
    ]
    rank = {m: i for i, layer in enumerate(layers) for m in layer}
    wrong = [
        f"{src} imports {dst}"
        for src, targets in graph.items()
        for dst in targets
        if dst in rank and (src not in rank or rank[src] >= rank[dst])
        and not (src in rank and rank[src] == rank[dst] == 0)
    ]
    assert wrong == [], "imports pointing up or sideways:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_states_its_job(module: str) -> None:
    path = _modules()[module]
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.name} has no docstring saying what it is for"
    assert "noqa: E402" not in path.read_text(encoding="utf-8")


def test_lazy_names_count_as_imports() -> None:
    """``seedloop.check`` loads on first use, and the layers still see the dependency."""
    graph, _ = _graph()
    assert "seedloop.check" in graph["seedloop"]


def test_import_seedloop_loads_the_checker_only_when_used() -> None:
    """Every program pays for ``import seedloop``: what a search never uses loads on first use."""
    code = (
        "import sys, seedloop\n"
        "assert 'seedloop.check' not in sys.modules\n"
        "from seedloop import *\n"
        "assert check is sys.modules['seedloop.check'] is seedloop.check\n"
        "assert eventually is check.eventually is seedloop.eventually\n"
        "assert 'eventually' in dir(seedloop)\n"
        "try:\n"
        "    seedloop.nonesuch\n"
        "except AttributeError as exc:\n"
        "    assert 'nonesuch' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('seedloop.nonesuch exists')\n"
    )
    done = _run_installed(code)
    assert done.returncode == 0, done.stderr


def _run_installed(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter, importing the seedloop under
    test wherever it is installed (a wheel in CI, python/ in place)."""
    import seedloop

    installed = Path(seedloop.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(installed))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_import_seedloop_loads_only_the_exceptions() -> None:
    """pytest imports the plugin, and with it the package, in every session: the
    rest loads on first use, and public classes say ``seedloop.X`` however loaded."""
    code = (
        "import sys\n"
        "import seedloop._result, seedloop._race\n"  # loaded directly, before any seedloop.X
        "import seedloop\n"
        "assert seedloop._result.RunResult.__module__ == 'seedloop'\n"
        "assert seedloop._race.Race.__module__ == 'seedloop'\n"
        "assert 'seedloop._loop' not in sys.modules and 'seedloop._run' not in sys.modules\n"
        "assert seedloop.RunResult is sys.modules['seedloop._result'].RunResult\n"
        "import asyncio\n"
        "assert seedloop.run(lambda: asyncio.sleep(3600, result=7)) == 7\n"
        "for cls in (seedloop.SeedLoop, seedloop.Failure, seedloop.Exploration, seedloop.Site,\n"
        "            seedloop.SimulationFailure):\n"
        "    assert cls.__module__ == 'seedloop', cls\n"
        "import pickle\n"
        "assert pickle.loads(pickle.dumps(seedloop.Site)) is seedloop.Site\n"
    )
    bare = _run_installed(
        "import sys, seedloop; print('asyncio' in sys.modules, sorted("
        "m for m in sys.modules if m.startswith('seedloop')))"
    )
    assert bare.stdout.strip() == "False ['seedloop', 'seedloop.errors']", bare.stderr
    done = _run_installed(code)
    assert done.returncode == 0, done.stderr


def test_the_checker_sees_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
