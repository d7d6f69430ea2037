"""The import graph follows the data flow: shared infrastructure at the bottom, no stage imports a later
stage, and no two modules import each other (directly or in a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import uniaudio

ROOT = Path(uniaudio.__file__).parent

# A package may import packages of a lower rank (and itself); equal ranks are independent of each other.
RANK = {
    "core": 0,
    "tokenize": 1,  # ReasoningCodec and the text tokenizer
    "model": 2,  # the network and sequence format (uses the tokenizers' special ids)
    "pipelines": 2,  # corpus -> records -> token store (runs the codec)
    "sentences": 3,
    "train": 4,
    "eval": 5,
    "testing": 5,  # fixture generators, used by tests, the demo and `sources fixtures`
    "demo": 6,  # runs every stage through the CLI
    "cli": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("uniaudio"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.startswith("uniaudio"):
                    targets.add(mod)
        graph[name] = targets
    return graph


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_no_stage_imports_a_later_or_sibling_stage():
    bad = []
    for mod, targets in _imports().items():
        src = _stage(mod)
        for t in targets:
            dst = _stage(t)
            if src and dst and src != dst and RANK[dst] >= RANK[src]:
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports against the data flow:\n" + "\n".join(sorted(bad))


def test_core_imports_only_core():
    bad = [f"{m} -> {t}" for m, ts in _imports().items() if _stage(m) == "core" for t in ts if _stage(t) != "core"]
    assert not bad, bad


def test_no_import_cycles():
    graph = _imports()
    modules = set(graph)

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    # a module importing its own parent package, or a package re-exporting its submodules, is no cycle
    edges = {
        m: {r for t in ts if (r := resolve(t)) and r != m and not m.startswith(r + ".") and not r.startswith(m + ".")}
        for m, ts in graph.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
