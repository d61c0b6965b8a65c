"""The layers of rimrl and which way imports flow, read from the source (every import,
those inside functions too).

Bottom up: ``envs`` (the suites; nothing of ours); the core (every module and folder of
``rimrl/`` not named below: configs, runs, networks, reports, tasks; neither envs nor
anything above); ``agents`` (the algorithms, on the core); ``sb3`` (the runtime every SB3
learner shares: envs, training, evaluation); ``learners`` (the registry, the contract, one
module per learner); ``sweeps``; the CLI (parses and prints).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: top-level folders of the repository that install under the rimrl namespace
NAMESPACES = {"rimrl": "rimrl", "agents": "rimrl.agents", "envs": "rimrl.envs"}
ABOVE_CORE = ("rimrl.agents", "rimrl.envs", "rimrl.sb3", "rimrl.learners", "rimrl.sweeps",
              "rimrl.cli", "rimrl.__main__")
#: layer -> what it must never import
FORBIDDEN = {
    "rimrl.agents": ("rimrl.envs", "rimrl.sb3", "rimrl.learners", "rimrl.sweeps", "rimrl.cli"),
    "rimrl.sb3": ("rimrl.learners", "rimrl.sweeps", "rimrl.cli"),
    "rimrl.learners": ("rimrl.sweeps", "rimrl.cli"),
    "rimrl.sweeps": ("rimrl.cli",),
    "rimrl.cli": ("rimrl.agents", "rimrl.envs", "rimrl.nn", "rimrl.tasks", "torch",
                  "stable_baselines3"),
}


def modules() -> dict[str, Path]:
    """Every module of ours by dotted name (packages by their ``__init__``)."""
    found = {}
    for folder, namespace in NAMESPACES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((namespace,) + parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """Dotted names a module imports, anywhere in it (``from a import b``: ``a`` and
    ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


MODULES = modules()


@pytest.mark.parametrize("layer", ["rimrl.envs", "core", *FORBIDDEN])
def test_no_layer_imports_upward(layer):
    if layer == "rimrl.envs":
        members, forbidden = [m for m in MODULES if within(m, layer)], None
    elif layer == "core":
        members, forbidden = [m for m in MODULES if not within(m, *ABOVE_CORE)], ABOVE_CORE
    else:
        members, forbidden = [m for m in MODULES if within(m, layer)], FORBIDDEN[layer]
    assert members
    for module in members:
        names = imports(MODULES[module])
        if forbidden is None:  # envs: nothing of ours but envs
            bad = {n for n in names if within(n, "rimrl") and not within(n, "rimrl.envs")}
        else:
            bad = {n for n in names if within(n, *forbidden)}
        assert not bad, f"{module} imports {sorted(bad)}"


def test_no_circles():
    """No module reaches itself through imports (inside functions included): the module
    graph has no strongly connected component larger than one module."""
    graph = {m: {n for n in imports(p) if n in MODULES and n != m} for m, p in MODULES.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles


@pytest.mark.parametrize("folder", ["rimrl/sb3", "rimrl/learners"])
def test_imports_inside_functions_say_why(folder):
    """An import inside a function defers a heavy dependency (``# heavy``: torch, SB3,
    gymnasium, scipy... kept out of ``rimrl --help``, which lists the learners), an optional
    one (``# optional``) or registers envs; it says so on its line. Everything else is
    imported at the top."""
    unexplained = []
    for path in sorted((ROOT / folder).glob("*.py")):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not any(
                            why in lines[node.end_lineno - 1]
                            for why in ("# heavy", "# optional", "(registers")):
                        unexplained.append(f"{path.name}:{node.lineno}")
    assert not unexplained


def test_the_learner_registry_stays_light():
    """Listing the learners (``rimrl --help``) imports no torch, SB3 or gymnasium."""
    import subprocess
    import sys

    code = ("import sys; from rimrl import learners; learners.all_learners(); "
            "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_imports_its_own_package():
    """A module never imports its own package's ``__init__`` (``from rimrl.cli import main``
    inside ``rimrl/cli/sweep.py`` once made a circle the layer test could not see): only the
    ``__init__`` itself gathers its submodules."""
    offenders = []
    for name, path in MODULES.items():
        if path.name == "__init__.py" or name.count(".") < 2:
            continue  # rimrl/__init__ holds the version and imports nothing
        package = name.rpartition(".")[0]
        parent, _, last = package.rpartition(".")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name == package for a in node.names):
                offenders.append(name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (
                    node.module == package
                    or (node.module == parent and any(a.name == last for a in node.names))):
                offenders.append(name)
    assert not offenders


def test_no_generic_top_level_import_names():
    """agents/ and envs/ install as rimrl.agents and rimrl.envs: nothing imports them bare."""
    for folder in ("rimrl", "agents", "envs", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            bad = {n for n in imports(path) if within(n, "agents", "envs", "configs")}
            assert not bad, path
