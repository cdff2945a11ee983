"""Layering: the data layer stands on its own.

`tinyseg.data` may import NumPy, SciPy, its own modules and three leaf modules of the package
(`_version`, `config`, `errors`), which themselves import nothing else from tinyseg — never the
package root (`from .. import …`, `import tinyseg`), which pulls in the whole engine.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyseg"
LEAVES = {"tinyseg._version", "tinyseg.config", "tinyseg.errors"}


def _tinyseg_imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import of a tinyseg module in `source`, a module of `package`.

    Relative imports are resolved; ``from .. import x`` counts as an import of the package itself.
    """
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "tinyseg"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "tinyseg":
                out.append((node.lineno, module))
    return out


def _package_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1])  # for __init__.py too: its package is its folder


def test_data_imports_nothing_from_the_package_root() -> None:
    bad = []
    for path in sorted((PACKAGE / "data").rglob("*.py")):
        for lineno, module in _tinyseg_imports(path.read_text(), _package_of(path)):
            if module.startswith("tinyseg.data") or module in LEAVES:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{lineno}: imports {module}")
    assert not bad, "tinyseg/data must not import the package root or the engine:\n" + "\n".join(bad)


def test_the_leaf_modules_import_only_each_other() -> None:
    for name in LEAVES:
        path = PACKAGE / f"{name.split('.')[1]}.py"
        for lineno, module in _tinyseg_imports(path.read_text(), "tinyseg"):
            assert module in LEAVES, f"{path.relative_to(ROOT)}:{lineno}: imports {module}"


def test_the_import_resolver_sees_root_and_engine_imports() -> None:
    source = "from .. import __version__\nfrom ..models import VARIANTS\nimport tinyseg\nfrom .errors import X\n"
    assert [m for _, m in _tinyseg_imports(source, "tinyseg.data")] == [
        "tinyseg", "tinyseg.models", "tinyseg", "tinyseg.data.errors"]
