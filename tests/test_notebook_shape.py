"""The library notebooks read as documentation: each `#| export` cell defines at most one public function or class, so
the cell can be followed by its own `show_doc` and example (private helpers and constants may sit beside it)."""
import ast
import json
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"


def public_definitions(source: str) -> list[str]:
    "Names of the public functions and classes an export cell's code defines at top level."
    body = "\n".join(source.split("\n")[1:])   # drop the `#| export` line
    tree = ast.parse(body)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n.name for n in tree.body if isinstance(n, kinds) and not n.name.startswith("_")]


def export_cells(path: Path) -> list[tuple[str, str]]:
    "(cell id, source) of every `#| export` code cell of a notebook."
    cells = json.loads(path.read_text())["cells"]
    out = []
    for c in cells:
        src = "".join(c["source"])
        if c["cell_type"] == "code" and src.startswith("#| export"):
            out.append((c.get("id", "?"), src))
    return out


def test_public_definitions_counts_only_public_functions_and_classes():
    src = "#| export\nX = 1\ndef _helper(): pass\ndef shown(): pass\nclass Shown: pass\n"
    assert public_definitions(src) == ["shown", "Shown"]


@pytest.mark.parametrize("path", sorted(NBS.glob("*.ipynb")), ids=lambda p: p.name)
def test_one_public_definition_per_export_cell(path):
    crowded = []
    for cell_id, src in export_cells(path):
        names = public_definitions(src)
        if len(names) > 1:
            crowded.append(f"cell {cell_id}: {names}")
    assert not crowded, f"{path.name}: split these export cells, one public definition each: {crowded}"


@pytest.mark.parametrize("path", sorted(NBS.glob("*.ipynb")), ids=lambda p: p.name)
def test_show_doc_source_links_render(path):
    "Stored show_doc outputs carry the source link as HTML, never Quarto's `{target=…}` attribute text (JupyterLab prints it raw)."
    raw = []
    for c in json.loads(path.read_text())["cells"]:
        for out in c.get("outputs", []):
            md = out.get("data", {}).get("text/markdown", "")
            md = "".join(md) if isinstance(md, list) else md
            if '){target="_blank"' in md: raw.append(c.get("id", "?"))
    assert not raw, f"{path.name}: cells {raw} show Quarto link attributes; re-run `make nb-outputs` (settings.ini names the renderer)"
