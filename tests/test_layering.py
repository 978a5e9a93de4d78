"""The layers of the code: every import points down (docs/architecture.md), no module is huge."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each unit's layer, from the bottom up. A module may import its own unit and units of lower
# layers only: not a sibling of its own layer, never a layer above.
LAYERS: dict[str, int] = {
    "demandops.core": 0,
    "conditioners": 1,
    "ml": 1,
    "demandops.sample": 1,
    "demandops.lifecycle": 2,
    "demandops.monitoring": 2,
    "demandops.pipeline": 3,
    "demandops.cli": 4,
    "functions": 4,
    "function_app": 5,
}
PACKAGES = ("demandops", "conditioners", "ml", "functions", "function_app.py")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        base = ROOT / package
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def unit_of(module: str) -> str | None:
    """The layer unit a module belongs to (the longest matching prefix), or None."""
    matches = [u for u in LAYERS if module == u or module.startswith(u + ".")]
    return max(matches, key=len) if matches else None


def imported(path: Path, module: str) -> set[str]:
    """The project modules a file imports, at the top or inside a function."""
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import module` imports the module
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return {m for m in out if unit_of(m) is not None}


def violations(modules: dict[str, Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        own = unit_of(module)
        if own is None:  # demandops/__init__.py: the version only
            assert not imported(path, module), f"{module} must import nothing of the project"
            continue
        for target in sorted(imported(path, module)):
            unit = unit_of(target)
            assert unit is not None
            if unit != own and LAYERS[unit] >= LAYERS[own]:
                found.append(f"{module} (layer {LAYERS[own]}) imports {target} ({LAYERS[unit]})")
    return found


def test_every_import_points_down() -> None:
    assert len(MODULES) > 60  # the walk found the code
    assert violations(MODULES) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "models.py"
    bad.write_text("from demandops.pipeline import steps\nfrom ml import train\n")
    sibling = tmp_path / "tables.py"
    sibling.write_text("def f():\n    from demandops.lifecycle.registry import Registry\n")
    found = violations({"ml.models": bad, "demandops.monitoring.tables": sibling})
    assert found == [
        "ml.models (layer 1) imports demandops.pipeline.steps (3)",
        "demandops.monitoring.tables (layer 2) imports demandops.lifecycle.registry (2)",
    ]


def test_no_module_is_huge() -> None:
    sizes = {m: p.read_text(encoding="utf-8").count("\n") for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}, "split them by concept"
