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
