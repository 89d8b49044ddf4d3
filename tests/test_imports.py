"""The package's import graph: no cycles between modules, and registries that are complete whichever module a user
imports first (no entry that appears only as a side effect of importing some other module)."""
import ast
import json
import subprocess
import sys
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / "shortcut_nb"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_"))


def module_level_imports(module: str) -> set[str]:
    "Package modules that `module` imports at module level (imports inside functions are deferred and not counted)."
    tree = ast.parse((PKG / f"{module}.py").read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: found.add(node.module.split(".")[0])
            elif node.level == 1: found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("shortcut_nb."): found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("shortcut_nb."))
    return found & set(MODULES)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "A cycle in `graph` as a list of nodes, or None."
    state: dict[str, int] = {}
    stack: list[str] = []
    def visit(n):
        state[n] = 1; stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1: return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)): return c
        state[n] = 2; stack.pop()
        return None
    for n in sorted(graph):
        if n not in state and (c := visit(n)): return c
    return None


def test_cycle_finder_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_has_no_cycle():
    graph = {m: module_level_imports(m) for m in MODULES}
    assert graph["train"] >= {"augment", "models"}          # the parser sees real edges
    assert find_cycle(graph) is None, f"import cycle: {' → '.join(find_cycle(graph))}"


def _registry_keys(imports: list[str], registry: str) -> list[str]:
    module, name = registry.rsplit(".", 1)
    code = ("import importlib, json\n"
            + "".join(f"importlib.import_module('shortcut_nb.{m}')\n" for m in imports)
            + f"print(json.dumps(sorted(importlib.import_module('shortcut_nb.{module}').{name})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("registry", ["models.MODELS", "augment.AUGMENTATIONS", "backdoor.BACKDOORS", "xbl.ATTRIBUTIONS",
                                      "conformance.MAKER_CHECKS", "conformance.DIAGNOSTIC_CHECKS", "makers.MAKERS",
                                      "diagnostics.DIAGNOSTICS"])
def test_registry_does_not_depend_on_import_order(registry):
    alone = _registry_keys([registry.split(".")[0]], registry)          # a fresh interpreter importing only the registry's module
    everything = [m for m in MODULES if m not in ("widgets", "docs")]
    assert alone == _registry_keys(everything, registry), f"{registry} gains entries when other modules are imported"


def test_every_registered_model_builds_in_a_fresh_interpreter():
    code = ("from shortcut_nb.models import MODELS, make_model\n"
            "for name in sorted(MODELS):\n"
            "    kw = {'image_size': 32} if name == 'mlp' else {}\n"
            "    make_model(name, in_channels=3, num_classes=10, seed=0, **kw)\n"
            "print(len(MODELS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) >= 19 and "xbl_cnn" in _registry_keys(["models"], "models.MODELS")
