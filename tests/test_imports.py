"""No import circles in the library (issue 28): a module may use what sits below it, never come back to
itself through its imports — function-level imports included, `if TYPE_CHECKING:` blocks excluded.
`mfcli.cli` is left out: its `__init__` creates the Typer app and imports each command module, which
registers itself on that app (Typer's own pattern), and nothing in the library imports the CLI."""

import ast
from pathlib import Path

import mfcli

ROOT = Path(mfcli.__file__).parent.parent


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _graph() -> dict[str, set[str]]:
    modules = {_name(p): p for p in (ROOT / "mfcli").rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
        deps = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mfcli"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else owner(node.module))
            elif isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("mfcli")}
        graph[name] = {d for d in deps if d and d != name}
    return graph


def _circle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                return path + [start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, path + [dep]))
    return None


def test_the_library_has_no_import_circle():
    graph = _graph()
    assert "mfcli.merge.contract" in graph and "mfcli.train.log" in graph  # the graph is read, not empty
    circles = [c for m in graph if not m.startswith("mfcli.cli")
               if (c := _circle_through(graph, m)) and not any(x.startswith("mfcli.cli") for x in c)]
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


def test_the_merge_contract_and_the_training_log_are_leaves():
    graph = _graph()
    assert not {d for d in graph["mfcli.merge.contract"] if d.startswith("mfcli.merge")}
    assert not graph["mfcli.train.log"]


# docs/architecture.md's layers, bottom up: a module imports from its own layer or below, never above
LEAVES = ("mfcli", "mfcli.errors", "mfcli.params", "mfcli.cache", "mfcli.hub", "mfcli.dist", "mfcli.forgetting",
          "mfcli.progress", "mfcli.provenance", "mfcli.plugins",
          "mfcli.data.prompts", "mfcli.kinds", "mfcli.io", "mfcli.train.log", "mfcli.merge.contract",
          "mfcli.eval.judges.registry", "mfcli.eval.judges.base", "mfcli.data.sources.base")
LAYERS = (("leaves", LEAVES), ("data", ("mfcli.data",)), ("models", ("mfcli.models",)),
          ("methods", ("mfcli.eval", "mfcli.train", "mfcli.merge", "mfcli.analysis")),
          ("built-in models", ("mfcli.zoo",)), ("reports", ("mfcli.report",)),
          ("orchestration", ("mfcli.study", "mfcli.demo", "mfcli.eval.pipeline", "mfcli.search")), ("cli", ("mfcli.cli", "mfcli.__main__")))
# the one import that goes up, function-level: a built-in name is built on first use, wherever it is loaded
UPWARD = {("mfcli.models.load", "mfcli.zoo")}


def _layer(module: str) -> int:
    """The layer of the longest prefix that names the module (mfcli.eval.pipeline before mfcli.eval)."""
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return best[1]


def test_layers_read_top_down():
    graph = _graph()
    up = [f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})" for m, deps in sorted(graph.items())
          for d in sorted(deps) if _layer(d) > _layer(m) and (m, d) not in UPWARD]
    assert not up, "\n".join(up)
    assert all(d in graph[m] for m, d in UPWARD), "an allowed upward import is gone: drop it from UPWARD"


def test_a_wrong_import_is_caught():
    """The check itself: a report module imported by a method, or a method by a leaf, is refused."""
    assert _layer("mfcli.report.plots") > _layer("mfcli.analysis.rank")
    assert _layer("mfcli.eval.pipeline") > _layer("mfcli.eval.emt") > _layer("mfcli.io.records")
    assert _layer("mfcli.kinds.vqa") == _layer("mfcli.data.prompts") == 0 < _layer("mfcli.data.prepare")


# the methods layer's packages side by side, and the named seams through which one uses another
# (docs/architecture.md, "Sideways"): calibration batches are training batches, and the forgetting
# watch scores answers as `emt` and `judge` do; nothing else crosses
METHOD_PACKAGES = ("mfcli.eval", "mfcli.train", "mfcli.merge", "mfcli.analysis")
SEAMS = {("mfcli.merge.calibration", "mfcli.train.data"), ("mfcli.train.watch", "mfcli.eval")}


def _package(module: str) -> str | None:
    return next((p for p in METHOD_PACKAGES if module == p or module.startswith(p + ".")), None)


def _through_seam(module: str, dep: str) -> bool:
    return any((module == a or module.startswith(a + ".")) and (dep == b or dep.startswith(b + ".")) for a, b in SEAMS)


def test_method_packages_meet_only_at_their_named_seams():
    graph = _graph()
    crossing = [f"{m} imports {d}" for m, deps in sorted(graph.items()) for d in sorted(deps)
                if _package(m) and _package(d) and _package(m) != _package(d) and not _through_seam(m, d)]
    assert not crossing, "\n".join(crossing)
    used = {(a, b) for a, b in SEAMS if any(_through_seam(m, d) for m, deps in graph.items() for d in deps
                                            if (m == a or m.startswith(a + ".")))}
    assert used == SEAMS, "a named seam is no longer used: drop it from SEAMS and the docs"
    assert not _through_seam("mfcli.merge.run", "mfcli.train.loop")  # the check itself refuses another crossing
