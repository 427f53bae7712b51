"""The configuration reference in docs/operations.md, generated from the `Settings` model.

`uv run python -m workers.cli.settings_doc --write` rewrites the block between the markers;
`--check` exits 1 when it is stale; with no option the block is printed.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from workers.settings import Settings

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
REGENERATE = "uv run python -m workers.cli.settings_doc --write"
BEGIN = "<!-- settings:begin (generated from workers/settings.py; do not edit by hand) -->"
END = "<!-- settings:end -->"
_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "string",
}
# Constraint objects of pydantic's field metadata (annotated_types), by the attribute they carry.
_BOUNDS = (
    ("gt", ">"),
    ("ge", "≥"),
    ("lt", "<"),
    ("le", "≤"),
    ("min_length", "length ≥"),
    ("max_length", "length ≤"),
)


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "unset"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    found = [
        f"{sign} {getattr(item, attribute)}"
        for item in field.metadata
        for attribute, sign in _BOUNDS
        if getattr(item, attribute, None) is not None
    ]
    return ", ".join(found)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value in ("", None):
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _secret(field: FieldInfo) -> str:
    if field.annotation is SecretStr:
        return "secret"
    return "may hold a password" if field.repr is False else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_reference() -> str:
    """The block, markers included: one table row per setting, in the model's order."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = [BEGIN, "", "| variable | type | default | secret | meaning |", "|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = _type(field.annotation)
        bounds = _bounds(field)
        env = f"{prefix}{(field.alias or name).upper()}"
        rows.append(
            f"| `{env}` | {_cell(kind + (f' ({bounds})' if bounds else ''))} | "
            f"{_cell(_default(field))} | {_secret(field)} | "
            f"{_cell(field.description or '')} |"
        )
    return "\n".join([*rows, "", END])


def refreshed(document: str) -> str:
    """`document` with the block between the markers replaced by a fresh rendering."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOCS_PATH.name} lacks the markers {BEGIN!r} ... {END!r}")
    return document[:start] + render_reference() + document[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the block."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite it in {DOCS_PATH.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        sys.stdout.write(render_reference() + "\n")
        return 0
    current = DOCS_PATH.read_text(encoding="utf-8")
    fresh = refreshed(current)
    if args.check:
        stale = fresh != current
        sys.stdout.write(f"{DOCS_PATH.name} is stale: run `{REGENERATE}`\n" if stale else "")
        return 1 if stale else 0
    DOCS_PATH.write_text(fresh, encoding="utf-8")
    sys.stdout.write(f"wrote the configuration reference in {DOCS_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
