"""The project files a stage runs, derived from the imports in its source (transitively): what
tools/codedeps.py writes into dvc.yaml as each stage's code deps, and what tests/test_layout.py checks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clip_study", "stages")


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module or package, None for anything else (the standard library, torch...)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node that runs: the bodies of ``if TYPE_CHECKING:`` blocks (type hints only) are left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imported_modules(file: Path, root: Path = ROOT) -> set[str]:
    """The project modules ``file`` imports, at the top or inside functions."""
    package = ".".join(file.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in _runtime_nodes(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from package import module`
    return {module for module in found if module_file(module, root) is not None}


def files_run_by(module: str, root: Path = ROOT) -> set[Path]:
    """Every project file that ``python -m <module>`` executes: the module, what it imports, transitively,
    and the ``__init__.py`` of every package on the way."""
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for prefix in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            file = module_file(prefix, root)
            if file is not None and file not in seen:
                seen.add(file)
                todo += sorted(imported_modules(file, root))
    return seen


def runs_no_code(file: Path) -> bool:
    """An ``__init__.py`` that holds only a docstring: executing it cannot change any result."""
    body = ast.parse(file.read_text()).body
    return file.name == "__init__.py" and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                              for n in body)
