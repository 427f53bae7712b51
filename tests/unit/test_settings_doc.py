"""docs/operations.md's configuration reference is generated from the settings model; this fails
when the two drift apart (a setting added, renamed or re-described without regenerating)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from workers.cli.settings_doc import BEGIN, DOCS_PATH, END, REGENERATE, refreshed, render_reference
from workers.settings import Settings


def test_the_configuration_reference_in_the_operations_guide_is_fresh() -> None:
    # Given the committed guide
    committed = DOCS_PATH.read_text(encoding="utf-8")
    # When its block is rendered again from the model
    fresh = refreshed(committed)
    # Then nothing changes
    assert committed == fresh, f"docs/operations.md is stale; regenerate it with `{REGENERATE}`"


def test_every_setting_has_a_row_and_every_secret_is_marked() -> None:
    # Given the rendered block
    rows = render_reference().splitlines()[4:-2]
    # Then there is one row per setting, in the model's order, named by its variable
    names = [f"ORDERFLOW_{name.upper()}" for name in Settings.model_fields]
    assert [row.split("`")[1] for row in rows] == names
    # And exactly the secret values are marked secret
    secret = {f"ORDERFLOW_{n.upper()}" for n, f in Settings.model_fields.items()
              if f.annotation is SecretStr}  # fmt: skip
    assert {row.split("`")[1] for row in rows if "| secret |" in row} == secret
    assert "ORDERFLOW_SIGNING_KEYS" in secret


def test_one_row_shows_type_bounds_default_and_meaning() -> None:
    rows = {row.split("`")[1]: row for row in render_reference().splitlines() if "`" in row}
    assert rows["ORDERFLOW_WEBHOOK_PORT"] == (
        "| `ORDERFLOW_WEBHOOK_PORT` | integer (≥ 1, ≤ 65535) | `8088` |  | Its port. |"
    )
    assert rows["ORDERFLOW_BACKORDER_POLICY"].startswith(
        "| `ORDERFLOW_BACKORDER_POLICY` | one of `skip_blocked`, `strict` | `skip_blocked` |"
    )


def test_only_the_block_between_the_markers_is_replaced() -> None:
    # Given a document with a stale block between text
    document = f"before\n{BEGIN}\n| stale |\n{END}\nafter\n"
    # When refreshed
    result = refreshed(document)
    # Then the text around it is kept and the block is the fresh one
    assert result == f"before\n{render_reference()}\nafter\n"


def test_a_document_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks the markers"):
        refreshed("no markers here\n")
