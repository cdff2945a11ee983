"""Every hand-written backward is derived on a docs page before its code is shown, and the code
says where: for each `Op` subclass in tinyseg/functions/, the docstring of the op, of its backward,
or of the function that applies it links to a derivation (docs/derivations/*.md, or lesson 01 for
the elementary operations, whose derivatives are the chain rule itself). The linked pages exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"docs/(derivations/\w+\.md|lessons/01_autodiff\.md)")


def _ops_and_docstrings(path: Path) -> dict[str, str]:
    """Op class name -> the docstrings that may carry its derivation link."""
    tree = ast.parse(path.read_text())
    module_doc = ast.get_docstring(tree) or ""
    texts: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Op" for b in node.bases):
            backward = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "backward"), None)
            if backward is not None:
                texts[node.name] = (ast.get_docstring(node) or "") + (ast.get_docstring(backward) or "")
    for node in tree.body:  # the functions that apply each op
        if isinstance(node, ast.FunctionDef):
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            for name in called & set(texts):
                texts[name] += ast.get_docstring(node) or ""
    if path.name == "arithmetic.py":  # elementary ops: the module docstring points to the chain rule
        texts = {k: v + module_doc for k, v in texts.items()}
    return texts


def test_every_hand_written_backward_links_to_its_derivation() -> None:
    missing, dead = [], []
    for path in sorted((ROOT / "tinyseg" / "functions").glob("*.py")):
        for op, text in _ops_and_docstrings(path).items():
            links = LINK.findall(text)
            if not links:
                missing.append(f"{path.name}: {op}")
            dead += [f"{path.name}: {op} -> {link}" for link in links if not (ROOT / "docs" / link).exists()]
    assert not missing, "backward passes whose docstrings name no derivation page:\n" + "\n".join(missing)
    assert not dead, "links to derivation pages that do not exist:\n" + "\n".join(dead)
