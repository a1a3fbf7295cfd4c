"""The layout shows the architecture: dependencies point one way (shells -> the library surface
-> what users do -> methods -> content kinds and maths -> declarations), there are no import
cycles, and modules stay small enough to read."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "genforge"

# Top first. A module may import its own layer or any layer below; within a layer, peers may
# import each other (the cycle test keeps that a tree). Longest matching prefix wins.
LAYERS = [
    ("cli", "studio", "__main__"),
    ("genforge", "api"),
    ("runs", "tuning"),
    ("evaluation", "sweep"),
    ("generation",),
    ("data",),
    ("training", "export", "export_onnx", "metrics", "audit", "provenance", "families"),
    ("config", "presets"),
    ("modalities", "levels", "music", "models", "sampling", "augment", "provenance.watermark",
     "provenance.resync", "provenance.marking"),
    ("options", "io", "errors", "progress", "version", "runtime"),
]
MAX_LINES = 420  # "no file over ~400 lines"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The genforge modules a module imports (at top level or inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.split(".")[0] == "genforge" and t in MODULES}
    return found - {name}


def layer(name: str) -> int:
    short = name.removeprefix("genforge.") if name != "genforge" else "genforge"
    best = max(((len(prefix), i) for i, group in enumerate(LAYERS) for prefix in group
                if short == prefix or short.startswith(prefix + ".")), default=None)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[1]


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer(name)


def test_no_upward_imports():
    upward = [f"{name} -> {target}" for name in sorted(MODULES) for target in sorted(imports(name))
              if layer(target) < layer(name)]
    assert upward == []


def test_no_import_cycles():
    graph = {name: imports(name) for name in MODULES}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


SURFACE = {"genforge.api", "genforge.errors", "genforge.version", "genforge.io",
           "genforge.options", "genforge.progress"}


def test_the_cli_calls_only_the_library_surface():
    for name in MODULES:
        if name.startswith("genforge.cli"):
            outside = {t for t in imports(name) if not t.startswith("genforge.cli")}
            # the studio's entry point, imported lazily by `genforge studio`
            assert outside <= SURFACE | {"genforge.studio"}, (name, outside)


def test_the_studio_calls_only_the_library_surface():
    for name in MODULES:
        if name.startswith("genforge.studio"):
            outside = {t for t in imports(name) if not t.startswith("genforge.studio")}
            assert outside <= SURFACE, (name, outside)


def test_the_core_never_imports_the_studio():
    users = sorted(name for name in MODULES if not name.startswith(("genforge.studio",
                                                                     "genforge.cli"))
                   and any(t.startswith("genforge.studio") for t in imports(name)))
    assert users == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines"
